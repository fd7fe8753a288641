"""Seeding every random generator a run uses, so a run is reproducible on the CPU."""

import random

import keras
import numpy as np


def set_seeds(seed: int) -> None:
    """Seeds Python's `random`, NumPy's global generator and the Keras backend.

    Args:
        seed: A non-negative integer below `2**32`.

    Raises:
        ValueError: If `seed` is not such an integer.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**32:
        raise ValueError(f"Expected `seed` to be an integer in [0, 2**32). Received: seed={seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 -- seeding the legacy global generator is the point.
    keras.utils.set_random_seed(seed)
