"""Reader for MNIST-M (Ganin & Lempitsky's DANN digits: MNIST blended with BSDS500 patches, RGB).

The layout is the one inside the original ``mnist_m.tar.gz`` (and what pytorch-adapt reads)::

    mnist_m/
      mnist_m_train/00000000.png ...      (59,001 PNG files)
      mnist_m_train_labels.txt            lines "00000000.png 5"
      mnist_m_test/00000000.png ...       (9,001 PNG files)
      mnist_m_test_labels.txt

The images in that archive are 32x32 RGB. :func:`read_mnistm` reads the extracted folders;
:func:`read_mnistm_archive` reads ``mnist_m.tar.gz`` itself, in memory, without extracting it.
The labels file decides which images belong to a split and in what order; PNGs it does not
list are ignored. Pillow decodes the PNGs in a plain loop (a thread pool gave no gain for
these 32x32 files; the 9,001 test images take about a second).

Example:
    >>> from reprlab.data.mnistm import read_mnistm
    >>> test = read_mnistm("~/datasets/mnist-m/mnist_m", "test")  # doctest: +SKIP
    >>> len(test), test.shape  # doctest: +SKIP
    (9001, (3, 32, 32))
"""

from __future__ import annotations

import io
import logging
import os
import tarfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Callable

import numpy as np
import torch
from PIL import Image

from reprlab.base.errors import DataError
from reprlab.data.dataset import ImageData

logger = logging.getLogger(__name__)

MNISTM_SPLITS = ("train", "test")
MNISTM_CLASSES = [str(d) for d in range(10)]
ARCHIVE_NAME = "mnist_m.tar.gz"
_REPLACE = f"re-extract it from {ARCHIVE_NAME} (or copy it again)"


def split_names(split: str) -> tuple[str, str]:
    """``(images folder, labels file)`` names of an MNIST-M split.

    Example:
        >>> split_names("test")
        ('mnist_m_test', 'mnist_m_test_labels.txt')
    """
    if split not in MNISTM_SPLITS:
        raise DataError(f"MNIST-M has no split {split!r}", fix="use 'train' or 'test'")
    return f"mnist_m_{split}", f"mnist_m_{split}_labels.txt"


def _resolve_root(root: Path, labels_name: str) -> Path:
    """``root`` itself, or ``root/mnist_m`` when the labels file lies there (the archive's top folder)."""
    if not (root / labels_name).is_file() and (root / "mnist_m" / labels_name).is_file():
        return root / "mnist_m"
    return root


