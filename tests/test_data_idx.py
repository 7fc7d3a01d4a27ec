"""IDX reader: valid files (gz and raw), and every corruption a download can produce."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from reprlab.data.idx import load_idx_split, read_idx
from reprlab.base.errors import DataError


def idx_bytes(arr: np.ndarray, dtype_code: int = 0x08) -> bytes:
    header = bytes([0, 0, dtype_code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def write(path: Path, data: bytes, gz: bool = True) -> Path:
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(5, 4, 3), dtype=np.uint8)


@pytest.fixture
def labels() -> np.ndarray:
    return np.array([0, 1, 2, 9, 4], dtype=np.uint8)


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_roundtrip(tmp_path, images, gz):
    path = write(tmp_path / ("x.gz" if gz else "x"), idx_bytes(images), gz=gz)
    out = read_idx(path)
    assert out.dtype == np.uint8 and out.shape == (5, 4, 3)
    np.testing.assert_array_equal(out, images)
    assert out.flags.writeable


def test_gzip_detected_by_content_not_name(tmp_path, images):
    path = write(tmp_path / "plain-name-but-gzipped", idx_bytes(images), gz=True)
    np.testing.assert_array_equal(read_idx(path), images)


def test_load_idx_split(tmp_path, images, labels):
    data = load_idx_split(write(tmp_path / "img.gz", idx_bytes(images)), write(tmp_path / "lab.gz", idx_bytes(labels)),
                          name="toy")
    assert data.images.shape == (5, 1, 4, 3) and data.images.dtype == torch.uint8
    assert data.labels.dtype == torch.int64 and data.labels.tolist() == labels.tolist()
    assert data.name == "toy" and "img.gz" in data.source
    assert torch.equal(data.images[:, 0], torch.from_numpy(images))


def test_load_idx_split_without_labels(tmp_path, images):
    data = load_idx_split(write(tmp_path / "img.gz", idx_bytes(images)))
    assert data.labels is None and len(data) == 5


def test_truncated_payload_names_file_and_byte_counts(tmp_path, images):
    raw = idx_bytes(images)
    path = write(tmp_path / "train-images-idx3-ubyte.gz", raw[:-7])
    with pytest.raises(DataError, match="truncated") as info:
        read_idx(path)
    msg = str(info.value)
    assert "train-images-idx3-ubyte.gz" in msg
    assert "60 payload bytes" in msg and "53 are present" in msg
    assert "re-download" in info.value.fix


def test_truncated_gzip_stream(tmp_path, images):
    blob = gzip.compress(idx_bytes(images))
    path = tmp_path / "cut.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="corrupt or truncated gzip") as info:
        read_idx(path)
    assert "cut.gz" in str(info.value) and "re-download" in info.value.fix


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "bad.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(60)))
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        read_idx(path)


def test_gzip_crc_error(tmp_path, images):
    blob = bytearray(gzip.compress(idx_bytes(images)))
    blob[-8] ^= 0xFF  # corrupt the CRC32 trailer
    path = tmp_path / "crc.gz"
    path.write_bytes(bytes(blob))
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        read_idx(path)


def test_wrong_magic(tmp_path):
    path = write(tmp_path / "notidx", b"PK\x03\x04" + bytes(100), gz=False)
    with pytest.raises(DataError, match="not an IDX file.*0x504b0304"):
        read_idx(path)


def test_unsupported_dtype_byte(tmp_path, images):
    path = write(tmp_path / "float.idx", idx_bytes(images, dtype_code=0x0D), gz=False)
    with pytest.raises(DataError, match="data type byte is 0x0d"):
        read_idx(path)


def test_trailing_bytes(tmp_path, labels):
    path = write(tmp_path / "lab", idx_bytes(labels) + b"\x00\x00", gz=False)
    with pytest.raises(DataError, match="2 unexpected trailing bytes"):
        read_idx(path)


def test_too_short_and_truncated_header(tmp_path):
    with pytest.raises(DataError, match="too short for an IDX header"):
        read_idx(write(tmp_path / "a", b"\x00\x00", gz=False))
    with pytest.raises(DataError, match="truncated IDX header"):
        read_idx(write(tmp_path / "b", bytes([0, 0, 8, 3]) + b"\x00\x00\x00\x05", gz=False))


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_idx(tmp_path / "nope.gz")


def test_count_mismatch(tmp_path, images, labels):
    img = write(tmp_path / "img.gz", idx_bytes(images))
    lab = write(tmp_path / "lab.gz", idx_bytes(labels[:4]))
    with pytest.raises(DataError, match="count mismatch.*5 images.*4 labels"):
        load_idx_split(img, lab)


def test_swapped_images_and_labels(tmp_path, images, labels):
    img = write(tmp_path / "img.gz", idx_bytes(images))
    lab = write(tmp_path / "lab.gz", idx_bytes(labels))
    with pytest.raises(DataError, match="labels.*not an image file"):
        load_idx_split(lab, img)
    with pytest.raises(DataError, match="expected a 1-D IDX label file"):
        load_idx_split(img, img)
