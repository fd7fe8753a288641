"""Image folders, IDX files, the dataset names and the input pipeline."""

import gzip
import struct

import numpy as np
import pytest
from PIL import Image

from gan import image_data
from gan.data_error import DataError
from gan.idx_reader import read_idx
from gan.input_pipeline import make_dataset


def write_folder(root, classes=("cats", "dogs"), per_class=3, corrupt=1, size=12):
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    for i in range(corrupt):
        (root / classes[0] / f"broken{i}.jpg").write_bytes(b"not an image")
    (root / classes[0] / "notes.txt").write_text("ignored")
    return root


def test_folder_dataset_has_labels_resizes_and_counts_corrupt_files(tmp_path):
    data = image_data.load_dataset(f"folder:{write_folder(tmp_path / 'pets')}", 8)
    assert data.class_names == ("cats", "dogs") and data.skipped == 1
    assert data.train_images.shape[1:] == (8, 8, 3) and data.train_images.dtype == np.uint8
    assert len(data.train_images) + len(data.test_images) == 6
    assert sorted(set(data.train_labels) | set(data.test_labels)) == [0, 1]
    assert "1 corrupt files skipped" in data.summary()


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "no such folder"),
    (lambda p: p, "no image files"),
])
def test_folder_errors(tmp_path, make, message):
    with pytest.raises(DataError, match=message):
        image_data.load_dataset(f"folder:{make(tmp_path)}", 32)


@pytest.mark.parametrize("name, resolution, message", [
    ("imagenet", 32, "Received: dataset='imagenet'"),
    ("fashion_mnist", 48, "Received: resolution=48"),
])
def test_bad_names_and_resolutions(name, resolution, message):
    with pytest.raises(DataError, match=message):
        image_data.load_dataset(name, resolution)


def _write_idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(
        struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_idx_round_trip_and_fashion_mnist_from_a_directory(tmp_path):
    images = np.arange(5 * 28 * 28).reshape(5, 28, 28) % 256
    labels = np.array([0, 1, 2, 3, 9])
    for split in ("train", "t10k"):
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", images)
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", labels)
    np.testing.assert_array_equal(read_idx(tmp_path / "train-images-idx3-ubyte.gz"), images)
    data = image_data.load_dataset("fashion_mnist", 32, fashion_mnist_dir=str(tmp_path))
    assert data.train_images.shape == (5, 32, 32, 1) and data.num_classes == 10
    np.testing.assert_array_equal(data.test_labels, labels)


def test_missing_fashion_mnist_names_the_apt_package(tmp_path, monkeypatch):
    def offline(name):
        raise OSError("no network")

    monkeypatch.setattr(image_data, "_keras_download", offline)
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        image_data.load_dataset("fashion_mnist", 32, fashion_mnist_dir=str(tmp_path))


def test_pipeline_scales_to_unit_range():
    images = np.array([[[[0]]], [[[255]]], [[[0]]]], np.uint8).repeat(4, 1).repeat(4, 2)
    x, y = next(iter(make_dataset(images, np.array([0, 1, 0]), batch_size=2, seed=0)))
    assert x.shape == (2, 4, 4, 1) and y.shape == (2,)
    assert set(np.unique(x.numpy())) <= {-1.0, 1.0}
