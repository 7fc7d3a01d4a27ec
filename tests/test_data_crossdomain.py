"""The shared cross-domain digit preprocessing (data.resize=[32,32], data.channels=3, data.scale=-1_1):
mnist, usps, mnist-m and svhn all come out as (3, 32, 32) images in [-1, 1]."""

from __future__ import annotations

import bz2
import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from reprlab.config import RunConfig
from reprlab.data import load_dataset, to_model_range
from reprlab.runs.data import prepare_data
from test_data_mnistm import write_mnistm
from test_data_svhn import write_svhn

CROSS_DOMAIN = {"resize": [32, 32], "channels": 3, "scale": "-1_1"}


def _idx(arr: np.ndarray) -> bytes:
    return bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(np.uint8).tobytes()


def write_all(root: Path) -> None:
    """Tiny train and test files of the four digit datasets, each in its canonical format, under ``root``."""
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 20), ("t10k", 10)):
        folder = root / "mnist"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(_idx(rng.integers(0, 256, (n, 28, 28)))))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(np.arange(n) % 10)))
    for name, n in (("usps.bz2", 20), ("usps.t.bz2", 10)):
        (root / "usps").mkdir(parents=True, exist_ok=True)
        lines = [f"{i % 10 + 1} " + " ".join(f"{j}:{rng.uniform(-1, 1):.3f}" for j in range(1, 257)) for i in range(n)]
        (root / "usps" / name).write_bytes(bz2.compress(("\n".join(lines) + "\n").encode()))
    write_mnistm(root / "mnist_m", "train", 20, seed=1)
    write_mnistm(root / "mnist_m", "test", 10, seed=2)
    write_svhn(root / "svhn" / "train_32x32.mat", 20, seed=3)
    write_svhn(root / "svhn" / "test_32x32.mat", 10, seed=4)


@pytest.fixture(autouse=True)
def isolated(isolated_sources):
    """Every test here: no REPRLAB_DATA, a private cache, no system folder, no network (conftest)."""


@pytest.mark.parametrize("name, native", [("mnist", (1, 28, 28)), ("usps", (1, 16, 16)),
                                          ("mnist-m", (3, 32, 32)), ("svhn", (3, 32, 32))])
def test_cross_domain_preprocessing(tmp_path, name, native):
    write_all(tmp_path)
    assert load_dataset(name, "test", data_dir=tmp_path).shape == native
    cfg = RunConfig.from_dict({"data": {"name": name, "data_dir": str(tmp_path), "val_fraction": 0.0,
                                        **CROSS_DOMAIN}})
    splits = prepare_data(cfg)
    assert len(splits.train) == 20 and len(splits.test) == 10
    for part in (splits.train, splits.test):
        assert part.shape == (3, 32, 32) and part.labels is not None
        x = to_model_range(part.float01(), cfg.data.scale)
        assert x.shape[1:] == (3, 32, 32) and float(x.min()) >= -1.0 and float(x.max()) <= 1.0
        assert float(x.min()) < 0.0  # mapped to [-1, 1], not left in [0, 1]


def test_real_digits_share_one_shape(real_data_dir):
    """The staged test splits of mnist, usps and mnist-m under the cross-domain preprocessing."""
    shapes = {}
    for name in ("mnist", "usps", "mnist-m"):
        data = load_dataset(name, "test", data_dir=real_data_dir, resize=(32, 32), channels=3, download=False)
        shapes[name] = data.shape
        assert data.labels.min() == 0 and data.labels.max() == 9
    assert set(shapes.values()) == {(3, 32, 32)}, shapes
    assert torch.is_tensor(data.images)
