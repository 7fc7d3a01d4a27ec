"""Readers for the USPS handwritten digits (16x16 grayscale, 10 classes).

Two distributions are supported:

* the LIBSVM files ``usps.bz2`` (train, 7,291 lines) and ``usps.t.bz2`` (test, 2,007 lines):
  lines of ``label idx:value ...`` with 256 features in ``[-1, 1]`` and labels ``1..10``.
  They are mapped to labels ``0..9`` and float32 pixels ``(v + 1) / 2`` in ``[0, 1]``
  (features omitted by the sparse format are 0, i.e. grey 0.5), as torchvision does.
* the HDF5 packaging ``usps.h5`` (Kaggle ``bistaumanga/usps-dataset``) with groups
  ``train`` and ``test``, each holding ``data`` (N x 256 float in ``[0, 1]``) and ``target``.
  Its pixel values come from a different preprocessing than the LIBSVM files, so do not mix
  the two formats between the splits of one experiment.

Example:
    >>> from reprlab.data.usps import read_usps_libsvm, read_usps_h5
    >>> test = read_usps_libsvm("usps/usps.t.bz2")  # doctest: +SKIP
    >>> len(test), test.shape  # doctest: +SKIP
    (2007, (1, 16, 16))
    >>> train = read_usps_h5("usps/usps.h5", "train")  # doctest: +SKIP
"""

from __future__ import annotations

import bz2
import logging
import os
from pathlib import Path

import numpy as np
import torch

from reprlab.data.dataset import ImageData
from reprlab.base.errors import DataError

logger = logging.getLogger(__name__)

USPS_SIDE = 16
USPS_FEATURES = USPS_SIDE * USPS_SIDE
USPS_CLASSES = [str(d) for d in range(10)]
_TOL = 1e-4
_REDOWNLOAD = ("re-download it from https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass/ "
               "(usps.bz2 = train, usps.t.bz2 = test)")


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise DataError(f"USPS file {path} does not exist",
                        fix="check the path, or pass --data-dir / set REPRLAB_DATA to the folder holding it")
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        if raw[:3] == b"BZh":
            raw = bz2.decompress(raw)
    except (OSError, EOFError, ValueError) as exc:
        raise DataError(f"{path}: corrupt or truncated bz2 data ({exc})", fix=_REDOWNLOAD) from exc
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a LIBSVM text file (non-ASCII byte at offset {exc.start})",
                        fix="point to usps.bz2 / usps.t.bz2 (LIBSVM format) or usps.h5") from exc


def _parse_label(token: str, path: Path, lineno: int) -> int:
    try:
        value = float(token)
    except ValueError:
        value = float("nan")
    if not np.isfinite(value) or value != int(value) or not 1 <= value <= 10:
        raise DataError(f"{path}, line {lineno}: label {token!r} is not an integer in 1..10",
                        fix="USPS LIBSVM lines must start with a digit label 1..10; " + _REDOWNLOAD)
    return int(value) - 1


def _parse_features_slow(tokens: list[str], path: Path, lineno: int) -> np.ndarray:
    """Per-token parse that pinpoints the offending token (used when the fast path fails)."""
    out = np.zeros(USPS_FEATURES, dtype=np.float64)
    last = 0
    for token in tokens:
        index_s, sep, value_s = token.partition(":")
        if not sep:
            raise DataError(f"{path}, line {lineno}: feature {token!r} is not of the form index:value",
                            fix="the file is not in LIBSVM format; " + _REDOWNLOAD)
        try:
            index = int(index_s)
            value = float(value_s)
        except ValueError:
            raise DataError(f"{path}, line {lineno}: cannot parse feature {token!r} as integer index : number",
                            fix=_REDOWNLOAD) from None
        _check_feature(index, value, last, token, path, lineno)
        out[index - 1] = value
        last = index
    return out


