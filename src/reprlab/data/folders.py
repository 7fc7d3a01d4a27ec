"""Load a folder of image files (PNG, JPEG, BMP, PGM/PPM, TIFF) with Pillow.

Two layouts are recognised:

* **class folders** ``root/<class>/<image>`` (any depth below each class folder): labels
  are the indices of the class folder names in natural order (``s1, s2, ..., s10``: numbers
  compare as numbers, see :func:`natural_key`), and ``class_names`` lists them, so
  ``class_names[label]`` is always the folder an image came from;
* **flat** ``root/<image>``: unlabelled.

Hidden files and folders (``.name``) are ignored. Images become uint8 ``(N, C, H, W)``
with 1 channel when every image is grayscale (or ``channels=1``), else 3.

Example:
    >>> data = load_image_folder("att-faces", resize=(56, 46))  # doctest: +SKIP
    >>> data.shape, len(data.class_names)  # doctest: +SKIP
    ((1, 56, 46), 40)
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from reprlab.data.dataset import ImageData
from reprlab.base.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".pbm", ".pnm", ".tif", ".tiff")
_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}


def natural_key(name: str) -> tuple:
    """Sort key comparing runs of digits as numbers (``s2`` before ``s10``), then the name itself.

    Example:
        >>> sorted(["s10", "s2", "s1", "b", "a10", "a9"], key=natural_key)
        ['a9', 'a10', 'b', 's1', 's2', 's10']
    """
    parts = re.split(r"(\d+)", name)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in parts if p), name


def _parse_size(resize: int | Sequence[int] | None) -> tuple[int, int] | None:
    if resize is None:
        return None
    if isinstance(resize, (int, np.integer)) and not isinstance(resize, bool):
        size = (int(resize), int(resize))
    elif isinstance(resize, (list, tuple)) and len(resize) == 2 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in resize):
        size = (int(resize[0]), int(resize[1]))
    else:
        raise ConfigError(f"resize must be an integer or [H, W], got {resize!r}", fix="set data.resize=[H, W]")
    if min(size) < 1:
        raise ConfigError(f"resize must be positive, got {list(size)}", fix="set data.resize=[H, W] with H, W >= 1")
    return size


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")


def _visible(p: Path) -> bool:
    return not p.name.startswith(".")


def _images_below(folder: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(Path(dirpath) / f for f in sorted(filenames) if _is_image(Path(f)))
    return found


def _read_error(path: Path, exc: BaseException) -> DataError:
    return DataError(f"cannot read image {path}: {exc}",
                     fix="delete or replace the corrupt file (or move non-image files out of the folder)")


_READ_ERRORS: tuple[type[BaseException], ...] = (OSError, SyntaxError, ValueError, EOFError)


def _open_image(path: Path):  # -> PIL.Image.Image
    """Open and decode ``path``; raise :class:`DataError` naming the file."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            return img.copy()
    except (*_READ_ERRORS, Image.DecompressionBombError) as exc:
        raise _read_error(path, exc) from exc


