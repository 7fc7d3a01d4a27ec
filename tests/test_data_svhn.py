"""SVHN: the .mat reader, its registry entry, and its download spec (offline: the fetch is replaced)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from reprlab.base.errors import DataError
from reprlab.data import load_dataset, sources
from reprlab.data.sources import DatasetFiles, RemoteFile, locate
from reprlab.data.svhn import read_svhn_mat


def write_svhn(path: Path, n: int = 6, *, seed: int = 0, **override) -> tuple[np.ndarray, np.ndarray]:
    """Write an SVHN-style .mat (X: (32, 32, 3, n) uint8, y: (n, 1) in 1..10); return (X, y)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
    y = (np.arange(n) % 10 + 1).reshape(n, 1).astype(np.uint8)  # 1..10, 10 = digit 0
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {"X": x, "y": y, **override}
    scipy.io.savemat(path, {k: v for k, v in content.items() if v is not None})
    return x, y


@pytest.fixture(autouse=True)
def isolated(isolated_sources):
    """Every test here: no REPRLAB_DATA, a private cache, no system folder, no network (conftest)."""


def test_read_pixels_and_labels(tmp_path):
    x, y = write_svhn(tmp_path / "test_32x32.mat", 12)
    data = read_svhn_mat(tmp_path / "test_32x32.mat")
    assert data.images.dtype == torch.uint8 and tuple(data.images.shape) == (12, 3, 32, 32)
    for i in (0, 5, 11):
        assert np.array_equal(data.images[i].numpy(), x[:, :, :, i].transpose(2, 0, 1))
    assert data.labels.dtype == torch.int64
    assert data.labels.tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2]  # 10 -> 0
    assert data.class_names == [str(d) for d in range(10)] and data.meta["format"] == "mat"


@pytest.mark.parametrize("override, match", [
    ({"X": None}, "no variable 'X'"),
    ({"y": None}, "no variable 'y'"),
    ({"X": np.zeros((32, 32, 6), np.uint8)}, r"X has shape \(32, 32, 6\), expected \(H, W, 3, N\)"),
    ({"X": np.zeros((32, 32, 1, 6), np.uint8)}, r"X has shape \(32, 32, 1, 6\)"),
    ({"X": np.zeros((32, 32, 3, 6), np.float32)}, "X has dtype float32, expected uint8"),
    ({"y": np.ones((5, 1), np.uint8)}, r"y has shape \(5, 1\), expected \(6, 1\) for 6 images"),
    ({"y": np.array([[1], [2], [11], [4], [5], [6]])}, r"label 11 \(image 2\) is not an integer in 1..10"),
    ({"y": np.array([[1], [2], [3], [-1], [5], [6]])}, r"label -1 \(image 3\)"),
    ({"y": np.array([[1], [2], [3], [4], [5.5], [6]])}, r"label 5.5 \(image 4\)"),
])
def test_bad_content(tmp_path, override, match):
    write_svhn(tmp_path / "bad.mat", 6, **override)
    with pytest.raises(DataError, match=match) as info:
        read_svhn_mat(tmp_path / "bad.mat")
    assert str(tmp_path / "bad.mat") in info.value.problem and "ufldl.stanford.edu" in info.value.fix


@pytest.mark.parametrize("keep", [10, 100, 0.5, -8])
def test_truncated_or_foreign_file(tmp_path, keep):
    write_svhn(tmp_path / "full.mat", 6)
    raw = (tmp_path / "full.mat").read_bytes()
    cut = int(len(raw) * keep) if isinstance(keep, float) else keep
    (tmp_path / "cut.mat").write_bytes(raw[:cut])
    with pytest.raises(DataError, match="truncated or not a MATLAB .mat file"):
        read_svhn_mat(tmp_path / "cut.mat")
    (tmp_path / "text.mat").write_text("X,y\n1,2\n" * 40)
    with pytest.raises(DataError, match="truncated or not a MATLAB .mat file"):
        read_svhn_mat(tmp_path / "text.mat")
    with pytest.raises(DataError, match="does not exist"):
        read_svhn_mat(tmp_path / "absent.mat")


def test_registry_finds_the_files(tmp_path):
    x, _ = write_svhn(tmp_path / "d" / "svhn" / "test_32x32.mat", 4)
    write_svhn(tmp_path / "d" / "svhn" / "train_32x32.mat", 7, seed=1)
    test = load_dataset("svhn", "test", data_dir=tmp_path / "d", download=False)
    assert len(test) == 4 and test.name == "svhn" and test.meta["split"] == "test"
    assert np.array_equal(test.images[3].numpy(), x[:, :, :, 3].transpose(2, 0, 1))
    assert len(load_dataset("svhn", "train", data_dir=tmp_path / "d", download=False)) == 7
    write_svhn(tmp_path / "e" / "SVHN" / "test_32x32.mat", 2)  # torchvision-style folder name
    assert len(load_dataset("svhn", "test", data_dir=tmp_path / "e", download=False)) == 2
    with pytest.raises(DataError, match="svhn train split not found") as info:
        load_dataset("svhn", "train", data_dir=tmp_path / "e", download=False)
    assert "http://ufldl.stanford.edu/housenumbers/train_32x32.mat" in info.value.fix


def test_download_uses_the_canonical_url_and_checks_it(tmp_path, monkeypatch):
    """The real spec: the fetch gets the canonical URL; a file that is not the published one is rejected."""
    calls: list[str] = []

    def wrong_file(url: str, dest: Path) -> None:
        calls.append(url)
        write_svhn(dest, 2)

    monkeypatch.setattr(sources, "_fetch", wrong_file)
    with pytest.raises(DataError, match="checksum mismatch") as info:
        load_dataset("svhn", "test", data_dir=tmp_path / "none")
    assert calls == ["http://ufldl.stanford.edu/housenumbers/test_32x32.mat"]
    assert "64,275,384" in info.value.problem  # the canonical size is checked
    cache = tmp_path / "cache" / "reprlab" / "svhn"
    assert not cache.exists() or list(cache.iterdir()) == []


def test_download_verifies_caches_and_loads(tmp_path, monkeypatch):
    """A toy spec with a tiny file's checksums: downloaded once into the cache, verified, then read."""
    write_svhn(tmp_path / "blob.mat", 5)
    blob = (tmp_path / "blob.mat").read_bytes()
    url = "https://mirror.invalid/test_32x32.mat"
    real = sources.DATASETS["svhn"]
    toy = DatasetFiles(name="svhn", reader="svhn",
                       splits={"train": real.splits["train"],
                               "test": {"mat": RemoteFile("test_32x32.mat", md5=hashlib.md5(blob).hexdigest(),
                                                          size=len(blob), urls=(url,))}},
                       class_names=real.class_names, homepage="", license="", dir_aliases=real.dir_aliases)
    monkeypatch.setitem(sources.DATASETS, "svhn", toy)
    calls: list[str] = []

    def fetch(u: str, dest: Path) -> None:
        calls.append(u)
        dest.write_bytes(blob)

    monkeypatch.setattr(sources, "_fetch", fetch)
    data = load_dataset("svhn", "test", data_dir=tmp_path / "none")
    assert len(data) == 5 and calls == [url]
    assert (tmp_path / "cache" / "reprlab" / "svhn" / "test_32x32.mat").read_bytes() == blob
    load_dataset("svhn", "test")  # found in the cache: no second download
    assert len(calls) == 1
    assert locate("svhn", "test", download=False, verify=True)["mat"].name == "test_32x32.mat"