def _check_feature(index: int, value: float, last: int, token: str, path: Path, lineno: int) -> None:
    if not 1 <= index <= USPS_FEATURES:
        raise DataError(f"{path}, line {lineno}: feature index {index} in {token!r} is outside 1..{USPS_FEATURES}",
                        fix=f"USPS images have {USPS_FEATURES} (16x16) features; " + _REDOWNLOAD)
    if index <= last:
        raise DataError(f"{path}, line {lineno}: feature indices must increase, got {index} after {last}",
                        fix=_REDOWNLOAD)
    if not np.isfinite(value) or not -1 - _TOL <= value <= 1 + _TOL:
        raise DataError(f"{path}, line {lineno}: feature value {value!r} in {token!r} is outside [-1, 1]",
                        fix="USPS LIBSVM pixel values lie in [-1, 1]; " + _REDOWNLOAD)


def _parse_line(line: str, path: Path, lineno: int) -> tuple[int, np.ndarray]:
    tokens = line.split()
    label = _parse_label(tokens[0], path, lineno)
    feats = tokens[1:]
    try:
        pairs = np.array(" ".join(feats).replace(":", " ").split(), dtype=np.float64).reshape(-1, 2)
        if pairs.shape[0] != len(feats) or any(t.count(":") != 1 for t in feats):
            raise ValueError
    except ValueError:
        return label, _parse_features_slow(feats, path, lineno)
    index = pairs[:, 0]
    values = pairs[:, 1]
    ok = (np.all(index == np.round(index)) and np.all((index >= 1) & (index <= USPS_FEATURES))
          and np.all(np.diff(index) > 0) and np.all(np.isfinite(values))
          and np.all((values >= -1 - _TOL) & (values <= 1 + _TOL)))
    if not ok:  # re-parse token by token to report exactly what is wrong
        return label, _parse_features_slow(feats, path, lineno)
    out = np.zeros(USPS_FEATURES, dtype=np.float64)
    out[index.astype(np.int64) - 1] = values
    return label, out


def read_usps_libsvm(path: str | os.PathLike, *, name: str = "usps") -> ImageData:
    """Read a USPS LIBSVM file (``usps.bz2`` / ``usps.t.bz2``, or uncompressed).

    Returns float32 images ``(N, 1, 16, 16)`` in ``[0, 1]`` and labels ``0..9``. Malformed
    lines raise :class:`DataError` naming the file and the line number.

    Example:
        >>> data = read_usps_libsvm("usps/usps.t.bz2")  # doctest: +SKIP
        >>> data.labels.bincount()[0].item()  # doctest: +SKIP
        359
    """
    path = Path(path)
    text = _read_text(path)
    dense = _parse_dense(text)
    if dense is not None:
        labels_arr, x = dense
        return _libsvm_result(path, name, labels_arr, x)
    labels: list[int] = []
    rows: list[np.ndarray] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        label, row = _parse_line(line, path, lineno)
        labels.append(label)
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: contains no LIBSVM lines", fix=_REDOWNLOAD)
    return _libsvm_result(path, name, np.asarray(labels, dtype=np.int64), np.stack(rows))


