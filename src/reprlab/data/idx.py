"""Reader for the IDX format used by MNIST and Fashion-MNIST.

An IDX file is a 4-byte magic number ``0x00 0x00 <dtype> <ndim>``, ``ndim`` big-endian
uint32 dimensions, then the payload. MNIST-like files use dtype ``0x08`` (uint8): images
have magic ``0x00000803`` (N, H, W) and labels ``0x00000801`` (N,). Files may be gzipped
(detected from the content, not the file name).

Example:
    >>> from reprlab.data.idx import load_idx_split
    >>> data = load_idx_split("mnist/train-images-idx3-ubyte.gz",
    ...                       "mnist/train-labels-idx1-ubyte.gz")  # doctest: +SKIP
    >>> data.images.shape  # doctest: +SKIP
    torch.Size([60000, 1, 28, 28])
"""

from __future__ import annotations

import gzip
import logging
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from reprlab.data.dataset import ImageData
from reprlab.base.errors import DataError

logger = logging.getLogger(__name__)

IDX_UINT8 = 0x08
MAGIC_IMAGES = 0x00000803
MAGIC_LABELS = 0x00000801
_GZIP_MAGIC = b"\x1f\x8b"
_REDOWNLOAD = "re-download the file (delete it and load again with downloading enabled, or copy a fresh copy in place)"


def _read_bytes(path: Path) -> bytes:
    """Return the (decompressed, if gzipped) content of ``path`` or raise :class:`DataError`."""
    if not path.is_file():
        raise DataError(f"IDX file {path} does not exist",
                        fix="check the path, or pass --data-dir / set REPRLAB_DATA to the folder holding it")
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
            fh.seek(0)
            if head != _GZIP_MAGIC:
                return fh.read()
            with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
                return gz.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip data ({exc})", fix=_REDOWNLOAD) from exc
    except OSError as exc:
        raise DataError(f"cannot read IDX file {path}: {exc}", fix="check the file permissions and path") from exc


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (optionally gzipped) of uint8 values into an array of its declared shape.

    Checks the magic number, the dimensions, and that the payload size equals the product of
    the dimensions; every problem is raised as :class:`DataError` naming the file.

    Example:
        >>> labels = read_idx("fashion-mnist/t10k-labels-idx1-ubyte.gz")  # doctest: +SKIP
        >>> labels.shape, labels.dtype  # doctest: +SKIP
        ((10000,), dtype('uint8'))
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataError(f"{path}: file is {len(raw)} bytes, too short for an IDX header (need at least 4)",
                        fix=_REDOWNLOAD)
    zero0, zero1, dtype_code, ndim = raw[0], raw[1], raw[2], raw[3]
    magic = int.from_bytes(raw[:4], "big")
    if zero0 != 0 or zero1 != 0:
        raise DataError(f"{path}: not an IDX file (magic number 0x{magic:08x}, expected 0x00000803 for images "
                        "or 0x00000801 for labels)",
                        fix="point to the IDX files (e.g. train-images-idx3-ubyte.gz), or " + _REDOWNLOAD)
    if dtype_code != IDX_UINT8:
        raise DataError(f"{path}: IDX data type byte is 0x{dtype_code:02x}, only 0x08 (unsigned byte) is supported "
                        f"(magic 0x{magic:08x})",
                        fix="use the MNIST-style uint8 IDX files, or save the images with numpy.save and load them as data.name=arrays data.path=FILE.npy")
    if not 1 <= ndim <= 4:
        raise DataError(f"{path}: IDX header declares {ndim} dimensions (magic 0x{magic:08x}); expected 1 (labels) "
                        "or 3 (images)", fix=_REDOWNLOAD)
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header: expected {header} bytes, file has {len(raw)} bytes",
                        fix=_REDOWNLOAD)
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    if any(d == 0 for d in dims):
        raise DataError(f"{path}: IDX header declares an empty shape {dims}", fix=_REDOWNLOAD)
    expected = int(np.prod(dims, dtype=np.int64))
    actual = len(raw) - header
    if actual < expected:
        raise DataError(f"{path}: IDX file is truncated: shape {dims} needs {expected:,} payload bytes "
                        f"but only {actual:,} are present ({expected - actual:,} missing)", fix=_REDOWNLOAD)
    if actual > expected:
        raise DataError(f"{path}: IDX payload has {actual - expected:,} unexpected trailing bytes: shape {dims} "
                        f"needs {expected:,} payload bytes but {actual:,} are present", fix=_REDOWNLOAD)
    # Copy so that the array owns writable memory (torch.from_numpy warns on read-only buffers).
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def load_idx_split(images_path: str | os.PathLike, labels_path: str | os.PathLike | None = None, *,
                   name: str | None = None) -> ImageData:
    """Load an IDX image file (N, H, W) and optional label file (N,) into :class:`ImageData`.

    Images stay uint8 with shape ``(N, 1, H, W)``; labels become int64.

    Example:
        >>> data = load_idx_split("mnist/t10k-images-idx3-ubyte.gz",
        ...                       "mnist/t10k-labels-idx1-ubyte.gz", name="mnist")  # doctest: +SKIP
        >>> len(data), data.shape  # doctest: +SKIP
        (10000, (1, 28, 28))
    """
    images_path = Path(images_path)
    images = read_idx(images_path)
    if images.ndim == 1:
        raise DataError(f"{images_path}: this is a 1-D IDX file (magic 0x00000801, labels), not an image file",
                        fix="pass the *-images-idx3-ubyte file as images and the *-labels-idx1-ubyte file as labels")
    if images.ndim == 4:
        raise DataError(f"{images_path}: 4-D IDX files (shape {images.shape}) are not supported as images",
                        fix="use (N, H, W) IDX image files, or save the images with numpy.save and load them as data.name=arrays data.path=FILE.npy")
    if images.ndim == 2:  # a single image
        images = images[None]
    labels = None
    if labels_path is not None:
        labels_path = Path(labels_path)
        raw_labels = read_idx(labels_path)
        if raw_labels.ndim != 1:
            raise DataError(f"{labels_path}: expected a 1-D IDX label file (magic 0x00000801), got shape "
                            f"{raw_labels.shape}",
                            fix="pass the *-labels-idx1-ubyte file as labels (images and labels may be swapped)")
        if raw_labels.shape[0] != images.shape[0]:
            raise DataError(f"image/label count mismatch: {images_path} holds {images.shape[0]:,} images but "
                            f"{labels_path} holds {raw_labels.shape[0]:,} labels",
                            fix="use the image and label files of the same split (train-* with train-*, "
                                "t10k-* with t10k-*), or " + _REDOWNLOAD)
        labels = torch.from_numpy(raw_labels.astype(np.int64))
    tensor = torch.from_numpy(images).unsqueeze(1)
    logger.debug("read %d images of %s from %s", tensor.shape[0], tuple(tensor.shape[1:]), images_path)
    return ImageData(tensor, labels, name=name or images_path.parent.name or "idx",
                     source=str(images_path),
                     meta={"files": [str(images_path)] + ([str(labels_path)] if labels_path is not None else [])})
