"""A small Fashion-MNIST sample shipped inside the package, so that demos and tests run offline.

5,000 train images (500 per class) and 1,000 test images (100 per class), uint8 28x28, a
stratified seeded sample of the canonical splits (see ``embedded/README.md`` and
``scripts/make_embedded_sample.py``). Fashion-MNIST is MIT-licensed, Copyright 2017 Zalando SE.

Example:
    >>> from reprlab.data.embedded import load_embedded
    >>> data = load_embedded("test")
    >>> len(data), data.shape, data.class_names[0]
    (1000, (1, 28, 28), 'T-shirt/top')
"""

from __future__ import annotations

import functools
import logging
import zipfile
from pathlib import Path

import numpy as np
import torch

from reprlab.data.dataset import ImageData
from reprlab.data.sources import FASHION_MNIST_CLASSES
from reprlab.base.errors import DataError

logger = logging.getLogger(__name__)

SAMPLE_NAME = "fashion-mnist-sample"
SAMPLE_PATH = Path(__file__).resolve().parent / "embedded" / "fashion_mnist_sample.npz"
SAMPLE_SIZES = {"train": 5000, "test": 1000}


@functools.lru_cache(maxsize=1)
def _arrays() -> dict[str, np.ndarray]:
    if not SAMPLE_PATH.is_file():
        raise DataError(f"the embedded Fashion-MNIST sample {SAMPLE_PATH} is missing from the installation",
                        fix="reinstall reprlab, or rebuild it with scripts/make_embedded_sample.py")
    try:
        with np.load(SAMPLE_PATH, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in ("train_x", "train_y", "test_x", "test_y")}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"the embedded sample {SAMPLE_PATH} is unreadable ({exc})",
                        fix="reinstall reprlab, or rebuild it with scripts/make_embedded_sample.py") from exc
    for split, n in SAMPLE_SIZES.items():
        x, y = arrays[f"{split}_x"], arrays[f"{split}_y"]
        if x.shape != (n, 28, 28) or x.dtype != np.uint8 or y.shape != (n,):
            raise DataError(f"the embedded sample {SAMPLE_PATH} has unexpected {split} arrays "
                            f"{x.shape}/{x.dtype} and {y.shape}",
                            fix="reinstall reprlab, or rebuild it with scripts/make_embedded_sample.py")
    return arrays


def load_embedded(split: str = "train") -> ImageData:
    """The embedded Fashion-MNIST sample as uint8 :class:`ImageData` (``"train"``: 5,000, ``"test"``: 1,000).

    Each call returns fresh tensors, so callers may modify them freely.

    Example:
        >>> load_embedded("train").labels.bincount().tolist()
        [500, 500, 500, 500, 500, 500, 500, 500, 500, 500]
    """
    if split not in SAMPLE_SIZES:
        raise DataError(f"dataset {SAMPLE_NAME!r} has no split {split!r}", fix="use 'train' or 'test'")
    arrays = _arrays()
    images = torch.from_numpy(arrays[f"{split}_x"].copy()).unsqueeze(1)
    labels = torch.from_numpy(arrays[f"{split}_y"].astype(np.int64))
    return ImageData(images, labels, name=SAMPLE_NAME, source=str(SAMPLE_PATH),
                     class_names=list(FASHION_MNIST_CLASSES), meta={"split": split, "files": [str(SAMPLE_PATH)]})