def _parse_dense(text: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Vectorised parse of a file whose every line lists all 256 features in order.

    Returns ``(labels 0..9, features in [-1, 1])`` or ``None`` when the file is not of that
    simple form or has any problem; the line-by-line parser then reports the exact line.
    """
    lines = [ln for ln in text.splitlines() if ln.strip()]
    width = 1 + 2 * USPS_FEATURES
    try:
        flat = np.array(text.replace(":", " ").split(), dtype=np.float64)
    except ValueError:
        return None
    if not lines or flat.size != len(lines) * width or text.count(":") != len(lines) * USPS_FEATURES:
        return None
    table = flat.reshape(len(lines), width)
    labels, index, values = table[:, 0], table[:, 1::2], table[:, 2::2]
    ok = (np.all(index == np.arange(1, USPS_FEATURES + 1)) and np.all(labels == np.round(labels))
          and np.all((labels >= 1) & (labels <= 10)) and np.all(np.isfinite(values))
          and np.all((values >= -1 - _TOL) & (values <= 1 + _TOL)))
    if not ok:
        return None
    return labels.astype(np.int64) - 1, values


def _libsvm_result(path: Path, name: str, labels: np.ndarray, features: np.ndarray) -> ImageData:
    x = np.clip((features.astype(np.float32) + 1.0) * 0.5, 0.0, 1.0).reshape(-1, 1, USPS_SIDE, USPS_SIDE)
    logger.debug("read %d USPS images from %s", x.shape[0], path)
    return ImageData(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(labels), name=name,
                     source=str(path), class_names=list(USPS_CLASSES),
                     meta={"files": [str(path)], "format": "libsvm"})


def read_usps_h5(path: str | os.PathLike, split: str = "train", *, name: str = "usps") -> ImageData:
    """Read split ``"train"`` or ``"test"`` of the HDF5 packaging ``usps.h5``.

    Example:
        >>> data = read_usps_h5("usps/usps.h5", "test")  # doctest: +SKIP
        >>> len(data), data.images.dtype  # doctest: +SKIP
        (2007, torch.float32)
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DataError(f"USPS file {path} does not exist",
                        fix="check the path, or pass --data-dir / set REPRLAB_DATA to the folder holding it")
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path}: not a readable HDF5 file ({exc})",
                        fix="re-download usps.h5 (Kaggle bistaumanga/usps-dataset) or use the LIBSVM files") from exc
    with fh:
        if split not in fh or not isinstance(fh[split], h5py.Group):
            raise DataError(f"{path}: no group {split!r}; found {sorted(fh.keys())}",
                            fix="usps.h5 must contain groups 'train' and 'test', each with 'data' and 'target'")
        group = fh[split]
        missing = [k for k in ("data", "target") if k not in group]
        if missing:
            raise DataError(f"{path}: group {split!r} lacks dataset(s) {missing}; found {sorted(group.keys())}",
                            fix="usps.h5 groups must each hold 'data' (N x 256) and 'target' (N)")
        try:
            data = np.asarray(group["data"][()], dtype=np.float32)
            target = np.asarray(group["target"][()])
        except (OSError, ValueError, TypeError) as exc:
            raise DataError(f"{path}: cannot read {split}/data or {split}/target ({exc})",
                            fix="re-download usps.h5") from exc
    if data.ndim == 3 and data.shape[1:] == (USPS_SIDE, USPS_SIDE):
        data = data.reshape(data.shape[0], USPS_FEATURES)
    if data.ndim != 2 or data.shape[1] != USPS_FEATURES:
        raise DataError(f"{path}: {split}/data has shape {data.shape}, expected (N, {USPS_FEATURES})",
                        fix="re-download usps.h5")
    target = target.reshape(-1)
    if target.shape[0] != data.shape[0]:
        raise DataError(f"{path}: {split}/data has {data.shape[0]:,} rows but {split}/target has "
                        f"{target.shape[0]:,} labels", fix="re-download usps.h5")
    if not np.issubdtype(target.dtype, np.integer) or target.min() < 0 or target.max() > 9:
        raise DataError(f"{path}: {split}/target must hold integers 0..9, found {target.dtype} values in "
                        f"[{target.min()}, {target.max()}]", fix="re-download usps.h5")
    finite = np.isfinite(data)
    if not finite.all():
        bad = int((~finite).any(axis=1).sum())
        raise DataError(f"{path}: {bad} image(s) in {split}/data contain NaN or infinite values",
                        fix="re-download usps.h5")
    lo, hi = float(data.min()), float(data.max())
    if lo < -_TOL or hi > 1 + _TOL:
        raise DataError(f"{path}: {split}/data values lie in [{lo:.3g}, {hi:.3g}], expected [0, 1]",
                        fix="re-download usps.h5")
    x = np.clip(data, 0.0, 1.0).reshape(-1, 1, USPS_SIDE, USPS_SIDE)
    return ImageData(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(target.astype(np.int64)),
                     name=name, source=f"{path}:{split}", class_names=list(USPS_CLASSES),
                     meta={"files": [str(path)], "format": "h5"})


def read_usps(path: str | os.PathLike, split: str = "train", *, name: str = "usps") -> ImageData:
    """Read a USPS file, choosing the reader from its suffix (``.h5``/``.hdf5`` or LIBSVM).

    ``split`` only matters for HDF5 files, which hold both splits.

    Example:
        >>> read_usps("usps/usps.t.bz2").meta["format"]  # doctest: +SKIP
        'libsvm'
    """
    path = Path(path)
    if path.suffix.lower() in (".h5", ".hdf5"):
        return read_usps_h5(path, split, name=name)
    return read_usps_libsvm(path, name=name)
