"""USPS readers: LIBSVM (.bz2 or plain) and the HDF5 packaging."""

from __future__ import annotations

import bz2
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from reprlab.data.usps import read_usps, read_usps_h5, read_usps_libsvm
from reprlab.base.errors import DataError


def libsvm_line(label: int, values: np.ndarray) -> str:
    return f"{label} " + " ".join(f"{i + 1}:{v:.6f}" for i, v in enumerate(values))


def write_libsvm(path: Path, lines: list[str], compress: bool = True) -> Path:
    text = "\n".join(lines) + "\n"
    path.write_bytes(bz2.compress(text.encode()) if compress else text.encode())
    return path


@pytest.fixture
def features() -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, size=(3, 256))


@pytest.mark.parametrize("compress", [True, False])
def test_libsvm_roundtrip(tmp_path, features, compress):
    lines = [libsvm_line(lab, row) for lab, row in zip([1, 10, 5], features)]
    data = read_usps_libsvm(write_libsvm(tmp_path / "usps.t.bz2", lines, compress))
    assert data.images.shape == (3, 1, 16, 16) and data.images.dtype == torch.float32
    assert data.labels.tolist() == [0, 9, 4]
    expected = ((features + 1) / 2).reshape(3, 1, 16, 16)
    np.testing.assert_allclose(data.images.numpy(), expected, atol=1e-6)
    assert data.meta["format"] == "libsvm" and data.class_names == [str(d) for d in range(10)]


def test_libsvm_extremes_and_sparse_lines(tmp_path):
    lines = [libsvm_line(1, np.full(256, -1.0)), libsvm_line(2, np.full(256, 1.0)), "3 1:1.0 256:-1.0"]
    data = read_usps_libsvm(write_libsvm(tmp_path / "u.bz2", lines))
    flat = data.images.reshape(3, -1)
    assert flat[0].max() == 0 and flat[1].min() == 1
    # features omitted by the sparse format are 0 in [-1, 1], i.e. grey 0.5
    assert flat[2, 0] == 1.0 and flat[2, 255] == 0.0 and torch.all(flat[2, 1:255] == 0.5)


@pytest.mark.parametrize("bad, phrase", [
    ("11 1:0.5", "label '11' is not an integer in 1..10"),
    ("x 1:0.5", "label 'x'"),
    ("3 1:0.5 oops", "'oops' is not of the form index:value"),
    ("3 1:0.5 2:abc", "cannot parse feature '2:abc'"),
    ("3 257:0.1", "outside 1..256"),
    ("3 1:1.5", "outside \\[-1, 1\\]"),
    ("3 5:0.1 4:0.2", "indices must increase"),
])
def test_bad_line_names_file_and_line(tmp_path, features, bad, phrase):
    path = write_libsvm(tmp_path / "usps.bz2", [libsvm_line(1, features[0]), bad])
    with pytest.raises(DataError, match=phrase) as info:
        read_usps_libsvm(path)
    assert "usps.bz2, line 2" in str(info.value)


def test_corrupt_bz2(tmp_path, features):
    blob = bz2.compress(libsvm_line(1, features[0]).encode())
    path = tmp_path / "usps.t.bz2"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="corrupt or truncated bz2"):
        read_usps_libsvm(path)


def test_empty_libsvm(tmp_path):
    with pytest.raises(DataError, match="no LIBSVM lines"):
        read_usps_libsvm(write_libsvm(tmp_path / "e.bz2", [""]))


def write_h5(path: Path, n_train: int = 4, n_test: int = 3, **overrides) -> Path:
    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as fh:
        for split, n in (("train", n_train), ("test", n_test)):
            g = fh.create_group(split)
            g["data"] = overrides.get(f"{split}_data", rng.uniform(0, 1, (n, 256)).astype(np.float32))
            g["target"] = overrides.get(f"{split}_target", rng.integers(0, 10, n).astype(np.int32))
    return path


def test_h5_roundtrip(tmp_path):
    path = write_h5(tmp_path / "usps.h5")
    train, test = read_usps_h5(path, "train"), read_usps_h5(path, "test")
    assert len(train) == 4 and len(test) == 3
    assert train.images.shape == (4, 1, 16, 16) and train.images.dtype == torch.float32
    with h5py.File(path) as fh:
        np.testing.assert_array_equal(test.images.reshape(3, 256).numpy(), fh["test/data"][()])
        assert test.labels.tolist() == fh["test/target"][()].tolist()
    assert read_usps(path, "test").meta["format"] == "h5"


def test_h5_errors(tmp_path):
    with pytest.raises(DataError, match="no group 'valid'"):
        read_usps_h5(write_h5(tmp_path / "a.h5"), "valid")
    with pytest.raises(DataError, match="4 rows but train/target has 3 labels"):
        read_usps_h5(write_h5(tmp_path / "b.h5", train_target=np.zeros(3, np.int32)), "train")
    with pytest.raises(DataError, match=r"values lie in \[2, 2\], expected \[0, 1\]"):
        read_usps_h5(write_h5(tmp_path / "c.h5", train_data=np.full((4, 256), 2.0, np.float32)), "train")
    nan = np.zeros((4, 256), np.float32)
    nan[1, 3] = np.nan
    with pytest.raises(DataError, match="1 image\\(s\\) in train/data contain NaN"):
        read_usps_h5(write_h5(tmp_path / "d.h5", train_data=nan), "train")
    with pytest.raises(DataError, match="expected \\(N, 256\\)"):
        read_usps_h5(write_h5(tmp_path / "e.h5", train_data=np.zeros((4, 100), np.float32)), "train")
    not_h5 = tmp_path / "f.h5"
    not_h5.write_bytes(b"definitely not hdf5")
    with pytest.raises(DataError, match="not a readable HDF5 file"):
        read_usps_h5(not_h5, "train")
