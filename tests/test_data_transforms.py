"""Model ranges, seeded augmentation, resizing and channel conversion."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from reprlab.data.transforms import Augmenter, convert_channels, from_model_range, resize, to_model_range
from reprlab.base.errors import ConfigError


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def x() -> torch.Tensor:
    return torch.rand(16, 1, 12, 12, generator=gen(0))


def test_model_range_roundtrip(x):
    assert to_model_range(x, "0_1") is x
    y = to_model_range(x, "-1_1")
    assert float(y.min()) >= -1 and float(y.max()) <= 1
    torch.testing.assert_close(from_model_range(y, "-1_1"), x)
    assert from_model_range(x, "0_1") is x
    u8 = torch.tensor([0, 255], dtype=torch.uint8)
    assert to_model_range(u8, "-1_1").tolist() == [-1.0, 1.0]
    assert from_model_range(torch.tensor([-3.0, 3.0]), "-1_1", clamp=True).tolist() == [0.0, 1.0]
    with pytest.raises(ConfigError, match="unknown output range"):
        to_model_range(x, "0_255")
    with pytest.raises(ConfigError, match="unknown output range"):
        from_model_range(x, "tanh")


def test_augmenter_noop_fast_path(x):
    aug = Augmenter()
    assert not aug.enabled
    g = gen(0)
    state = g.get_state()
    assert aug(x, g) is x
    assert torch.equal(g.get_state(), state)  # consumed no randomness


def test_augmenter_is_deterministic_per_seed(x):
    aug = Augmenter(flip=True, rotation=15.0, crop_padding=2)
    a, b, c = aug(x, gen(7)), aug(x, gen(7)), aug(x, gen(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert a.shape == x.shape and a.dtype == x.dtype


def test_flip_only(x):
    out = Augmenter(flip=True)(x, gen(1))
    flipped = [torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x)]
    kept = [torch.equal(o, xi) for o, xi in zip(out, x)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert any(flipped) and any(kept)


def test_rotation_matches_rot90_and_respects_aspect():
    img = torch.rand(1, 1, 8, 8, generator=gen(2))
    rot = Augmenter._rotate(img, torch.tensor([math.pi / 2]))
    assert any(torch.allclose(rot, torch.rot90(img, k, dims=(2, 3)), atol=1e-5) for k in (1, -1))
    # a square pattern centred in a non-square canvas must rotate without shearing
    canvas = torch.zeros(1, 1, 8, 12)
    canvas[..., 2:10] = img
    rot = Augmenter._rotate(canvas, torch.tensor([math.pi / 2]))
    assert any(torch.allclose(rot[..., 2:10], torch.rot90(img, k, dims=(2, 3)), atol=1e-5) for k in (1, -1))


def test_rotation_range_and_fill(x):
    small = Augmenter(rotation=1e-3)(x, gen(3))
    torch.testing.assert_close(small[..., 1:-1, 1:-1], x[..., 1:-1, 1:-1], atol=1e-2, rtol=0)
    ones = torch.ones(4, 1, 9, 9)
    out = Augmenter(rotation=45.0)(ones, gen(4))
    assert float(out.min()) < 0.5  # corners filled with black
    assert torch.allclose(out[..., 4, 4], torch.ones(4, 1))  # centre unchanged


@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_crop_is_a_window_of_the_padded_image(x, mode):
    p = 3
    out = Augmenter(crop_padding=p, padding_mode=mode)(x, gen(5))
    padded = F.pad(x, (p, p, p, p), mode="constant" if mode == "zeros" else "reflect")
    h, w = x.shape[-2:]
    for o, pad in zip(out, padded):
        windows = [pad[:, i:i + h, j:j + w] for i in range(2 * p + 1) for j in range(2 * p + 1)]
        assert any(torch.equal(o, win) for win in windows)


def test_uint8_in_uint8_out():
    x = torch.randint(0, 256, (4, 3, 10, 10), dtype=torch.uint8, generator=gen(6))
    out = Augmenter(flip=True, rotation=10, crop_padding=1)(x, gen(6))
    assert out.dtype == torch.uint8 and out.shape == x.shape


def test_augmenter_validation(x):
    with pytest.raises(ConfigError, match="rotation"):
        Augmenter(rotation=-5)
    with pytest.raises(ConfigError, match="crop_padding"):
        Augmenter(crop_padding=1.5)
    with pytest.raises(ConfigError, match="padding_mode"):
        Augmenter(crop_padding=1, padding_mode="wrap")
    with pytest.raises(ConfigError, match="reflect padding needs images larger"):
        Augmenter(crop_padding=12)(x, gen(0))
    assert Augmenter(crop_padding=12, padding_mode="zeros")(x, gen(0)).shape == x.shape


def test_resize():
    u8 = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8, generator=gen(7))
    up = resize(u8, (32, 32))
    assert up.dtype == torch.uint8 and up.shape == (3, 1, 32, 32)
    assert resize(u8, 28) is u8
    const = torch.full((2, 3, 28, 28), 0.25)
    torch.testing.assert_close(resize(const, (7, 9)), torch.full((2, 3, 7, 9), 0.25))
    checker = ((torch.arange(32).view(-1, 1) + torch.arange(32)) % 2).float().view(1, 1, 32, 32)
    small = resize(checker, 8)  # antialiasing averages the 1-pixel pattern instead of sampling it
    assert float((small - 0.5).abs().max()) < 0.05
    with pytest.raises(ConfigError, match="image size"):
        resize(u8, (0, 5))


def test_convert_channels():
    g = torch.rand(2, 1, 4, 4, generator=gen(8))
    c = convert_channels(g, 3)
    assert c.shape == (2, 3, 4, 4) and torch.equal(c[:, 2], g[:, 0])
    assert convert_channels(g, 1) is g
    torch.testing.assert_close(convert_channels(c, 1), g)
    red = torch.zeros(1, 3, 2, 2, dtype=torch.uint8)
    red[:, 0] = 255
    gray = convert_channels(red, 1)
    assert gray.dtype == torch.uint8 and gray.unique().tolist() == [76]  # round(0.299 * 255)
    with pytest.raises(ConfigError, match="channels must be 1 or 3"):
        convert_channels(g, 4)
