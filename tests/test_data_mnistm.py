"""MNIST-M: the PNG-folder and archive readers, the registry entry and its download, prepare_data, the adaptation split."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO
from reprlab.base.errors import ConfigError, DataError
from reprlab.cli.main import main as cli_main
from reprlab.config import RunConfig
from reprlab.data import ImageData, describe_datasets, list_datasets, load_dataset, sources
from reprlab.data.mnistm import read_mnistm, read_mnistm_archive
from reprlab.data.protocols import split_for_adaptation
from reprlab.runs.data import prepare_data


def write_mnistm(root: Path, split: str = "test", n: int = 12, *, size: int = 32, seed: int = 0,
                 labels: list[int] | None = None) -> np.ndarray:
    """Write ``n`` random RGB PNGs and their labels file in the mnist_m layout under ``root``; return
    the images (N, H, W, 3) in labels-file order."""
    rng = np.random.default_rng(seed)
    folder = root / f"mnist_m_{split}"
    folder.mkdir(parents=True, exist_ok=True)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    labels = list(labels) if labels is not None else [i % 10 for i in range(n)]
    lines = []
    for i in range(n):
        name = f"{i:08d}.png"
        Image.fromarray(images[i]).save(folder / name)
        lines.append(f"{name} {labels[i]}")
    (root / f"mnist_m_{split}_labels.txt").write_text("\n".join(lines) + "\n")
    return images


@pytest.fixture(autouse=True)
def isolated(isolated_sources):
    """Every test here: no REPRLAB_DATA, a private cache, no system folder, no network (conftest)."""


def test_read_pixels_labels_and_order(tmp_path):
    root = tmp_path / "mnist_m"
    images = write_mnistm(root, "test", 12, labels=[3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8])
    (root / "mnist_m_test" / "unlisted.png").write_bytes(b"ignored: not in the labels file")
    data = read_mnistm(root, "test")
    assert data.images.dtype == torch.uint8 and tuple(data.images.shape) == (12, 3, 32, 32)
    assert torch.equal(data.images, torch.from_numpy(images).permute(0, 3, 1, 2))
    assert data.labels.dtype == torch.int64 and data.labels.tolist() == [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8]
    assert data.class_names == [str(d) for d in range(10)]
    # the parent of mnist_m/ (where mnist_m.tar.gz was extracted) works too
    assert torch.equal(read_mnistm(tmp_path, "test").images, data.images)
    # grayscale PNGs become RGB
    Image.fromarray(images[0, :, :, 0]).save(root / "mnist_m_test" / "00000000.png")
    assert torch.equal(read_mnistm(root, "test").images[0], torch.from_numpy(images[0, :, :, 0]).expand(3, 32, 32))


def test_missing_labels_file(tmp_path):
    write_mnistm(tmp_path, "test", 3)
    (tmp_path / "mnist_m_test_labels.txt").unlink()
    with pytest.raises(DataError, match="mnist_m_test_labels.txt does not exist") as info:
        read_mnistm(tmp_path, "test")
    assert "FILENAME LABEL" in info.value.fix


def test_listed_file_absent(tmp_path):
    write_mnistm(tmp_path, "test", 5)
    (tmp_path / "mnist_m_test" / "00000003.png").unlink()
    with pytest.raises(DataError, match=r"lists 1 file\(s\) absent .* e\.g\. 00000003\.png") as info:
        read_mnistm(tmp_path, "test")
    assert "mnist_m_test" in info.value.fix


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_png_names_the_file(tmp_path, damage):
    write_mnistm(tmp_path, "test", 4)
    bad = tmp_path / "mnist_m_test" / "00000002.png"
    raw = bad.read_bytes()
    bad.write_bytes(raw[: len(raw) // 2] if damage == "truncated" else b"not a png at all" * 8)
    with pytest.raises(DataError, match=r"00000002\.png is truncated or corrupt") as info:
        read_mnistm(tmp_path, "test")
    assert "mnist_m.tar.gz" in info.value.fix


@pytest.mark.parametrize("line, match", [("00000001.png 10", "label '10' of 00000001.png is not a digit 0..9"),
                                         ("00000001.png -1", "label '-1'"),
                                         ("00000001.png seven", "label 'seven'"),
                                         ("00000001.png", "expected 'FILENAME LABEL'"),
                                         ("00000001.png 1 extra", "expected 'FILENAME LABEL'")])
def test_bad_label_lines(tmp_path, line, match):
    write_mnistm(tmp_path, "test", 3)
    labels = tmp_path / "mnist_m_test_labels.txt"
    lines = labels.read_text().splitlines()
    lines[1] = line
    labels.write_text("\n".join(lines))
    with pytest.raises(DataError, match=match) as info:
        read_mnistm(tmp_path, "test")
    assert "line 2" in info.value.problem


def test_empty_files_and_folders(tmp_path):
    write_mnistm(tmp_path, "test", 3)
    for png in (tmp_path / "mnist_m_test").iterdir():
        png.unlink()
    with pytest.raises(DataError, match="mnist_m_test is empty but .* lists 3 images"):
        read_mnistm(tmp_path, "test")
    (tmp_path / "mnist_m_test").rmdir()
    with pytest.raises(DataError, match="images folder .*mnist_m_test does not exist"):
        read_mnistm(tmp_path, "test")
    (tmp_path / "mnist_m_test_labels.txt").write_text("\n\n")
    with pytest.raises(DataError, match="lists no images"):
        read_mnistm(tmp_path, "test")


def test_mixed_sizes_and_unknown_split(tmp_path):
    write_mnistm(tmp_path, "test", 3)
    Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(tmp_path / "mnist_m_test" / "00000001.png")
    with pytest.raises(DataError, match=r"00000001\.png is 28x28 but 00000000\.png is 32x32"):
        read_mnistm(tmp_path, "test")
    with pytest.raises(DataError, match="no split 'valid'"):
        read_mnistm(tmp_path, "valid")


def test_registry_layouts_and_not_found(tmp_path):
    assert "mnist-m" in list_datasets() and "svhn" in list_datasets()
    images = write_mnistm(tmp_path / "a" / "mnist-m" / "mnist_m", "test", 4)  # pytorch-adapt layout
    data = load_dataset("mnist-m", "test", data_dir=tmp_path / "a")
    assert torch.equal(data.images, torch.from_numpy(images).permute(0, 3, 1, 2))
    assert data.name == "mnist-m" and data.meta["split"] == "test"
    write_mnistm(tmp_path / "b" / "mnist_m", "test", 2)  # mnist_m.tar.gz extracted in data_dir
    assert len(load_dataset("mnist-m", "test", data_dir=tmp_path / "b")) == 2
    write_mnistm(tmp_path / "c" / "mnist-m", "test", 3)  # files directly in data_dir/mnist-m
    assert len(load_dataset("mnist-m", "test", data_dir=tmp_path / "c")) == 3
    # nothing anywhere and downloading disabled: the fix names the files, the folder layout and the archive
    with pytest.raises(DataError, match="mnist-m test split not found and downloading is disabled") as info:
        load_dataset("mnist-m", "test", data_dir=tmp_path / "empty", download=False)
    assert "mnist_m_test_labels.txt" in info.value.fix and "mnist_m_<split>/" in info.value.fix
    assert "mnist_m.tar.gz" in info.value.fix
    rows = {r["name"]: r for r in describe_datasets(tmp_path / "a")}
    assert rows["mnist-m"]["status"] == "partial" and rows["mnist-m"]["splits"]["train"] == "not found"


def test_train_split_missing_points_at_the_protocol(tmp_path, monkeypatch):
    write_mnistm(tmp_path / "mnist_m", "test", 20)
    with pytest.raises(DataError, match="mnist-m train split not found: only the test split is present") as info:
        load_dataset("mnist-m", "train", data_dir=tmp_path, download=False)
    assert "adaptation protocol" in info.value.fix and "split_for_adaptation" in info.value.fix
    cfg = RunConfig.from_dict({"data": {"name": "mnist-m", "data_dir": str(tmp_path), "download": False}})
    with pytest.raises(DataError, match="only the test split is present"):
        prepare_data(cfg)
    # downloading allowed but offline: the same pointer, with the failed download in the problem
    monkeypatch.setattr(sources, "_fetch", _offline)
    with pytest.raises(DataError, match="only the test split is present.*Name or service not known") as info:
        prepare_data(RunConfig.from_dict({"data": {"name": "mnist-m", "data_dir": str(tmp_path)}}))
    assert "adaptation protocol" in info.value.fix
    # with the train split too, prepare_data loads both
    write_mnistm(tmp_path / "mnist_m", "train", 30, seed=1)
    splits = prepare_data(cfg)
    assert len(splits.train) + len(splits.val) == 30 and len(splits.test) == 20
    assert splits.train.shape == (3, 32, 32)


def _offline(url: str, dest: Path) -> None:
    raise urllib.error.URLError("Name or service not known")


def write_archive(path: Path, splits: dict[str, int], *, prefix: str = "mnist_m") -> dict[str, np.ndarray]:
    """Write ``mnist_m.tar.gz`` holding ``prefix/mnist_m_<split>/`` and labels files; return the images by split."""
    staging = path.parent / "staging"
    images = {split: write_mnistm(staging / "mnist_m", split, n, seed=i) for i, (split, n) in enumerate(splits.items())}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(staging / "mnist_m", arcname=prefix)
    shutil.rmtree(staging)
    return images


def test_read_from_the_archive(tmp_path):
    images = write_archive(tmp_path / "mnist_m.tar.gz", {"train": 7, "test": 5})
    for split, n in (("train", 7), ("test", 5)):
        data = read_mnistm_archive(tmp_path / "mnist_m.tar.gz", split)
        assert torch.equal(data.images, torch.from_numpy(images[split]).permute(0, 3, 1, 2))
        assert data.labels.tolist() == [i % 10 for i in range(n)] and data.meta["format"] == "tar.gz"
    write_archive(tmp_path / "dot" / "mnist_m.tar.gz", {"test": 3}, prefix="./mnist_m")  # "./" member names
    assert len(read_mnistm_archive(tmp_path / "dot" / "mnist_m.tar.gz", "test")) == 3


def test_archive_errors(tmp_path):
    archive = tmp_path / "mnist_m.tar.gz"
    write_archive(archive, {"test": 6})
    with pytest.raises(DataError, match="holds no mnist_m_train_labels.txt"):
        read_mnistm_archive(archive, "train")
    raw = archive.read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="cut.tar.gz: truncated or not a tar archive") as info:
        read_mnistm_archive(tmp_path / "cut.tar.gz", "test")
    assert "download mnist_m.tar.gz again" in info.value.fix
    with pytest.raises(DataError, match="does not exist"):
        read_mnistm_archive(tmp_path / "absent.tar.gz", "test")
    # a listed PNG absent from the archive, and a corrupt PNG inside it (named with the archive)
    staging = tmp_path / "s" / "mnist_m"
    write_mnistm(staging, "test", 4)
    (staging / "mnist_m_test" / "00000001.png").unlink()
    with tarfile.open(tmp_path / "missing.tar.gz", "w:gz") as tar:
        tar.add(staging, arcname="mnist_m")
    with pytest.raises(DataError, match=r"lists 1 file\(s\) absent from mnist_m_test/ in the archive, e\.g\. 00000001"):
        read_mnistm_archive(tmp_path / "missing.tar.gz", "test")
    (staging / "mnist_m_test" / "00000001.png").write_bytes(b"\x89PNG broken")
    with tarfile.open(tmp_path / "corrupt.tar.gz", "w:gz") as tar:
        tar.add(staging, arcname="mnist_m")
    with pytest.raises(DataError, match=r"corrupt.tar.gz:mnist_m_test/00000001\.png is truncated or corrupt"):
        read_mnistm_archive(tmp_path / "corrupt.tar.gz", "test")


def test_registry_reads_a_placed_archive(tmp_path):
    images = write_archive(tmp_path / "d" / "mnist-m" / "mnist_m.tar.gz", {"train": 6, "test": 4})
    train = load_dataset("mnist-m", "train", data_dir=tmp_path / "d", download=False)
    assert torch.equal(train.images, torch.from_numpy(images["train"]).permute(0, 3, 1, 2))
    assert len(load_dataset("mnist-m", "test", data_dir=tmp_path / "d", download=False)) == 4
    assert describe_datasets(tmp_path / "d")[4]["status"] == "found"


def test_archive_download_offline(tmp_path, monkeypatch):
    """The real spec: both URLs are tried, a file that is not the published archive is rejected and not kept;
    a toy spec (a tiny archive's md5) is downloaded once into the cache and read from there."""
    calls: list[str] = []

    def junk(url: str, dest: Path) -> None:
        calls.append(url)
        dest.write_bytes(b"<html>not the archive</html>")

    monkeypatch.setattr(sources, "_fetch", junk)
    with pytest.raises(DataError, match="checksum mismatch") as info:
        load_dataset("mnist-m", "test", data_dir=tmp_path / "none")
    assert "drive.google.com" in calls[0] and "0B_tExHiYS-0veklUZHFYT19KYjg" in calls[0]
    assert calls[1] == "https://cornell.box.com/shared/static/jado7quprg6hzzdubvwzh9umr75damwi" and len(calls) == 2
    assert "859df31c91afe82e80e5012ba928f279" in info.value.problem
    cache = tmp_path / "cache" / "reprlab" / "mnist-m"
    assert not cache.exists() or list(cache.iterdir()) == []

    images = write_archive(tmp_path / "blob" / "mnist_m.tar.gz", {"train": 5, "test": 3})
    blob = (tmp_path / "blob" / "mnist_m.tar.gz").read_bytes()
    real = sources.DATASETS["mnist-m"]
    url = "https://mirror.invalid/mnist_m.tar.gz"
    toy = dataclasses.replace(real, fallback=dataclasses.replace(real.fallback, md5=hashlib.md5(blob).hexdigest(),
                                                                 urls=(url,)))
    monkeypatch.setitem(sources.DATASETS, "mnist-m", toy)
    calls.clear()

    def fetch(u: str, dest: Path) -> None:
        calls.append(u)
        dest.write_bytes(blob)

    monkeypatch.setattr(sources, "_fetch", fetch)
    test = load_dataset("mnist-m", "test", data_dir=tmp_path / "none")
    assert torch.equal(test.images, torch.from_numpy(images["test"]).permute(0, 3, 1, 2)) and calls == [url]
    assert len(load_dataset("mnist-m", "train")) == 5 and calls == [url]  # the cached archive serves both splits
    assert (cache / "mnist_m.tar.gz").read_bytes() == blob


def test_no_download_source_says_place_the_files(tmp_path, monkeypatch):
    """A spec with no URL at all (MNIST-M without its archive) never downloads and says so."""
    monkeypatch.setitem(sources.DATASETS, "mnist-m", dataclasses.replace(sources.DATASETS["mnist-m"], fallback=None))
    with pytest.raises(DataError, match="mnist-m test split not found and mnist-m has no automatic download") as info:
        load_dataset("mnist-m", "test", data_dir=tmp_path, download=True)  # the autouse fixture forbids fetching
    assert info.value.fix.startswith("no download: place the files: put mnist_m_test_labels.txt")


def _digits(n: int, seed: int = 0) -> ImageData:
    rng = np.random.default_rng(seed)
    images = torch.from_numpy(rng.integers(0, 256, (n, 3, 4, 4), dtype=np.uint8))
    images[:, 0, 0, 0] = torch.arange(n) % 256  # with [0, 1, 0]: every image is unique
    images[:, 0, 0, 1] = torch.arange(n) // 256
    return ImageData(images, torch.from_numpy(rng.permutation(np.arange(n) % 10)), name="digits")


def _ids(data: ImageData) -> set[int]:
    return set((data.images[:, 0, 0, 0].long() + 256 * data.images[:, 0, 0, 1].long()).tolist())


def test_split_for_adaptation_is_disjoint_stratified_and_seeded():
    data = _digits(500)
    adapt, held_out = split_for_adaptation(data, eval_fraction=0.2, seed=3)
    assert len(adapt) == 400 and len(held_out) == 100
    assert _ids(adapt).isdisjoint(_ids(held_out)) and _ids(adapt) | _ids(held_out) == set(range(500))
    assert held_out.labels.bincount(minlength=10).tolist() == [10] * 10  # stratified: 50 per class -> 10 each
    assert adapt.labels.bincount(minlength=10).tolist() == [40] * 10
    assert adapt.meta["protocol_part"] == "adapt" and held_out.meta["protocol_part"] == "eval"
    again, _ = split_for_adaptation(data, eval_fraction=0.2, seed=3)
    other, _ = split_for_adaptation(data, eval_fraction=0.2, seed=4)
    assert torch.equal(again.images, adapt.images) and _ids(other) != _ids(adapt)


def test_split_for_adaptation_errors():
    data = _digits(30)
    for bad in (0, 1, 1.5, -0.1, True, "0.2"):
        with pytest.raises(ConfigError, match="eval_fraction must be a number strictly between 0 and 1"):
            split_for_adaptation(data, eval_fraction=bad, seed=0)
    with pytest.raises(DataError, match="no labels"):
        split_for_adaptation(ImageData(data.images), eval_fraction=0.2, seed=0)
    with pytest.raises(DataError, match="smallest class: 3"):  # 3 images per class cannot give 10 classes 1% each
        split_for_adaptation(data, eval_fraction=0.01, seed=0)


def test_real_mnistm_test_split(real_data_dir):
    data = load_dataset("mnist-m", "test", data_dir=real_data_dir)
    assert len(data) == 9001 and data.shape == (3, 32, 32) and data.images.dtype == torch.uint8
    # class counts of the staged test split (shared/data/MANIFEST.md)
    assert data.labels.bincount().tolist() == [878, 1016, 933, 908, 890, 807, 856, 914, 880, 919]
    # its labels equal the MNIST t10k labels [0:9001] (MANIFEST cross-check)
    mnist = load_dataset("mnist", "test", data_dir=real_data_dir, download=False)
    assert torch.equal(data.labels, mnist.labels[:9001])
    with pytest.raises(DataError, match="only the test split is present"):
        load_dataset("mnist-m", "train", data_dir=real_data_dir, download=False)
    adapt, held_out = split_for_adaptation(data, eval_fraction=0.2, seed=0)
    assert (len(adapt), len(held_out)) == (7200, 1801)  # sklearn rounds the held-out share up
    share = held_out.labels.bincount(minlength=10).double() / data.labels.bincount(minlength=10).double()
    assert torch.all((share - 0.2).abs() < 0.005)  # every class keeps its share


def test_cli_train_on_mnistm_without_train_split(tmp_path, capsys):
    """The CLI prints the error and its fix, exits 2, and creates no run directory."""
    write_mnistm(tmp_path / "data" / "mnist_m", "test", 4)
    code = cli_main(["train", str(REPO / "configs" / "conv_ae.yaml"), "data.name=mnist-m",
                     f"data.data_dir={tmp_path / 'data'}", "data.download=false", "--output-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "error: mnist-m train split not found: only the test split is present" in err
    assert "Fix: domain adaptation with MNIST-M" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()
