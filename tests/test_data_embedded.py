"""The Fashion-MNIST sample shipped inside the package."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reprlab.data import load_dataset
from reprlab.data.embedded import SAMPLE_PATH, load_embedded
from reprlab.data.sources import FASHION_MNIST_CLASSES
from reprlab.base.errors import DataError


@pytest.mark.parametrize("split, n", [("train", 5000), ("test", 1000)])
def test_sample_is_stratified_uint8(split, n):
    data = load_embedded(split)
    assert data.images.shape == (n, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.labels.bincount().tolist() == [n // 10] * 10
    assert data.name == "fashion-mnist-sample" and data.class_names == list(FASHION_MNIST_CLASSES)
    assert data.class_names[0] == "T-shirt/top" and data.class_names[9] == "Ankle boot"
    assert 0 < float(data.images.float().mean()) < 255  # real pictures, not blanks


def test_sample_file_size_and_contents():
    size = SAMPLE_PATH.stat().st_size
    assert 2_000_000 < size < 4_500_000, size
    with np.load(SAMPLE_PATH, allow_pickle=False) as npz:
        assert {"train_x", "train_y", "test_x", "test_y"} <= set(npz.files)
        assert npz["train_x"].dtype == np.uint8
        for split, total in (("train", 60000), ("test", 10000)):
            index = npz[f"{split}_index"]
            assert np.all(np.diff(index) > 0) and index.max() < total


def test_fresh_tensors_each_call():
    a = load_embedded("test")
    a.images.zero_()
    assert load_embedded("test").images.max() > 0


def test_readme_has_licence_and_recipe():
    text = (SAMPLE_PATH.parent / "README.md").read_text()
    assert "MIT" in text and "2017 Zalando SE" in text and "make_embedded_sample.py" in text


def test_errors_and_registry():
    with pytest.raises(DataError, match="no split 'valid'"):
        load_embedded("valid")
    data = load_dataset("fashion-mnist-sample", "train", channels=3, resize=[32, 32])
    assert data.images.shape == (5000, 3, 32, 32) and data.meta["split"] == "train"
