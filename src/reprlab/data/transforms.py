"""Batch image operations on torch tensors: value ranges, augmentation, resizing, channels.

Models see images in their ``output_range`` (``"0_1"`` or ``"-1_1"``); data is stored in
``[0, 1]`` (or uint8) and converted per batch with :func:`to_model_range`. Augmentation
works on ``[0, 1]`` batches (its padding is black) and is driven only by the
``torch.Generator`` passed in, so a seed reproduces it exactly.

Example:
    >>> import torch
    >>> x = torch.rand(8, 1, 28, 28)
    >>> aug = Augmenter(flip=True, rotation=10.0, crop_padding=2)
    >>> y = aug(x, torch.Generator().manual_seed(0))
    >>> torch.equal(y, aug(x, torch.Generator().manual_seed(0)))
    True
    >>> to_model_range(x, "-1_1").min() >= -1
    tensor(True)
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from reprlab.base.errors import ConfigError

OUTPUT_RANGES = ("0_1", "-1_1")
LUMA = (0.299, 0.587, 0.114)
_CHUNK = 4096


def _check_range(output_range: str) -> None:
    if output_range not in OUTPUT_RANGES:
        raise ConfigError(f"unknown output range {output_range!r}", fix=f"use one of {', '.join(OUTPUT_RANGES)}")


def to_model_range(x01: torch.Tensor, output_range: str) -> torch.Tensor:
    """Map a ``[0, 1]`` batch (or a uint8 batch, scaled by 1/255) to the model's range.

    ``"0_1"`` returns float input unchanged; ``"-1_1"`` returns ``x * 2 - 1``.

    Example:
        >>> to_model_range(torch.tensor([0.0, 0.5, 1.0]), "-1_1")
        tensor([-1.,  0.,  1.])
    """
    _check_range(output_range)
    if x01.dtype == torch.uint8:
        x01 = x01.float().div_(255.0)
    elif not x01.is_floating_point():
        x01 = x01.float()
    return x01 if output_range == "0_1" else x01 * 2.0 - 1.0


def from_model_range(x: torch.Tensor, output_range: str, *, clamp: bool = False) -> torch.Tensor:
    """Inverse of :func:`to_model_range`: map model outputs back to ``[0, 1]``.

    With ``clamp=True`` values are clipped to ``[0, 1]`` (for saving or showing images).

    Example:
        >>> from_model_range(torch.tensor([-1.0, 0.0, 1.0]), "-1_1")
        tensor([0.0000, 0.5000, 1.0000])
    """
    _check_range(output_range)
    out = x if output_range == "0_1" else (x + 1.0) * 0.5
    return out.clamp(0.0, 1.0) if clamp else out


class Augmenter:
    """Random horizontal flips, rotations within ``±rotation`` degrees and padded random crops.

    Each enabled operation is applied independently per image, in the order flip, rotation,
    crop; all randomness comes from the generator passed to :meth:`__call__`. Rotation uses
    bilinear ``grid_sample`` with zero (black) fill; crops pad by ``crop_padding`` pixels
    (``padding_mode`` ``"reflect"`` or ``"zeros"``) and cut a random window of the original
    size. With nothing enabled the input is returned as is (no copy).

    Example:
        >>> aug = Augmenter(flip=True, crop_padding=4)
        >>> out = aug(torch.rand(2, 3, 32, 32), torch.Generator().manual_seed(1))
        >>> out.shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(self, flip: bool = False, rotation: float = 0.0, crop_padding: int = 0,
                 padding_mode: str = "reflect") -> None:
        rotation = float(rotation)
        if not math.isfinite(rotation) or not 0.0 <= rotation <= 180.0:
            raise ConfigError(f"augmentation rotation must be in [0, 180] degrees, got {rotation}",
                              fix="set data.augment.rotation to e.g. 10")
        if isinstance(crop_padding, bool) or int(crop_padding) != crop_padding or crop_padding < 0:
            raise ConfigError(f"augmentation crop_padding must be an integer >= 0, got {crop_padding!r}",
                              fix="set data.augment.crop_padding to e.g. 2")
        if padding_mode not in ("reflect", "zeros"):
            raise ConfigError(f"unknown crop padding_mode {padding_mode!r}", fix="use 'reflect' or 'zeros'")
        self.flip = bool(flip)
        self.rotation = rotation
        self.crop_padding = int(crop_padding)
        self.padding_mode = padding_mode

    @property
    def enabled(self) -> bool:
        """Whether any augmentation is switched on."""
        return self.flip or self.rotation > 0 or self.crop_padding > 0

    def __repr__(self) -> str:
        return (f"Augmenter(flip={self.flip}, rotation={self.rotation}, crop_padding={self.crop_padding}, "
                f"padding_mode={self.padding_mode!r})")

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment a batch ``(N, C, H, W)`` (float in [0, 1], or uint8 which is returned as uint8)."""
        if not self.enabled:
            return x
        if x.ndim != 4:
            raise ValueError(f"Augmenter expects a (N, C, H, W) batch, got shape {tuple(x.shape)}")
        is_uint8 = x.dtype == torch.uint8
        out = x.float() if is_uint8 or not x.is_floating_point() else x
        n = out.shape[0]

        def rand(*shape: int) -> torch.Tensor:
            return torch.rand(*shape, generator=generator, device=generator.device).to(out.device)

        if self.flip:
            mask = (rand(n) < 0.5).view(n, 1, 1, 1)
            out = torch.where(mask, out.flip(-1), out)
        if self.rotation > 0:
            out = self._rotate(out, (rand(n) * 2.0 - 1.0) * math.radians(self.rotation))
        if self.crop_padding > 0:
            out = self._crop(out, generator)
        if is_uint8:
            out = out.round_().clamp_(0, 255).to(torch.uint8)
        return out

    @staticmethod
    def _rotate(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        cos, sin = torch.cos(angles).to(x.dtype), torch.sin(angles).to(x.dtype)
        zero = torch.zeros_like(cos)
        # Rotation in pixel space expressed in affine_grid's normalised coordinates
        # (x scaled by W/2, y by H/2), so non-square images are not sheared.
        theta = torch.stack([torch.stack([cos, -sin * (h / w), zero], 1),
                             torch.stack([sin * (w / h), cos, zero], 1)], 1)
        grid = F.affine_grid(theta, [n, x.shape[1], h, w], align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def _crop(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, c, h, w = x.shape
        p = self.crop_padding
        if self.padding_mode == "reflect" and p >= min(h, w):
            raise ConfigError(f"crop_padding={p} with reflect padding needs images larger than {p} pixels, "
                              f"got {h}x{w}", fix="lower data.augment.crop_padding or use padding_mode='zeros'")
        padded = F.pad(x, (p, p, p, p), mode="reflect" if self.padding_mode == "reflect" else "constant")
        offsets = torch.randint(0, 2 * p + 1, (2, n), generator=generator, device=generator.device).to(x.device)
        rows = offsets[0].view(n, 1) + torch.arange(h, device=x.device)
        cols = offsets[1].view(n, 1) + torch.arange(w, device=x.device)
        out = padded.gather(2, rows.view(n, 1, h, 1).expand(n, c, h, w + 2 * p))
        return out.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))


def _parse_size(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in size)):
        raise ConfigError(f"image size must be a positive integer or [H, W], got {size!r}",
                          fix="set data.resize=[H, W]")
    return int(size[0]), int(size[1])


def resize(images: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    """Resize ``(N, C, H, W)`` images to ``size`` (``[H, W]`` or an int) with antialiased bilinear filtering.

    uint8 input gives uint8 output (rounded); float input gives float output. Works in chunks
    so that large uint8 datasets need little extra memory.

    Example:
        >>> resize(torch.zeros(2, 1, 28, 28, dtype=torch.uint8), (32, 32)).shape
        torch.Size([2, 1, 32, 32])
    """
    h, w = _parse_size(size)
    if images.ndim != 4:
        raise ValueError(f"resize expects (N, C, H, W) images, got shape {tuple(images.shape)}")
    if tuple(images.shape[-2:]) == (h, w):
        return images
    is_uint8 = images.dtype == torch.uint8
    out = torch.empty(images.shape[0], images.shape[1], h, w, dtype=images.dtype, device=images.device)
    for start in range(0, images.shape[0], _CHUNK):
        chunk = images[start:start + _CHUNK]
        src = chunk.float() if is_uint8 or not chunk.is_floating_point() else chunk
        res = F.interpolate(src, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        out[start:start + _CHUNK] = res.round_().clamp_(0, 255) if is_uint8 else res
    return out


def convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Convert ``(N, C, H, W)`` images to ``channels`` (1 -> 3 repeats; 3 -> 1 uses luminance 0.299/0.587/0.114).

    uint8 input stays uint8 (rounded).

    Example:
        >>> convert_channels(torch.ones(2, 1, 4, 4), 3).shape
        torch.Size([2, 3, 4, 4])
    """
    if channels not in (1, 3):
        raise ConfigError(f"channels must be 1 or 3, got {channels!r}", fix="set data.channels to 1 or 3")
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"convert_channels expects (N, 1|3, H, W) images, got shape {tuple(images.shape)}")
    c = images.shape[1]
    if c == channels:
        return images
    if channels == 3:
        return images.repeat(1, 3, 1, 1)
    is_uint8 = images.dtype == torch.uint8
    out = torch.empty(images.shape[0], 1, *images.shape[2:], dtype=images.dtype, device=images.device)
    weights = torch.tensor(LUMA, device=images.device).view(1, 3, 1, 1)
    for start in range(0, images.shape[0], _CHUNK):
        chunk = images[start:start + _CHUNK]
        src = chunk.float() if is_uint8 or not chunk.is_floating_point() else chunk
        gray = (src * weights.to(src.dtype)).sum(1, keepdim=True)
        out[start:start + _CHUNK] = gray.round_().clamp_(0, 255) if is_uint8 else gray
    return out
