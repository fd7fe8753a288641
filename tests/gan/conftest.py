"""Fixtures of the gan tests: a tiny image folder and dataset, and a tiny model trained by
`gan.train`'s main (both built once per run, not once per xdist worker: `built_once`)."""

import numpy as np
import pytest
from built_once import built_once
from gan_cases import TINY_FLAGS, run_main


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory):
    """Two classes of 12 random 8×8 grayscale PNGs."""
    from PIL import Image

    def build(root):
        rng = np.random.default_rng(0)
        for name in ("a", "b"):
            (root / name).mkdir(parents=True)
            for i in range(12):
                Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(
                    root / name / f"{i}.png")

    return built_once(tmp_path_factory, "gan_images", build, leaf="images")


@pytest.fixture(scope="session")
def tiny_data():
    """An in-memory `ImageData`: 32 train and 16 test 8×8 grayscale images, 2 classes."""
    from gan.image_data import ImageData

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (48, 8, 8, 1), dtype=np.uint8)
    labels = rng.integers(0, 2, 48).astype(np.int32)
    return ImageData("tiny", images[:32], labels[:32], images[32:], labels[32:], ("a", "b"))


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory, image_folder):
    """A model directory after `gan.train --steps=2` on the image folder (checkpoints of
    steps 1 and 2). Tests must not change it: copy it first."""
    from gan import train

    def build(model_dir):
        code = run_main(train, [f"--model_dir={model_dir}", f"--dataset=folder:{image_folder}",
                                "--steps=2", *TINY_FLAGS])
        assert code == 0

    return built_once(tmp_path_factory, "gan_trained", build)
