"""Keeping the workers of a multi-worker run in agreement.

Under `MultiWorkerMirroredStrategy` every worker runs the same Python training loop, and a
worker that takes another branch (stops early, skips an evaluation) leaves the others waiting
in a collective for ever. So the values that steer the loop come from the chief
(`chief_values`), and at start-up `check_workers_agree` makes every worker fail with one clear
message when they do not hold the same run (another `--model_dir`, other flags or data).

Both are collectives: call them on every worker, at the same points, the same number of
times. With one worker (default or mirrored strategy) they run no TensorFlow op.
"""

import hashlib

import numpy as np

from attn_core import strategy
from translate.data_error import DataError


def chief_values(dist, chief, values):
    """The chief's `values` on every worker.

    Args:
        dist: the `tf.distribute.Strategy`.
        chief: whether this process is the chief (`attn_core.strategy.is_chief`).
        values: floats; the other workers' are ignored (they may pass zeros).

    Returns:
        A list of floats, the chief's values (float64 throughout, and exact: the other
        workers add zeros).
    """
    values = np.asarray(values, np.float64).reshape(-1)
    if strategy.worker_info(dist)[1] == 1:
        return values.tolist()
    return strategy.worker_sum(dist, values if chief else np.zeros_like(values)).tolist()


def fingerprint_int(*parts):
    """A 52-bit integer digest of `parts` (bytes, str or arrays), exact as a float64."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, str):
            part = part.encode()
        if not isinstance(part, bytes):
            part = np.ascontiguousarray(part).tobytes()
        digest.update(part)
    return int(digest.hexdigest()[:13], 16)


def check_workers_agree(dist, chief, values):
    """Raises on every worker when some worker's `values` differ from the chief's.

    Two collectives (the chief's values, then a count of the workers that differ), so that
    all the workers stop together rather than leaving the others in a collective.

    Args:
        dist: the `tf.distribute.Strategy`.
        chief: whether this process is the chief.
        values: name -> integer below 2**52 (a step, a `fingerprint_int`, a size).

    Raises:
        DataError: on every worker, naming on each one what it has of its own.
    """
    index, workers = strategy.worker_info(dist)
    if workers == 1:
        return
    names = sorted(values)
    mine = [float(values[name]) for name in names]
    differ = [name for name, a, b in zip(names, mine, chief_values(dist, chief, mine),
                                         strict=True) if a != b]
    disagreeing = int(round(strategy.worker_sum(dist, np.array([float(bool(differ))]))[0]))
    if disagreeing:
        what = f"this worker ({index}) differs from the chief in {', '.join(differ)}; " \
            if differ else ""
        raise DataError(
            f"{what}{disagreeing} of {workers} workers differ from the chief's run: give every "
            "worker the same --model_dir (on a filesystem they share), flags and data"
        )
