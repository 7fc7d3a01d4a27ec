"""load_image_folder: class folders, flat folders, formats, channels, sizes and broken files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reprlab.data import load_dataset, load_image_folder
from reprlab.base.errors import ConfigError, DataError

RNG = np.random.default_rng(0)


def gray(path: Path, h: int = 6, w: int = 5, fmt: str | None = None) -> np.ndarray:
    arr = RNG.integers(0, 256, (h, w), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode="L").save(path, format=fmt)
    return arr


def rgb(path: Path, h: int = 6, w: int = 5) -> np.ndarray:
    arr = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode="RGB").save(path)
    return arr


def test_class_folders(tmp_path):
    a0 = gray(tmp_path / "cat" / "0.png")
    gray(tmp_path / "cat" / "1.png")
    b0 = gray(tmp_path / "ant" / "x.png")
    (tmp_path / "notes.txt").write_text("not an image")
    gray(tmp_path / ".hidden" / "h.png")
    data = load_image_folder(tmp_path)
    assert data.class_names == ["ant", "cat"]
    assert data.labels.tolist() == [0, 1, 1]
    assert data.images.shape == (3, 1, 6, 5) and data.images.dtype == torch.uint8
    assert torch.equal(data.images[0, 0], torch.from_numpy(b0))
    assert torch.equal(data.images[1, 0], torch.from_numpy(a0))
    assert data.meta["files"][0] == str(Path("ant") / "x.png")


def test_flat_folder_and_formats(tmp_path):
    arrays = {
        "a.png": gray(tmp_path / "a.png"),
        "b.bmp": gray(tmp_path / "b.bmp"),
        "c.pgm": gray(tmp_path / "c.pgm"),
        "d.PNG": gray(tmp_path / "d.PNG"),
    }
    data = load_image_folder(tmp_path)
    assert data.labels is None and data.class_names is None and len(data) == 4
    for i, name in enumerate(sorted(arrays)):
        assert torch.equal(data.images[i, 0], torch.from_numpy(arrays[name])), name


def test_jpeg_is_read(tmp_path):
    Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(tmp_path / "a.jpg", quality=95)
    data = load_image_folder(tmp_path)
    assert data.shape == (3, 8, 8) and abs(int(data.images.float().mean()) - 128) <= 2


def test_channels_auto_and_forced(tmp_path):
    g = gray(tmp_path / "g.png")
    c = rgb(tmp_path / "rgb.png")
    data = load_image_folder(tmp_path)
    assert data.shape == (3, 6, 5)  # mixed -> RGB
    assert torch.equal(data.images[0], torch.from_numpy(g)[None].repeat(3, 1, 1))
    assert torch.equal(data.images[1], torch.from_numpy(c).permute(2, 0, 1))
    one = load_image_folder(tmp_path, channels=1)
    lum = np.rint(c @ np.array([0.299, 0.587, 0.114]))
    assert np.abs(one.images[1, 0].numpy().astype(int) - lum).max() <= 1
    with pytest.raises(ConfigError, match="channels must be 1 or 3"):
        load_image_folder(tmp_path, channels=2)


def test_alpha_palette_and_16bit(tmp_path):
    Image.fromarray(np.full((4, 4, 4), 200, np.uint8), mode="RGBA").save(tmp_path / "a.png")
    pal = Image.fromarray(np.arange(16, dtype=np.uint8).reshape(4, 4) * 16, mode="L").convert("P")
    pal.save(tmp_path / "b.png")
    Image.fromarray(np.full((4, 4), 65535, np.uint16)).save(tmp_path / "c.png")
    data = load_image_folder(tmp_path, channels=1)
    assert data.images.dtype == torch.uint8 and data.shape == (1, 4, 4)
    assert int(data.images[0].min()) == 200 and int(data.images[2].min()) == 255
    assert data.images[1, 0, 0].tolist() == [0, 16, 32, 48]


def test_palette_images_auto_channels(tmp_path):
    pal = Image.fromarray(np.arange(16, dtype=np.uint8).reshape(4, 4) * 16, mode="L").convert("P")
    pal.save(tmp_path / "grey_palette.png")
    assert load_image_folder(tmp_path).shape == (1, 4, 4)  # grey palette -> 1 channel
    Image.fromarray(np.full((4, 4, 3), (255, 0, 0), np.uint8)).convert("P").save(tmp_path / "red_palette.png")
    data = load_image_folder(tmp_path)
    assert data.shape == (3, 4, 4) and data.images[1, :, 0, 0].tolist() == [255, 0, 0]


def test_mixed_sizes_need_resize(tmp_path):
    gray(tmp_path / "a.png", 6, 5)
    gray(tmp_path / "b.png", 7, 5)
    with pytest.raises(DataError, match="different sizes.*a.png is 6x5.*b.png is 7x5") as info:
        load_image_folder(tmp_path)
    assert "set data.resize=[H, W]" in info.value.fix
    data = load_image_folder(tmp_path, resize=[4, 3])
    assert data.shape == (1, 4, 3)
    assert load_image_folder(tmp_path, resize=8).shape == (1, 8, 8)
    with pytest.raises(ConfigError, match="resize"):
        load_image_folder(tmp_path, resize=[0, 3])


def test_empty_folders(tmp_path):
    with pytest.raises(DataError, match="no images found"):
        load_image_folder(tmp_path)
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(DataError, match="no images found"):
        load_image_folder(tmp_path)
    gray(tmp_path / "a" / "1.png")
    (tmp_path / "b").mkdir()
    with pytest.raises(DataError, match=r"class folder\(s\) \['b'\] contain no images"):
        load_image_folder(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_image_folder(tmp_path / "nope")
    with pytest.raises(DataError, match="is not a folder"):
        load_image_folder(tmp_path / "readme.txt")


def test_corrupt_image_named(tmp_path):
    gray(tmp_path / "good.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(DataError, match="cannot read image .*broken.png"):
        load_image_folder(tmp_path)


def test_truncated_png_named(tmp_path):
    gray(tmp_path / "good.png", 40, 40)
    blob = (tmp_path / "good.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="cut.png"):
        load_image_folder(tmp_path)


def test_via_load_dataset(tmp_path):
    gray(tmp_path / "x" / "a.png", 6, 6)
    gray(tmp_path / "y" / "b.png", 9, 9)
    data = load_dataset("folder", path=tmp_path, resize=[6, 6], channels=3)
    assert data.images.shape == (2, 3, 6, 6) and data.labels.tolist() == [0, 1]
    with pytest.raises(DataError, match="labels_path is not used"):
        load_dataset("folder", path=tmp_path, labels_path=tmp_path / "y.npy")