def _probe_gray(path: Path) -> bool:
    """Whether ``path`` is a grayscale image, reading only its header (and palette)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return _is_gray(img)
    except (*_READ_ERRORS, Image.DecompressionBombError) as exc:
        raise _read_error(path, exc) from exc


def _is_gray(img) -> bool:
    """True for grayscale modes and for palette images whose palette is all grey."""
    if img.mode in _GRAY_MODES:
        return True
    if img.mode in ("P", "PA"):
        palette = img.getpalette() or []
        return len(palette) >= 3 and all(palette[i] == palette[i + 1] == palette[i + 2]
                                         for i in range(0, len(palette) - 2, 3))
    return False


def _to_gray_8bit(img):  # -> PIL.Image.Image in mode "L"
    from PIL import Image

    if img.mode not in ("I", "F") and not img.mode.startswith("I;16"):
        return img.convert("L")
    arr = np.asarray(img)
    if img.mode == "F":
        arr = np.nan_to_num(arr.astype(np.float64))
        arr = arr * (255.0 if arr.max() <= 1.0 else 1.0)
    elif img.mode.startswith("I;16"):  # 16-bit: 0..65535 -> 0..255
        arr = arr.astype(np.float64) / 257.0
    else:  # 32-bit "I": 16-bit data on older Pillow, or 8-bit values stored wide
        arr = arr.astype(np.float64)
        if arr.max() > 255:
            arr = arr * 255.0 / (65535.0 if arr.max() <= 65535 else float(arr.max()))
    arr = np.clip(arr, 0, 255)
    return Image.fromarray(np.rint(arr).astype(np.uint8), mode="L")


def _convert(img, channels: int):  # -> PIL.Image.Image in mode "L" or "RGB"
    if _is_gray(img):
        gray = _to_gray_8bit(img)
        return gray if channels == 1 else gray.convert("RGB")
    rgb = img.convert("RGB")  # drops alpha; CMYK/YCbCr/palette become RGB
    return rgb.convert("L") if channels == 1 else rgb


def load_image_folder(path: str | os.PathLike, *, resize: int | Sequence[int] | None = None,
                      channels: int | None = None, name: str | None = None) -> ImageData:
    """Load every image under ``path`` into uint8 :class:`ImageData`.

    ``resize`` (``[H, W]`` or an int) resizes each image with Pillow's antialiased bilinear
    filter; without it all images must share one size. ``channels`` forces 1 (luminance
    0.299 R + 0.587 G + 0.114 B) or 3 channels. ``meta["files"]`` lists the files in order.

    Example:
        >>> data = load_image_folder("my_digits/")  # doctest: +SKIP
        >>> data.class_names  # doctest: +SKIP
        ['0', '1', '2']
    """
    from PIL import Image

    root = Path(path)
    size = _parse_size(resize)
    if channels not in (None, 1, 3):
        raise ConfigError(f"channels must be 1 or 3, got {channels!r}", fix="set data.channels to 1 or 3")
    if not root.exists():
        raise DataError(f"image folder {root} does not exist", fix="check the path")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder", fix="point to a folder of images (or class sub-folders)")

    subdirs = sorted((p for p in root.iterdir() if p.is_dir() and _visible(p)), key=lambda p: natural_key(p.name))
    top_files = sorted(p for p in root.iterdir() if p.is_file() and _is_image(p))
    files: list[Path] = []
    labels: list[int] | None = None
    class_names: list[str] | None = None
    per_class = [(d, _images_below(d)) for d in subdirs]
    if any(found for _, found in per_class):
        empty = [d.name for d, found in per_class if not found]
        if empty:
            raise DataError(f"{root}: class folder(s) {empty[:5]} contain no images "
                            f"(extensions {', '.join(IMAGE_EXTENSIONS)})",
                            fix="remove the empty class folders or add images to them")
        if top_files:
            logger.warning("%s: ignoring %d image(s) next to the class folders (e.g. %s)", root, len(top_files),
                           top_files[0].name)
        class_names = [d.name for d, _ in per_class]
        labels = []
        for label, (_, found) in enumerate(per_class):
            files.extend(found)
            labels.extend([label] * len(found))
    else:
        files = top_files
    if not files:
        raise DataError(f"{root}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)})",
                        fix="point to a folder that holds images directly or in one sub-folder per class")

    if channels is None:  # header-only pass: modes are known without decoding pixels
        channels = 1 if all(_probe_gray(f) for f in files) else 3
    first_size: tuple[int, int] | None = None
    arrays: list[np.ndarray] = []
    for f in files:
        img = _convert(_open_image(f), channels)
        if size is not None and img.size != (size[1], size[0]):
            img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        hw = (img.size[1], img.size[0])
        if first_size is None:
            first_size, first_file = hw, f
        elif hw != first_size:
            raise DataError(f"{root}: images have different sizes, e.g. {first_file.name} is "
                            f"{first_size[0]}x{first_size[1]} (HxW) but {f.name} is {hw[0]}x{hw[1]}",
                            fix=f"set data.resize=[H, W] (e.g. data.resize=[{first_size[0]}, {first_size[1]}])")
        arr = np.asarray(img, dtype=np.uint8)
        arrays.append(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
    images = torch.from_numpy(np.stack(arrays))
    label_tensor = None if labels is None else torch.tensor(labels, dtype=torch.int64)
    logger.debug("loaded %d images of shape %s from %s", images.shape[0], tuple(images.shape[1:]), root)
    return ImageData(images, label_tensor, name=name or root.name or "folder", source=str(root),
                     class_names=class_names, meta={"files": [str(f.relative_to(root)) for f in files]})
