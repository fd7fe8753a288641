"""`ImageData` and `load_dataset`: the image datasets `--dataset` names."""

import dataclasses
import os
import pathlib

import numpy as np

from gan.data_error import DataError
from gan.idx_reader import read_idx
from gan.image_folder import load_image_folder
from gan.model_config import is_power_of_two

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")
DATASETS = ("fashion_mnist", "mnist", "cifar10", "folder:PATH")
FOLDER_TEST_FRACTION = 0.1


@dataclasses.dataclass(frozen=True, eq=False)
class ImageData:
    """A dataset's train and test splits at one resolution.

    Letters: N train images, M test images, R resolution, C channels.

    Attributes:
        name: the `--dataset` value.
        train_images: uint8 [N, R, R, C].
        train_labels: int32 [N].
        test_images: uint8 [M, R, R, C].
        test_labels: int32 [M].
        class_names: one name per class.
        skipped: corrupt files skipped (folders only).
    """

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple
    skipped: int = 0

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def resolution(self) -> int:
        return int(self.train_images.shape[1])

    @property
    def channels(self) -> int:
        return int(self.train_images.shape[-1])

    def summary(self) -> str:
        text = (f"{self.name}: {len(self.train_images)} train and {len(self.test_images)} test "
                f"images of {self.resolution}x{self.resolution}x{self.channels}, "
                f"{self.num_classes} classes")
        return text + (f", {self.skipped} corrupt files skipped" if self.skipped else "")


def resize_images(images: np.ndarray, resolution: int) -> np.ndarray:
    """Resizes uint8 [N, H, W] or [N, H, W, C] to uint8 [N, R, R, C] (antialiased bilinear)."""
    import tensorflow as tf

    if images.ndim == 3:
        images = images[..., None]
    if images.shape[1] == resolution and images.shape[2] == resolution:
        return images.astype(np.uint8)
    out = []
    for start in range(0, len(images), 4096):
        batch = tf.image.resize(images[start:start + 4096], (resolution, resolution),
                                method="bilinear", antialias=True)
        out.append(np.clip(np.round(batch.numpy()), 0, 255).astype(np.uint8))
    return np.concatenate(out)


def _fashion_mnist_idx(directory):
    directory = pathlib.Path(directory)
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")
    paths = []
    for name in names:
        for candidate in (directory / f"{name}.gz", directory / name):
            if candidate.is_file():
                paths.append(candidate)
                break
        else:
            return None
    return [read_idx(p) for p in paths]


def _keras_download(name):
    import keras

    loader = {"fashion_mnist": keras.datasets.fashion_mnist, "mnist": keras.datasets.mnist,
              "cifar10": keras.datasets.cifar10}[name]
    (x_train, y_train), (x_test, y_test) = loader.load_data()
    return x_train, y_train.reshape(-1), x_test, y_test.reshape(-1)


def load_dataset(name: str, resolution: int = 32, seed: int = 0,
                 fashion_mnist_dir: str | None = None) -> ImageData:
    """Loads `--dataset` at `resolution`.

    * `fashion_mnist`: the IDX files of Debian's `dataset-fashion-mnist` in
      `fashion_mnist_dir` (default `$GAN_FASHION_MNIST_DIR` or
      `/usr/share/datasets/fashion-mnist`); Keras' downloader when they are absent.
    * `mnist`, `cifar10`: `keras.datasets` (needs the network the first time).
    * `folder:PATH`: `load_image_folder`; a seeded 10% is held out as the test split.

    Args:
        name: one of `DATASETS`.
        resolution: a power of two >= 8.
        seed: for the folder's train/test split.
        fashion_mnist_dir: where the Fashion-MNIST IDX files are.

    Returns:
        The `ImageData`.

    Raises:
        DataError: for an unknown name, a bad resolution, missing files or folders.
    """
    if not is_power_of_two(resolution) or resolution < 8:
        raise DataError(f"Expected --resolution to be a power of two >= 8 (e.g. 32 or 64). "
                        f"Received: resolution={resolution}")
    if name.startswith("folder:"):
        path = name[len("folder:"):]
        if not path:
            raise DataError("Expected --dataset=folder:PATH with a folder. Received: "
                            f"dataset={name!r}")
        images, labels, classes, skipped = load_image_folder(path, resolution)
        order = np.random.default_rng(seed).permutation(len(images))
        n_test = max(1, int(round(FOLDER_TEST_FRACTION * len(images)))) if len(images) > 1 else 0
        test, train = order[:n_test], order[n_test:]
        if n_test == 0:
            test = train
        return ImageData(name, images[train], labels[train], images[test], labels[test],
                         tuple(classes), skipped)
    if name == "fashion_mnist":
        directory = fashion_mnist_dir or os.environ.get("GAN_FASHION_MNIST_DIR",
                                                        FASHION_MNIST_DIR)
        arrays = _fashion_mnist_idx(directory)
        if arrays is None:
            try:
                arrays = _keras_download(name)
            except Exception as e:  # noqa: BLE001 -- any download failure means "offline".
                raise DataError(
                    f"Fashion-MNIST IDX files not found in {directory} and the Keras download "
                    f"failed ({type(e).__name__}); install them with `apt-get install "
                    f"{FASHION_MNIST_PACKAGE}`"
                ) from e
        classes = FASHION_MNIST_CLASSES
    elif name in ("mnist", "cifar10"):
        try:
            arrays = _keras_download(name)
        except Exception as e:  # noqa: BLE001
            raise DataError(f"could not download {name} with keras.datasets ({type(e).__name__}:"
                            f" {e}); use --dataset=fashion_mnist or --dataset=folder:PATH "
                            "offline") from e
        classes = (tuple(str(i) for i in range(10)) if name == "mnist" else
                   ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                    "ship", "truck"))
    else:
        raise DataError(f"Expected --dataset to be one of {', '.join(DATASETS)}. "
                        f"Received: dataset={name!r}")
    x_train, y_train, x_test, y_test = arrays
    return ImageData(name, resize_images(x_train, resolution), y_train.astype(np.int32),
                     resize_images(x_test, resolution), y_test.astype(np.int32), classes)