def read_labels_file(path: str | os.PathLike) -> list[tuple[str, int]]:
    """Parse ``FILENAME LABEL`` lines (blank lines skipped) into ``[(filename, label), ...]``.

    Raises :class:`DataError` naming the file and line for a malformed line or a label outside 0..9.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "labels.txt"
        >>> _ = p.write_text("00000000.png 7\\n00000001.png 2\\n")
        >>> read_labels_file(p)
        [('00000000.png', 7), ('00000001.png', 2)]
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"MNIST-M labels file {path} does not exist",
                        fix=f"place {path.name} (lines 'FILENAME LABEL') beside the {path.name[:-len('_labels.txt')]}/ "
                            f"folder; {_REPLACE}")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: not a readable labels file ({exc})", fix=_REPLACE) from exc
    return _parse_labels(raw, str(path))


def _parse_labels(raw: bytes, where: str) -> list[tuple[str, int]]:
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise DataError(f"{where}: not a text labels file (non-ASCII byte at offset {exc.start})", fix=_REPLACE) from exc
    entries: list[tuple[str, int]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise DataError(f"{where}, line {lineno}: expected 'FILENAME LABEL', got {line.strip()!r}", fix=_REPLACE)
        fname, label_s = fields
        try:
            label = int(label_s)
        except ValueError:
            label = -1
        if not 0 <= label <= 9 or not label_s.lstrip("+").isdigit():
            raise DataError(f"{where}, line {lineno}: label {label_s!r} of {fname} is not a digit 0..9",
                            fix=f"MNIST-M labels are the digits 0..9; {_REPLACE}")
        entries.append((fname, label))
    if not entries:
        raise DataError(f"{where}: lists no images (the file is empty)", fix=_REPLACE)
    return entries


def _decode(source: Path | bytes, where: str) -> np.ndarray:
    """One PNG (a file or its bytes) as an ``(H, W, 3)`` uint8 array; :class:`DataError` naming it when unreadable."""
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source,
                        formats=("PNG",)) as im:  # skipping format sniffing halves the time
            im.load()
            rgb = im if im.mode == "RGB" else im.convert("RGB")
            return np.asarray(rgb, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DataError(f"MNIST-M image {where} is truncated or corrupt ({exc})", fix=_REPLACE) from exc


def _stack(entries: list[tuple[str, int]], load: Callable[[str], Path | bytes], where: Callable[[str], str],
           *, name: str, source: str, fmt: str) -> ImageData:
    """Decode the listed images (in labels-file order) into one :class:`ImageData`."""
    first = _decode(load(entries[0][0]), where(entries[0][0]))
    images = np.empty((len(entries), *first.shape), dtype=np.uint8)
    images[0] = first
    for i in range(1, len(entries)):
        fname = entries[i][0]
        arr = _decode(load(fname), where(fname))
        if arr.shape != first.shape:
            raise DataError(f"MNIST-M image {where(fname)} is {arr.shape[1]}x{arr.shape[0]} but "
                            f"{entries[0][0]} is {first.shape[1]}x{first.shape[0]}",
                            fix=f"all images of a split must have one size; {_REPLACE}")
        images[i] = arr
    labels = torch.tensor([label for _, label in entries], dtype=torch.int64)
    return ImageData(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), labels, name=name,
                     source=source, class_names=list(MNISTM_CLASSES), meta={"format": fmt})


def read_mnistm(root: str | os.PathLike, split: str = "test", *, name: str = "mnist-m") -> ImageData:
    """Read split ``"train"`` or ``"test"`` of MNIST-M from ``root`` (the folder holding
    ``mnist_m_<split>/`` and ``mnist_m_<split>_labels.txt``, or its parent holding ``mnist_m/``).

    Returns uint8 images ``(N, 3, H, W)`` (32x32 in the original archive) in the order of the
    labels file, int64 labels 0..9 and ``class_names`` ``'0'..'9'``. Every problem (missing
    labels file, a listed PNG that is absent, a truncated or corrupt PNG, a label outside 0..9,
    an empty folder, images of different sizes) is one :class:`DataError` naming the file.

    Example:
        >>> data = read_mnistm("~/datasets/mnist_m", "test")  # doctest: +SKIP
        >>> data.labels[:3].tolist()  # doctest: +SKIP
        [7, 2, 1]
    """
    folder_name, labels_name = split_names(split)
    base = _resolve_root(Path(root).expanduser(), labels_name)
    labels_path = base / labels_name
    folder = base / folder_name
    entries = read_labels_file(labels_path)
    if not folder.is_dir():
        raise DataError(f"MNIST-M images folder {folder} does not exist (its labels file {labels_path} does)",
                        fix=f"place the {split} PNG files in {folder}/; {_REPLACE}")
    present = {p.name for p in folder.iterdir()}
    if not present:
        raise DataError(f"MNIST-M images folder {folder} is empty but {labels_path} lists {len(entries):,} images",
                        fix=f"place the {split} PNG files in {folder}/; {_REPLACE}")
    missing = [f for f, _ in entries if f not in present]
    if missing:
        raise DataError(f"{labels_path} lists {len(missing):,} file(s) absent from {folder}, e.g. {missing[0]}",
                        fix=f"place the missing PNGs in {folder}/ ({_REPLACE})")
    unlisted = len(present) - len(entries)
    if unlisted > 0:
        logger.info("%s: %d file(s) not listed in %s are ignored", folder, unlisted, labels_name)
    return _stack(entries, lambda f: folder / f, lambda f: str(folder / f), name=name, source=str(base), fmt="png")


def read_mnistm_archive(path: str | os.PathLike, split: str = "test", *, name: str = "mnist-m") -> ImageData:
    """Read split ``"train"`` or ``"test"`` of MNIST-M straight from ``mnist_m.tar.gz`` (not extracted).

    Only the split's labels file and the PNGs in its folder are read, from memory (nothing is
    written to disk, so member paths in the archive are never trusted as file paths). The same
    checks as :func:`read_mnistm` apply, plus a truncated or corrupt archive.

    Example:
        >>> test = read_mnistm_archive("~/Downloads/mnist_m.tar.gz", "test")  # doctest: +SKIP
        >>> len(test)  # doctest: +SKIP
        9001
    """
    folder_name, labels_name = split_names(split)
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"MNIST-M archive {path} does not exist", fix="check the path")
    labels_raw: bytes | None = None
    pngs: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                if not member.isfile() or not parts:
                    continue
                if parts[-1] == labels_name:
                    labels_raw = _read_member(tar, member)
                elif len(parts) >= 2 and parts[-2] == folder_name:
                    pngs[parts[-1]] = _read_member(tar, member)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: truncated or not a tar archive ({type(exc).__name__}: {exc})",
                        fix=f"download {ARCHIVE_NAME} again") from exc
    if labels_raw is None:
        raise DataError(f"{path}: holds no {labels_name}", fix=f"use the original {ARCHIVE_NAME} (mnist_m/{labels_name} "
                                                              f"with the PNGs in mnist_m/{folder_name}/)")
    entries = _parse_labels(labels_raw, f"{path}:{labels_name}")
    missing = [f for f, _ in entries if f not in pngs]
    if missing:
        raise DataError(f"{path}: {labels_name} lists {len(missing):,} file(s) absent from {folder_name}/ in the "
                        f"archive, e.g. {missing[0]}", fix=f"download {ARCHIVE_NAME} again")
    return _stack(entries, pngs.__getitem__, lambda f: f"{path}:{folder_name}/{f}", name=name, source=str(path),
                  fmt="tar.gz")


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    fh = tar.extractfile(member)
    if fh is None:
        raise tarfile.ReadError(f"cannot read member {member.name}")
    return fh.read()  # a member cut short raises tarfile.ReadError ("unexpected end of data")
