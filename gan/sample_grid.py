"""Sample grids: tiling generated images into one picture."""

import pathlib

import numpy as np
from PIL import Image


def to_uint8(images) -> np.ndarray:
    """float images in [-1, 1] → uint8 [0, 255]."""
    return np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(
        np.uint8)


def make_grid(images, columns: int, padding: int = 2) -> np.ndarray:
    """Tiles images [N, R, R, C] (float in [-1, 1] or uint8) row by row.

    Returns:
        uint8 [rows·(R + p) + p, columns·(R + p) + p, C] with a white padding p.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        images = to_uint8(images)
    n, r, _, c = images.shape
    rows = -(-n // columns)
    grid = np.full((rows * (r + padding) + padding, columns * (r + padding) + padding, c), 255,
                   np.uint8)
    for i in range(n):
        y, x = divmod(i, columns)
        top, left = padding + y * (r + padding), padding + x * (r + padding)
        grid[top:top + r, left:left + r] = images[i]
    return grid


def save_grid(path, images, columns: int, scale: int = 2) -> pathlib.Path:
    """Writes `make_grid(images, columns)` as a PNG, upscaled `scale`× (nearest)."""
    grid = make_grid(images, columns)
    image = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")  # whatever the extension: the flags promise a PNG
    return path
