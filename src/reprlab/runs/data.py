"""A run's data: load the configured dataset and split it (seeded) into train / val / test.

Labels (where the dataset has them) travel with every split and subset.

Example:
    >>> from reprlab.config import RunConfig
    >>> cfg = RunConfig.from_dict({"data": {"name": "fashion-mnist-sample", "max_train": 100, "max_test": 50}})
    >>> s = prepare_data(cfg)
    >>> len(s.train), len(s.val), len(s.test), s.train.labels is not None
    (90, 10, 50, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from reprlab.base.errors import ConfigError
from reprlab.config import RunConfig
from reprlab.data import load_dataset
from reprlab.data.dataset import ImageData

#: Datasets with a train and a test split, loaded by name (MNIST-M: its train split where present; with only
#: the test split, loading raises a DataError pointing at the adaptation protocol).
CANONICAL_WITH_TEST_SPLIT = ("fashion-mnist", "mnist", "usps", "svhn", "mnist-m", "fashion-mnist-sample")


@dataclass
class Splits:
    """Train, validation (may be None) and test images of a run; ``target``: unlabelled images of a second
    domain, paired with each training batch (two-domain tasks)."""

    train: ImageData
    val: ImageData | None
    test: ImageData
    target: ImageData | None = None



def _seeded_perm(n: int, seed: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))


def load_split(cfg: RunConfig, split: str, *, name: str | None = None, path: str | None = None,
          labels_path: str | None = None) -> ImageData:
    d = cfg.data
    return load_dataset(name or d.name, split, data_dir=d.data_dir, path=path, labels_path=labels_path,
                        resize=tuple(d.resize) if d.resize else None, channels=d.channels, download=d.download,
                        image_shape=d.image_shape if (name or d.name) == "arrays" else None)


def _pool_and_test(cfg: RunConfig) -> tuple[ImageData, ImageData]:
    d = cfg.data
    if d.name in CANONICAL_WITH_TEST_SPLIT:
        train_all = load_split(cfg, "train")
        test = load_split(cfg, "test")
    else:
        if not d.path:
            raise ConfigError(f"data.name={d.name} needs data.path", fix=f"set data.path=/path/to/your/{'images' if d.name == 'folder' else 'arrays.npz'}")
        train_all = load_split(cfg, "train", path=d.path, labels_path=d.labels_path)
        if d.test_path:
            test = load_split(cfg, "test", path=d.test_path, labels_path=d.test_labels_path)
        else:
            perm = _seeded_perm(len(train_all), cfg.seed + 1)
            n_test = max(1, int(round(len(train_all) * d.test_fraction)))
            if n_test >= len(train_all):
                raise ConfigError(f"{len(train_all)} images are too few to hold out a test split",
                                  fix="provide more images or data.test_path")
            test, train_all = train_all.subset(perm[:n_test]), train_all.subset(perm[n_test:])
    if test.shape != train_all.shape:
        raise ConfigError(f"train images have shape {train_all.shape} but test images {test.shape}",
                          fix="set data.resize=[H,W] and data.channels so both splits match")
    return train_all, test


def training_pool(cfg: RunConfig) -> ImageData:
    """Every training image the data offers, before ``data.max_train`` and the validation split (never a
    test image): what a yardstick that must not depend on the run's cap (the generation metrics' feature
    network) is trained on.

    Example:
        >>> from reprlab.config import RunConfig
        >>> cfg = RunConfig.from_dict({"data": {"name": "fashion-mnist-sample", "max_train": 100}})
        >>> len(training_pool(cfg)) > len(prepare_data(cfg).train)
        True
    """
    return _pool_and_test(cfg)[0]


def prepare_data(cfg: RunConfig) -> Splits:
    """Load the data named by ``cfg.data`` and split it (seeded) into train/val/test."""
    d = cfg.data
    train_all, test = _pool_and_test(cfg)
    if d.max_train is not None and d.max_train < len(train_all):
        train_all = train_all.subset(_seeded_perm(len(train_all), cfg.seed + 2)[: d.max_train])
    if d.max_test is not None and d.max_test < len(test):
        test = test.subset(_seeded_perm(len(test), cfg.seed + 3)[: d.max_test])
    val = None
    n_val = int(round(len(train_all) * d.val_fraction))
    if n_val > 0:
        if n_val >= len(train_all):
            raise ConfigError(f"data.val_fraction={d.val_fraction} leaves no training images out of {len(train_all)}",
                              fix="lower data.val_fraction or use more data")
        perm = _seeded_perm(len(train_all), cfg.seed + 4)
        val, train_all = train_all.subset(perm[:n_val]), train_all.subset(perm[n_val:])
    return Splits(train_all, val, test)


