"""Loading the real datasets from shared/data (or $REPRLAB_DATA); skipped when they are absent."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from reprlab.data import describe_datasets, load_dataset, load_image_folder, locate
from reprlab.data.embedded import SAMPLE_PATH
from reprlab.data.usps import read_usps_h5, read_usps_libsvm

from conftest import real_data_required  # noqa: E402

pytestmark = pytest.mark.realdata


def _data_root() -> Path | None:
    for candidate in (os.environ.get("REPRLAB_DATA"), Path(__file__).resolve().parents[1] / ".." / "shared" / "data"):
        if candidate and (Path(candidate) / "fashion-mnist").is_dir():
            return Path(candidate).resolve()
    return None


ROOT = _data_root()
if ROOT is None:
    if real_data_required():
        pytest.fail("real datasets not present (REPRLAB_REQUIRE_REAL_DATA is set, so this is a failure, not a skip)",
                    pytrace=False)
    pytest.skip("real datasets not present (set REPRLAB_DATA or provide ../shared/data)", allow_module_level=True)

MNIST_TRAIN = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
USPS_TEST = [359, 264, 198, 166, 200, 160, 170, 147, 166, 177]


@pytest.fixture(scope="module")
def fashion():
    return {s: load_dataset("fashion-mnist", s, data_dir=ROOT, download=False) for s in ("train", "test")}


@pytest.fixture(scope="module")
def mnist():
    return {s: load_dataset("mnist", s, data_dir=ROOT, download=False) for s in ("train", "test")}


def test_fashion_mnist(fashion):
    assert len(fashion["train"]) == 60000 and len(fashion["test"]) == 10000
    for split, per_class in (("train", 6000), ("test", 1000)):
        data = fashion[split]
        assert data.images.shape[1:] == (1, 28, 28) and data.images.dtype == torch.uint8
        assert data.labels.bincount().tolist() == [per_class] * 10
        assert data.class_names[0] == "T-shirt/top"


def test_mnist(mnist):
    assert mnist["train"].labels.bincount().tolist() == MNIST_TRAIN
    assert mnist["test"].labels.bincount().tolist() == MNIST_TEST
    assert mnist["train"].images.shape == (60000, 1, 28, 28)


def test_checksums_of_shared_files():
    for name in ("fashion-mnist", "mnist"):
        for split in ("train", "test"):
            locate(name, split, data_dir=ROOT, download=False, verify=True)


def test_embedded_sample_matches_canonical(fashion):
    with np.load(SAMPLE_PATH, allow_pickle=False) as npz:
        for split in ("train", "test"):
            index = torch.from_numpy(npz[f"{split}_index"].astype(np.int64))
            assert torch.equal(fashion[split].images[index, 0], torch.from_numpy(npz[f"{split}_x"]))
            assert torch.equal(fashion[split].labels[index], torch.from_numpy(npz[f"{split}_y"].astype(np.int64)))


def test_usps_both_formats():
    h5 = ROOT / "usps" / "usps.h5"
    train, test = read_usps_h5(h5, "train"), read_usps_h5(h5, "test")
    assert len(train) == 7291 and len(test) == 2007
    libsvm = read_usps_libsvm(ROOT / "usps" / "usps.t.bz2")
    assert libsvm.images.shape == (2007, 1, 16, 16)
    assert libsvm.labels.bincount().tolist() == USPS_TEST
    assert torch.equal(libsvm.labels, test.labels)  # same test set, same order
    # the registry uses usps.h5 for both splits here (usps.bz2 is absent), not a mix of formats
    data = load_dataset("usps", "test", data_dir=ROOT, download=False)
    assert data.meta["format"] == "h5" and len(data) == 2007


def test_att_faces_folder():
    folder = ROOT / "att-faces"
    assert folder.is_dir(), f"att-faces not present in {ROOT}"
    data = load_image_folder(folder)
    assert data.images.shape == (400, 1, 112, 92) and len(data.class_names) == 40
    assert data.labels.bincount().tolist() == [10] * 40


def test_describe_finds_shared_data():
    rows = {r["name"]: r for r in describe_datasets(ROOT)}
    assert rows["fashion-mnist"]["status"] == "found" and rows["mnist"]["status"] == "found"
    assert rows["usps"]["status"] == "found"
