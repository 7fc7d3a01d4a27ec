"""Locating, verifying and downloading canonical dataset files (no network), and the dataset registry."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import os
import struct
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from reprlab.data import describe_datasets, list_datasets, load_dataset, sources
from reprlab.data.sources import DatasetFiles, RemoteFile, candidate_dirs, download_file, locate, verify_file
from reprlab.base.errors import DataError

REAL_FETCH = sources._fetch  # saved before the autouse fixture replaces it


def idx_bytes(arr: np.ndarray) -> bytes:
    return bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(np.uint8).tobytes()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture(autouse=True)
def isolated(isolated_sources):
    """Every test here: no REPRLAB_DATA, a private cache, no system folder, no network (conftest)."""


class ToyMnist:
    """A fake 'mnist' spec whose tiny files have known checksums, plus their contents by URL."""

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.blobs: dict[str, bytes] = {}
        splits = {}
        for split, prefix, n in (("train", "train", 6), ("test", "t10k", 4)):
            arrays = {"images": rng.integers(0, 256, (n, 3, 3), dtype=np.uint8),
                      "labels": rng.integers(0, 10, n, dtype=np.uint8)}
            files = {}
            for role, arr in arrays.items():
                name = f"{prefix}-{role}-idx{arr.ndim}-ubyte.gz"
                payload = idx_bytes(arr)
                blob = gzip.compress(payload, mtime=0)
                url = f"https://mirror.invalid/{name}"
                self.blobs[url] = blob
                files[role] = RemoteFile(name, md5=md5(blob), sha256=hashlib.sha256(blob).hexdigest(),
                                         size=len(blob), urls=(url,), payload_md5=md5(payload),
                                         aliases=(name[:-3],))
            splits[split] = files
        self.spec = DatasetFiles(name="mnist", reader="idx", splits=splits, class_names=tuple("0123456789"),
                                 homepage="", license="", dir_aliases=("MNIST/raw",))

    def file(self, split: str, role: str) -> RemoteFile:
        return self.spec.splits[split][role]

    def blob(self, split: str, role: str) -> bytes:
        return self.blobs[self.file(split, role).urls[0]]

    def place(self, folder: Path, split: str = "test", compressed: bool = True) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for role in ("images", "labels"):
            f = self.file(split, role)
            data = self.blob(split, role)
            if compressed:
                (folder / f.name).write_bytes(data)
            else:
                (folder / f.aliases[0]).write_bytes(gzip.decompress(data))

    def fetcher(self, calls: list[str]):
        def fetch(url: str, dest: Path) -> None:
            calls.append(url)
            dest.write_bytes(self.blobs[url])
        return fetch


@pytest.fixture
def toy(monkeypatch) -> ToyMnist:
    t = ToyMnist()
    monkeypatch.setitem(sources.DATASETS, "mnist", t.spec)
    return t


def test_candidate_dirs_order(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRLAB_DATA", str(tmp_path / "env"))
    dirs = candidate_dirs("mnist", tmp_path / "explicit")
    expected = [tmp_path / "explicit" / "mnist", tmp_path / "explicit", tmp_path / "env" / "mnist", tmp_path / "env",
                tmp_path / "cache" / "reprlab" / "mnist", tmp_path / "system" / "mnist"]
    assert [d for d in dirs if d in expected] == expected
    assert tmp_path / "explicit" / "MNIST" / "raw" in dirs  # torchvision layout
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert candidate_dirs("usps")[-2] == Path(os.path.expanduser("~")) / ".cache" / "reprlab" / "usps"


def test_locate_in_data_dir_forms(tmp_path, toy):
    toy.place(tmp_path / "a" / "mnist")
    found = locate("mnist", "test", data_dir=tmp_path / "a", download=False)
    assert found["images"] == tmp_path / "a" / "mnist" / "t10k-images-idx3-ubyte.gz"
    toy.place(tmp_path / "b")  # data_dir itself
    assert locate("mnist", "test", data_dir=tmp_path / "b", download=False)["labels"].parent == tmp_path / "b"
    toy.place(tmp_path / "c" / "MNIST" / "raw", compressed=False)  # torchvision layout, uncompressed
    found = locate("mnist", "test", data_dir=tmp_path / "c", download=False)
    assert found["images"].name == "t10k-images-idx3-ubyte"
    data = load_dataset("mnist", "test", data_dir=tmp_path / "c", download=False)
    assert len(data) == 4 and data.class_names[0] == "0"


def test_env_var_and_explicit_priority(tmp_path, monkeypatch, toy):
    toy.place(tmp_path / "env" / "mnist")
    monkeypatch.setenv("REPRLAB_DATA", str(tmp_path / "env"))
    assert locate("mnist", "test", download=False)["images"].parent == tmp_path / "env" / "mnist"
    toy.place(tmp_path / "explicit")
    assert locate("mnist", "test", data_dir=tmp_path / "explicit", download=False)["images"].parent == \
        tmp_path / "explicit"


def test_incomplete_split_is_skipped(tmp_path, toy):
    toy.place(tmp_path / "d" / "mnist")
    (tmp_path / "d" / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="not found"):
        locate("mnist", "test", data_dir=tmp_path / "d", download=False)


def test_not_found_message_lists_files_folder_and_options(tmp_path, toy):
    with pytest.raises(DataError) as info:
        locate("mnist", "train", data_dir=tmp_path / "mine", download=False)
    err = info.value
    assert "mnist train split not found and downloading is disabled" in err.problem
    assert "train-images-idx3-ubyte.gz" in err.fix and "train-labels-idx1-ubyte.gz" in err.fix
    assert str(tmp_path / "mine" / "mnist") in err.fix
    assert "--data-dir" in err.fix and "REPRLAB_DATA" in err.fix
    assert "https://mirror.invalid/train-images-idx3-ubyte.gz" in err.fix


def test_real_spec_not_found_mentions_canonical_urls(tmp_path):
    with pytest.raises(DataError) as info:
        locate("fashion-mnist", "test", data_dir=tmp_path, download=False)
    assert "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-images-idx3-ubyte.gz" in info.value.fix
    with pytest.raises(DataError, match="no split 'valid'"):
        locate("fashion-mnist", "valid", download=False)
    with pytest.raises(DataError, match="no file specification"):
        locate("cifar10", "train", download=False)


def test_download_verifies_and_caches(tmp_path, monkeypatch, toy):
    calls: list[str] = []
    monkeypatch.setattr(sources, "_fetch", toy.fetcher(calls))
    data = load_dataset("mnist", "train", data_dir=tmp_path / "empty")
    assert len(data) == 6 and len(calls) == 2
    cache = tmp_path / "cache" / "reprlab" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    assert (cache / "train-images-idx3-ubyte.gz").read_bytes() == toy.blob("train", "images")
    load_dataset("mnist", "train")  # second time: found in the cache, no download
    assert len(calls) == 2


def test_checksum_mismatch_leaves_nothing(tmp_path, monkeypatch, toy):
    def evil(url: str, dest: Path) -> None:
        dest.write_bytes(b"x" * toy.file("test", "images").size)  # right size, wrong content

    monkeypatch.setattr(sources, "_fetch", evil)
    with pytest.raises(DataError, match="checksum mismatch") as info:
        locate("mnist", "test")
    assert "download failed" in info.value.problem and "--data-dir" in info.value.fix
    cache = tmp_path / "cache" / "reprlab" / "mnist"
    assert not cache.exists() or list(cache.iterdir()) == []


def test_size_mismatch_and_mirror_fallback(tmp_path, monkeypatch, toy):
    f = toy.file("test", "labels")
    good = toy.blob("test", "labels")
    spec = RemoteFile(f.name, md5=f.md5, sha256=f.sha256, size=f.size,
                      urls=("https://down.invalid/x", "https://short.invalid/x", "https://good.invalid/x"))
    calls: list[str] = []

    def fetch(url: str, dest: Path) -> None:
        calls.append(url)
        if "down" in url:
            raise urllib.error.URLError("connection refused")
        dest.write_bytes(good[:-1] if "short" in url else good)

    monkeypatch.setattr(sources, "_fetch", fetch)
    out = download_file(spec, tmp_path / "dl")
    assert out.read_bytes() == good and len(calls) == 3
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == [f.name]


def test_network_failure_is_a_clear_error(tmp_path, monkeypatch, toy):
    def offline(url: str, dest: Path) -> None:
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(sources, "_fetch", offline)
    with pytest.raises(DataError, match="Name or service not known") as info:
        load_dataset("mnist", "test")
    assert "t10k-images-idx3-ubyte.gz" in info.value.fix and "REPRLAB_DATA" in info.value.fix
    assert not (tmp_path / "cache" / "reprlab" / "mnist").exists() or \
        list((tmp_path / "cache" / "reprlab" / "mnist").iterdir()) == []


def test_real_fetch_with_file_url(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"hello reprlab")
    REAL_FETCH(src.as_uri(), tmp_path / "dest.bin")  # urllib handles file:// without a network
    assert (tmp_path / "dest.bin").read_bytes() == b"hello reprlab"


def test_verify_found_files(tmp_path, toy):
    f = toy.file("test", "labels")
    path = tmp_path / f.name
    path.write_bytes(toy.blob("test", "labels"))
    verify_file(path, f)
    # a recompressed copy (different gzip header, e.g. Debian's) is accepted: same payload
    payload = gzip.decompress(toy.blob("test", "labels"))
    path.write_bytes(gzip.compress(payload, mtime=123456))
    assert md5(path.read_bytes()) != f.md5
    verify_file(path, f)
    toy.place(tmp_path / "v" / "mnist")
    locate("mnist", "test", data_dir=tmp_path / "v", download=False, verify=True)
    # a different payload is not
    bad = tmp_path / "v" / "mnist" / f.name
    bad.write_bytes(gzip.compress(payload[:-1] + b"\x07"))
    with pytest.raises(DataError, match="checksum mismatch") as info:
        locate("mnist", "test", data_dir=tmp_path / "v", download=False, verify=True)
    assert "re-download" in info.value.fix
    assert locate("mnist", "test", data_dir=tmp_path / "v", download=False)  # not verified unless asked


def _usps_files(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    line = "1 " + " ".join(f"{i}:0.5" for i in range(1, 257)) + "\n"
    for name in names:
        if name.endswith(".bz2"):
            (folder / name).write_bytes(bz2.compress(line.encode()))
        else:
            import h5py

            with h5py.File(folder / name, "w") as fh:
                for split, n in (("train", 3), ("test", 2)):
                    fh[f"{split}/data"] = np.full((n, 256), 0.25, np.float32)
                    fh[f"{split}/target"] = np.arange(n, dtype=np.int32)


def test_usps_format_choice(tmp_path):
    _usps_files(tmp_path / "a" / "usps", ["usps.bz2", "usps.t.bz2", "usps.h5"])
    assert set(locate("usps", "train", data_dir=tmp_path / "a", download=False)) == {"libsvm"}
    # only the test LIBSVM file + the h5: the h5 serves both splits (one preprocessing for both)
    _usps_files(tmp_path / "b" / "usps", ["usps.t.bz2", "usps.h5"])
    for split in ("train", "test"):
        assert set(locate("usps", split, data_dir=tmp_path / "b", download=False)) == {"h5"}
    test = load_dataset("usps", "test", data_dir=tmp_path / "b", download=False)
    assert len(test) == 2 and test.meta["format"] == "h5" and torch.allclose(test.images, torch.tensor(0.25))
    # only the test LIBSVM file: test works, train is missing
    _usps_files(tmp_path / "c" / "usps", ["usps.t.bz2"])
    test = load_dataset("usps", "test", data_dir=tmp_path / "c", download=False)
    assert test.meta["format"] == "libsvm" and torch.allclose(test.images, torch.tensor(0.75))
    with pytest.raises(DataError, match="usps.bz2"):
        load_dataset("usps", "train", data_dir=tmp_path / "c", download=False)


def test_describe(tmp_path, toy):
    toy.place(tmp_path / "d" / "mnist", split="test")
    rows = {r["name"]: r for r in describe_datasets(tmp_path / "d")}
    assert list(rows) == ["fashion-mnist", "mnist", "usps", "svhn", "mnist-m", "fashion-mnist-sample"]
    assert rows["fashion-mnist"]["status"] == "not found" and rows["fashion-mnist"]["where"] == "not found"
    assert rows["mnist"]["status"] == "partial" and rows["mnist"]["splits"]["train"] == "not found"
    assert rows["mnist"]["where"] == str(tmp_path / "d" / "mnist")
    assert rows["fashion-mnist-sample"]["status"] == "embedded"


def test_registry_names_and_errors(tmp_path):
    assert list_datasets() == ["fashion-mnist", "mnist", "usps", "svhn", "mnist-m", "fashion-mnist-sample", "arrays",
                               "folder"]
    with pytest.raises(DataError, match="unknown dataset 'fashon-mnist'") as info:
        load_dataset("fashon-mnist")
    assert "did you mean 'fashion-mnist'" in info.value.fix and "folder" in info.value.fix
    with pytest.raises(DataError, match="unknown dataset 'fashion_mnist'") as info:
        load_dataset("fashion_mnist")
    assert "did you mean 'fashion-mnist'" in info.value.fix
    with pytest.raises(DataError, match="unknown split 'val'"):
        load_dataset("fashion-mnist-sample", "val")
    with pytest.raises(DataError, match="only for the 'arrays' and 'folder'"):
        load_dataset("mnist", path=tmp_path)
