"""Reader of the (gzipped) IDX files of MNIST and Fashion-MNIST."""

import gzip
import pathlib

import numpy as np

from gan.data_error import DataError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """Reads one IDX file (`.gz` or not).

    Args:
        path: e.g. `train-images-idx3-ubyte.gz`.

    Returns:
        The array, e.g. uint8 [N, 28, 28] for images or uint8 [N] for labels.

    Raises:
        DataError: if the file is missing, truncated or not IDX.
    """
    path = pathlib.Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read IDX file ({e.__class__.__name__}: {e})", path=path) from e
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise DataError("not an IDX file (bad magic number)", path=path)
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[data[2]])
    offset = 4 + 4 * ndim
    count = int(np.prod(shape))
    if len(data) - offset < count * dtype.itemsize:
        raise DataError(f"truncated IDX file (expected {count} values of shape {shape})",
                        path=path)
    return np.frombuffer(data, dtype, count, offset).reshape(shape).astype(dtype.newbyteorder("="))
