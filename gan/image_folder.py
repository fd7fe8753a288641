"""Loading a folder of image files, one subfolder per class."""

import pathlib

import numpy as np
from PIL import Image, UnidentifiedImageError

from gan.data_error import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
_GRAYSCALE_MODES = ("1", "L", "LA", "I", "I;16", "F")


def load_image_folder(root, resolution):
    """Reads every image under `root`, resized to `resolution`².

    With subfolders, each subfolder is a class (sorted by name) and files directly in
    `root` are ignored; without, every image is class 0. Files that PIL cannot decode are
    skipped and counted. The images are grayscale when every image is, RGB otherwise.

    Letters: N images, R resolution, C channels (1 or 3).

    Args:
        root: the folder.
        resolution: output side R.

    Returns:
        (images uint8 [N, R, R, C], labels int32 [N], class names, corrupt-file count).

    Raises:
        DataError: if the folder is missing, holds no image files, or none is readable.
    """
    root = pathlib.Path(root).expanduser()
    if not root.is_dir():
        raise DataError("no such folder", path=root)
    subfolders = sorted(p for p in root.iterdir() if p.is_dir())
    classes = [(p.name, p) for p in subfolders] or [(root.name or "images", root)]
    files = []
    for label, (_, folder) in enumerate(classes):
        recursive = folder.rglob("*") if subfolders else folder.glob("*")
        files += [(path, label) for path in sorted(recursive)
                  if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise DataError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) found", path=root)
    decoded, corrupt, grayscale = [], 0, True
    for path, label in files:
        try:
            with Image.open(path) as image:
                image.load()
                grayscale = grayscale and image.mode in _GRAYSCALE_MODES
                decoded.append((image.convert("RGB"), label))
        except (OSError, SyntaxError, ValueError, UnidentifiedImageError):
            corrupt += 1
    if not decoded:
        raise DataError(f"none of the {len(files)} image files could be decoded", path=root)
    images = np.stack([
        np.asarray(image.resize((resolution, resolution), Image.Resampling.LANCZOS))
        for image, _ in decoded
    ])  # [N, R, R, 3]
    if grayscale:
        images = images[..., :1]
    labels = np.array([label for _, label in decoded], np.int32)
    return images.astype(np.uint8), labels, [name for name, _ in classes], corrupt
