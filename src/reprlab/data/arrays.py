"""Load images from NumPy ``.npy`` / ``.npz`` files.

Accepted layouts are ``NCHW``, ``NHWC``, ``NHW`` (a channel axis is added) and flat ``(N, D)``
rows. Flat rows are reshaped only when the image shape is certain: given as ``image_shape``
(``[H, W]`` for one channel, ``[C, H, W]`` for rows flattened channel-first, or ``[H, W, C]``
with ``layout="NHWC"``), or ``D`` a perfect square read as one ``sqrt(D) x sqrt(D)`` channel
(logged, naming the shape). Anything else (``600`` could be 20x30 or 24x25) is refused. Pixels may be uint8 ``0..255``, integers in
``0..255``, floats in ``[0, 1]`` (kept) or floats in ``[0, 255]`` (divided by 255, with a
logged notice). Files are always opened with ``allow_pickle=False``.

Example:
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "toy.npz")
    >>> np.savez(path, x=np.zeros((8, 28, 28, 1), np.uint8), y=np.arange(8))
    >>> data = load_arrays(path)
    >>> data.images.shape, data.labels.tolist()[:3]
    (torch.Size([8, 1, 28, 28]), [0, 1, 2])
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from reprlab.data.dataset import ImageData
from reprlab.base.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

LAYOUTS = ("auto", "NCHW", "NHWC", "NHW")
IMAGE_KEYS = ("x", "images", "X", "arr_0", "trainX", "train_x", "x_train", "X_train", "data", "imgs", "image",
              "inputs", "features")
LABEL_KEYS = ("y", "labels", "Y", "arr_1", "trainY", "train_y", "y_train", "Y_train", "targets", "target", "label")
_SPLIT_IMAGE_KEYS = ("{s}_x", "x_{s}", "{s}X", "X_{s}", "{s}_images", "images_{s}", "{s}_data", "{s}")
_SPLIT_LABEL_KEYS = ("{s}_y", "y_{s}", "{s}Y", "Y_{s}", "{s}_labels", "labels_{s}", "{s}_targets")


@contextlib.contextmanager
def _opened(path: Path, what: str) -> Iterator[np.ndarray | np.lib.npyio.NpzFile]:
    """Yield the array (``.npy``) or lazily-read archive (``.npz``) at ``path``; close it afterwards."""
    if not path.is_file():
        raise DataError(f"{what} file {path} does not exist", fix="check the path")
    if path.suffix.lower() not in (".npy", ".npz"):
        raise DataError(f"{path}: unsupported {what} file type {path.suffix!r}; expected .npy or .npz",
                        fix="save the arrays with numpy.save / numpy.savez, or use the 'folder' dataset for images")
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise DataError(f"cannot open {what} file {path}: {exc}", fix="check the file permissions") from exc
    with fh:  # we own the handle, so it is closed even when numpy fails half-way
        try:
            obj = np.load(fh, allow_pickle=False)
        except ValueError as exc:
            if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
                raise _object_error(path, None) from exc
            raise DataError(f"{path}: not a valid NumPy {path.suffix} file ({exc})",
                            fix="re-create it with numpy.save / numpy.savez") from exc
        except (OSError, EOFError, zipfile.BadZipFile) as exc:
            raise DataError(f"{path}: cannot read NumPy {path.suffix} file ({exc})",
                            fix="the file is corrupt or truncated; re-create it with numpy.save / numpy.savez") from exc
        if isinstance(obj, np.ndarray):
            yield obj
        else:
            with obj:
                yield obj


def _object_error(path: Path, key: str | None) -> DataError:
    where = f"{path}" + (f" (array {key!r})" if key else "")
    return DataError(f"{where}: holds a Python-object array, which reprlab never unpickles for safety",
                     fix="save a numeric array instead, e.g. np.save(path, np.stack(list_of_images).astype(np.uint8))")


def _npz_get(npz: Any, path: Path, key: str) -> np.ndarray:
    try:
        return npz[key]
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise _object_error(path, key) from exc
        raise DataError(f"{path}: cannot read array {key!r} ({exc})", fix="re-create the .npz file") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: array {key!r} is corrupt or truncated ({exc})",
                        fix="re-create the .npz file") from exc


def _pick_key(keys: list[str], candidates: tuple[str, ...], split: str | None,
              split_patterns: tuple[str, ...]) -> str | None:
    ordered = [p.format(s=split) for p in split_patterns] if split else []
    ordered += list(candidates)
    for key in ordered:
        if key in keys:
            return key
    return None


def _check_numeric(arr: np.ndarray, path: Path, key: str | None) -> None:
    if arr.dtype == object:
        raise _object_error(path, key)
    if np.issubdtype(arr.dtype, np.complexfloating) or not (np.issubdtype(arr.dtype, np.number)
                                                             or arr.dtype == np.bool_):
        where = f"{path}" + (f" (array {key!r})" if key else "")
        raise DataError(f"{where}: dtype {arr.dtype} is not numeric", fix="store images as uint8 or float arrays")


def _check_image_shape(image_shape: Any) -> tuple[int, ...] | None:
    """``image_shape`` as a tuple of 2 or 3 positive ints (or ``None``), else :class:`ConfigError`."""
    if image_shape is None:
        return None
    ok = (isinstance(image_shape, (list, tuple)) and len(image_shape) in (2, 3)
          and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in image_shape))
    if not ok:
        raise ConfigError(f"image_shape must be [H, W] or [C, H, W] of positive integers, got {image_shape!r}",
                          fix="e.g. data.image_shape=[20,30] (one channel) or [3,32,32]")
    return tuple(int(v) for v in image_shape)


def _unflatten(x: np.ndarray, image_shape: tuple[int, ...] | None, where: str, layout: str = "auto") -> np.ndarray:
    """Flat ``(N, D)`` rows -> ``(N, C, H, W)``: by ``image_shape`` if given, else only for a square ``D``."""
    n, d = x.shape
    if image_shape is None:
        side = math.isqrt(d)
        if side * side != d or side < 2:
            raise DataError(f"{where}: 2-D array of shape {x.shape} holds flat rows of {d} values, which is not a "
                            f"square number, so the image height and width are ambiguous",
                            fix="give the shape: data.image_shape=[H,W] (e.g. [20,30] for 600 values; "
                                "load_arrays(..., image_shape=(H, W)) in Python), or save (N, H, W) arrays")
        logger.info("%s: flat rows of %d values read as %dx%d one-channel images (a guess from the square "
                    "number; set data.image_shape=[H,W] if that is wrong)", where, d, side, side)
        return x.reshape(n, 1, side, side)
    if math.prod(image_shape) != d:
        raise DataError(f"{where}: image_shape={list(image_shape)} holds {math.prod(image_shape)} values but each "
                        f"row of shape {x.shape} has {d}",
                        fix="give data.image_shape=[H,W] (or [C,H,W]) whose product is the row length")
    if len(image_shape) == 2:
        logger.info("%s: flat rows of %d values reshaped to the given %dx%d one-channel images", where, d, *image_shape)
        return x.reshape(n, 1, *image_shape)
    if layout == "NHWC":
        h, w, c = image_shape
        out = x.reshape(n, h, w, c).transpose(0, 3, 1, 2)
    else:
        c, h, w = image_shape
        out = x.reshape(n, c, h, w)
    if c not in (1, 3):
        raise DataError(f"{where}: image_shape={list(image_shape)} gives {c} channels; images need 1 or 3",
                        fix="give [C, H, W] with C = 1 or 3 (or [H, W, C] with layout='NHWC')")
    logger.info("%s: flat rows of %d values reshaped to the given %d-channel %dx%d images", where, d, c, h, w)
    return out


def _to_nchw(x: np.ndarray, layout: str, where: str, image_shape: tuple[int, ...] | None = None) -> np.ndarray:
    if x.ndim == 2 and (layout == "auto" or image_shape is not None):
        return _unflatten(x, image_shape, where, layout)
    out = _to_nchw_nd(x, layout, where)
    if image_shape is not None:
        given = tuple(image_shape[-2:]) if len(image_shape) == 2 or layout != "NHWC" else tuple(image_shape[:2])
        if tuple(out.shape[-2:]) != given:
            raise DataError(f"{where}: images are {out.shape[-2]}x{out.shape[-1]} but image_shape={list(image_shape)}",
                            fix="drop data.image_shape (it is only needed for flat (N, H*W) rows) or correct it")
    return out


def _to_nchw_nd(x: np.ndarray, layout: str, where: str) -> np.ndarray:
    if layout == "auto":
        if x.ndim == 3:
            layout = "NHW"
        elif x.ndim == 4:
            c_first, c_last = x.shape[1] in (1, 3), x.shape[3] in (1, 3)
            if c_first and c_last:
                raise DataError(f"{where}: cannot tell the channel axis of shape {x.shape} (axis 1 and axis 3 "
                                "could both be channels)", fix="pass layout='NCHW' or layout='NHWC'")
            if c_first:
                layout = "NCHW"
            elif c_last:
                layout = "NHWC"
            else:
                raise DataError(f"{where}: shape {x.shape} has no channel axis of size 1 or 3 (neither axis 1 "
                                "nor axis 3)", fix="convert to grayscale (1 channel) or RGB (3 channels), or pass "
                                "layout='NCHW'/'NHWC' explicitly")
        elif x.ndim == 2:
            return _unflatten(x, None, where)
        else:
            raise DataError(f"{where}: images must be a 3-D (N, H, W) or 4-D (N, H, W, C) / (N, C, H, W) array, "
                            f"got {x.ndim}-D shape {x.shape}",
                            fix="reshape the array (a single image needs a leading batch axis: x[None])")
    expected = {"NCHW": 4, "NHWC": 4, "NHW": 3}[layout]
    if x.ndim != expected:
        raise DataError(f"{where}: layout {layout!r} needs a {expected}-D array, got {x.ndim}-D shape {x.shape}",
                        fix="pass the matching layout, or layout='auto'")
    if layout == "NHW":
        return x[:, None]
    if layout == "NHWC":
        x = x.transpose(0, 3, 1, 2)
    if x.shape[1] not in (1, 3):
        raise DataError(f"{where}: {x.shape[1]} channels (shape {x.shape} as {layout}); images need 1 or 3",
                        fix="drop the alpha channel (x[..., :3]) or convert to grayscale/RGB")
    return x


def _to_pixels(x: np.ndarray, where: str) -> np.ndarray:
    """Convert to uint8 0..255 or float32 0..1, raising :class:`DataError` for anything else."""
    if x.dtype == np.uint8:
        return x
    if x.dtype == np.bool_:
        logger.info("%s: boolean images mapped to 0/255", where)
        return x.astype(np.uint8) * 255
    if np.issubdtype(x.dtype, np.integer):
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi > 255:
            raise DataError(f"{where}: integer pixels must lie in 0..255, found values in [{lo}, {hi}]",
                            fix="rescale to 0..255 (uint8) or to floats in [0, 1]")
        logger.info("%s: %s pixels in [%d, %d] converted to uint8", where, x.dtype, lo, hi)
        return x.astype(np.uint8)
    finite = np.isfinite(x)
    if not finite.all():
        bad = int((~finite).reshape(x.shape[0], -1).any(axis=1).sum())
        raise DataError(f"{where}: {bad} image(s) contain NaN or infinite pixels",
                        fix="remove or repair those images (e.g. np.nan_to_num) before loading")
    lo, hi = float(x.min()), float(x.max())
    if lo >= 0.0 and hi <= 1.0:
        return x.astype(np.float32, copy=False)
    if lo >= 0.0 and hi <= 255.0:
        logger.info("%s: float pixels lie in [%.3g, %.3g]; treating them as 0..255 and dividing by 255", where, lo, hi)
        return (x.astype(np.float32) / np.float32(255.0)).clip(0.0, 1.0)
    hint = "(x + 1) / 2" if lo >= -1.0 and hi <= 1.0 else "(x - x.min()) / (x.max() - x.min())"
    raise DataError(f"{where}: float pixels must lie in [0, 1] or [0, 255], found values in [{lo:.4g}, {hi:.4g}]",
                    fix=f"rescale to [0, 1] before saving, e.g. {hint}")


def _to_labels(y: np.ndarray, n: int, where: str) -> torch.Tensor:
    if y.dtype == object:
        raise DataError(f"{where}: labels are a Python-object array", fix="save labels as an integer array")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    elif y.ndim == 2 and y.shape[0] == n and y.shape[1] > 1 and np.all((y == 0) | (y == 1)) and np.all(y.sum(1) == 1):
        logger.info("%s: one-hot labels of shape %s converted to class indices", where, y.shape)
        y = y.argmax(axis=1)
    if y.ndim != 1:
        raise DataError(f"{where}: labels must be 1-D (one integer per image), got shape {y.shape}",
                        fix="save labels as an (N,) integer array")
    if y.shape[0] != n:
        raise DataError(f"{where}: {n:,} images but {y.shape[0]:,} labels",
                        fix="provide exactly one label per image, in the same order")
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating) or y.dtype == np.bool_):
        raise DataError(f"{where}: labels have non-numeric dtype {y.dtype}",
                        fix="map class names to integers 0..K-1 before saving")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise DataError(f"{where}: labels must be integers, found non-integer or NaN float values",
                            fix="save class indices 0..K-1 as an integer array")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise DataError(f"{where}: labels must be >= 0, found {int(y.min())}",
                        fix="map labels to class indices 0..K-1")
    return torch.from_numpy(y)


def _load_labels(labels: str | os.PathLike | np.ndarray | torch.Tensor, split: str | None) -> tuple[np.ndarray, str]:
    if isinstance(labels, torch.Tensor):
        return labels.detach().cpu().numpy(), "labels"
    if isinstance(labels, np.ndarray):
        return labels, "labels"
    lpath = Path(labels)
    with _opened(lpath, "labels") as obj:
        if isinstance(obj, np.ndarray):
            _check_numeric(obj, lpath, None)
            return obj, str(lpath)
        keys = list(obj.files)
        key = _pick_key(keys, LABEL_KEYS, split, _SPLIT_LABEL_KEYS)
        if key is None and len(keys) == 1:
            key = keys[0]
        if key is None:
            raise DataError(f"{lpath}: cannot tell which array holds the labels; arrays: {keys}",
                            fix=f"name the labels array one of {list(LABEL_KEYS[:4])}, or save it alone as .npy")
        arr = _npz_get(obj, lpath, key)
    _check_numeric(arr, lpath, key)
    return arr, f"{lpath} (array {key!r})"


def load_arrays(path: str | os.PathLike, labels: str | os.PathLike | np.ndarray | torch.Tensor | None = None, *,
                layout: str = "auto", name: str | None = None, split: str | None = None,
                images_key: str | None = None, labels_key: str | None = None,
                image_shape: tuple[int, ...] | list[int] | None = None) -> ImageData:
    """Load images (and labels) from a ``.npy`` or ``.npz`` file.

    For ``.npz`` the images are the array named ``images_key`` or the first present of
    ``x, images, X, arr_0, trainX, ...`` (with ``split`` given, ``{split}_x``, ``x_{split}``,
    ``{split}X`` ... are tried first), or the only array. Labels come from ``labels`` (a
    ``.npy``/``.npz`` path or an array) or else the ``.npz`` key ``labels_key`` /
    ``y, labels, trainY, ...``; without any, the result is unlabelled. Flat ``(N, D)`` rows
    need ``image_shape`` (``[H, W]`` or ``[C, H, W]``) unless ``D`` is a perfect square.

    Example:
        >>> data = load_arrays("faces.npy", "faces_labels.npy", layout="NHWC")  # doctest: +SKIP
    """
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown array layout {layout!r}", fix=f"use one of {', '.join(LAYOUTS)}")
    shape = _check_image_shape(image_shape)
    path = Path(path)
    y_arr: np.ndarray | None = None
    label_where = ""
    with _opened(path, "images") as obj:
        if isinstance(obj, np.ndarray):
            if images_key is not None:
                raise DataError(f"{path}: images_key={images_key!r} given but a .npy file holds a single array",
                                fix="drop images_key, or save the arrays together with numpy.savez")
            x, xkey, where = obj, None, str(path)
        else:
            keys = list(obj.files)
            if not keys:
                raise DataError(f"{path}: the .npz file holds no arrays", fix="save the images with numpy.savez")
            if images_key is not None:
                if images_key not in keys:
                    raise DataError(f"{path}: no array named {images_key!r}; arrays: {keys}",
                                    fix="set images_key to one of the listed names")
                key = images_key
            else:
                key = _pick_key(keys, IMAGE_KEYS, split, _SPLIT_IMAGE_KEYS)
                if key is None and len(keys) == 1:
                    key = keys[0]
                if key is None:
                    raise DataError(f"{path}: cannot tell which array holds the images; arrays: {keys}",
                                    fix=f"name the images array one of {list(IMAGE_KEYS[:4])} (labels: "
                                        f"{list(LABEL_KEYS[:3])}), or pass images_key=...")
            x, xkey, where = _npz_get(obj, path, key), key, f"{path} (array {key!r})"
            if labels is None:
                if labels_key is not None:
                    if labels_key not in keys:
                        raise DataError(f"{path}: no array named {labels_key!r}; arrays: {keys}",
                                        fix="set labels_key to one of the listed names")
                    lkey: str | None = labels_key
                else:
                    lkey = _pick_key([k for k in keys if k != key], LABEL_KEYS, split, _SPLIT_LABEL_KEYS)
                if lkey is not None:
                    y_arr, label_where = _npz_get(obj, path, lkey), f"{path} (array {lkey!r})"
                    _check_numeric(y_arr, path, lkey)
    _check_numeric(x, path, xkey)
    if labels is not None:
        y_arr, label_where = _load_labels(labels, split)
    x = _to_pixels(_to_nchw(x, layout, where, shape), where)
    label_tensor = None if y_arr is None else _to_labels(y_arr, x.shape[0], label_where)
    images = torch.from_numpy(np.ascontiguousarray(x))
    logger.debug("loaded %d images of shape %s from %s", images.shape[0], tuple(images.shape[1:]), where)
    return ImageData(images, label_tensor, name=name or path.stem, source=str(path),
                     meta={"files": [str(path)] + ([str(labels)] if isinstance(labels, (str, os.PathLike)) else [])})
