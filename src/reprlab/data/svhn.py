"""Reader for SVHN, cropped digits (the Street View House Numbers ``*_32x32.mat`` files).

Each of ``train_32x32.mat`` (73,257 images), ``test_32x32.mat`` (26,032) and the optional
``extra_32x32.mat`` (531,131) is a MATLAB v5 file holding ``X``, uint8 of shape
``(32, 32, 3, N)``, and ``y``, of shape ``(N, 1)`` with labels ``1..10`` where ``10`` means
the digit 0. :func:`read_svhn_mat` reads one with :func:`scipy.io.loadmat` and returns uint8
images ``(N, 3, 32, 32)`` with labels ``0..9`` (``10 -> 0``, as torchvision does).

Example:
    >>> from reprlab.data.svhn import read_svhn_mat
    >>> test = read_svhn_mat("~/datasets/svhn/test_32x32.mat")  # doctest: +SKIP
    >>> len(test), test.shape  # doctest: +SKIP
    (26032, (3, 32, 32))
"""

from __future__ import annotations

import logging
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from reprlab.base.errors import DataError
from reprlab.data.dataset import ImageData

logger = logging.getLogger(__name__)

SVHN_CLASSES = [str(d) for d in range(10)]
SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"
_REDOWNLOAD = f"re-download it from {SVHN_URL} (train_32x32.mat, test_32x32.mat, extra_32x32.mat)"


def read_svhn_mat(path: str | os.PathLike, *, name: str = "svhn") -> ImageData:
    """Read one SVHN ``*_32x32.mat`` file as uint8 ``(N, 3, 32, 32)`` images with labels 0..9.

    A missing file, a truncated or non-MATLAB file, a missing ``X``/``y`` variable, shapes other
    than ``(H, W, 3, N)``/``(N, 1)``, a non-uint8 ``X`` or labels outside ``0..10`` each raise one
    :class:`DataError` naming the file and the fix.

    Example:
        >>> import tempfile, pathlib, numpy as np, scipy.io
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "test_32x32.mat"
        >>> scipy.io.savemat(p, {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[10], [3]])})
        >>> data = read_svhn_mat(p)
        >>> data.shape, data.labels.tolist()
        ((3, 32, 32), [0, 3])
    """
    import scipy.io  # here, not at module level: importing scipy.io costs most of a second
    from scipy.io.matlab import MatReadError

    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"SVHN file {path} does not exist",
                        fix="check the path, or pass --data-dir / set REPRLAB_DATA to the folder holding it")
    try:
        mat = scipy.io.loadmat(path, variable_names=("X", "y"))
    except NotImplementedError as exc:  # MATLAB v7.3 (HDF5) files
        raise DataError(f"{path}: a MATLAB v7.3 file, not the SVHN v5 .mat format ({exc})", fix=_REDOWNLOAD) from exc
    except (MatReadError, ValueError, TypeError, OSError, EOFError, KeyError, IndexError, zlib.error) as exc:
        raise DataError(f"{path}: truncated or not a MATLAB .mat file ({type(exc).__name__}: {exc})",
                        fix=_REDOWNLOAD) from exc
    for key in ("X", "y"):
        if key not in mat:
            raise DataError(f"{path}: no variable {key!r} (found: {', '.join(k for k in mat if not k.startswith('__')) or 'none'})",
                            fix=f"an SVHN .mat file holds X (32x32x3xN uint8) and y (Nx1 labels); {_REDOWNLOAD}")
    x, y = mat["X"], mat["y"]
    if x.ndim != 4 or x.shape[2] != 3:
        raise DataError(f"{path}: X has shape {x.shape}, expected (H, W, 3, N) such as (32, 32, 3, N)", fix=_REDOWNLOAD)
    if x.dtype != np.uint8:
        raise DataError(f"{path}: X has dtype {x.dtype}, expected uint8", fix=_REDOWNLOAD)
    n = x.shape[3]
    if n == 0:
        raise DataError(f"{path}: holds no images (X has shape {x.shape})", fix=_REDOWNLOAD)
    if y.shape not in ((n, 1), (1, n), (n,)):
        raise DataError(f"{path}: y has shape {y.shape}, expected ({n}, 1) for {n} images", fix=_REDOWNLOAD)
    y = np.asarray(y).reshape(-1)
    if not np.issubdtype(y.dtype, np.number):
        raise DataError(f"{path}: y has dtype {y.dtype}, expected integer labels 1..10", fix=_REDOWNLOAD)
    bad = np.flatnonzero(~(np.isfinite(y) & (y >= 0) & (y <= 10) & (y == np.round(y))))
    if bad.size:
        raise DataError(f"{path}: label {y[bad[0]].item():g} (image {int(bad[0])}) is not an integer in 1..10 "
                        f"(10 = digit 0); {bad.size} such label(s)", fix=_REDOWNLOAD)
    labels = torch.from_numpy(y.astype(np.int64) % 10)
    images = torch.from_numpy(np.ascontiguousarray(x.transpose(3, 2, 0, 1)))
    logger.info("%s: %d images %s", path, n, tuple(images.shape[1:]))
    return ImageData(images, labels, name=name, source=str(path), class_names=list(SVHN_CLASSES),
                     meta={"format": "mat"})
