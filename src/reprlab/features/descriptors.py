"""Model-free image descriptors: blurred pixels, gradient histograms (HOG-like), wavelet scattering.

Shared by anomaly detection (k-NN scores without a model) and clustering (features).

Example:
    >>> import torch
    >>> image_descriptors(torch.rand(3, 1, 8, 8), "hog").shape[0]
    3
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from reprlab.base.errors import ConfigError, DataError
from reprlab.base.validation import check_choice, check_float, check_int
from reprlab.data.dataset import ImageData

__all__ = ["as_images01", "gaussian_blur", "gradient_histograms", "image_descriptors", "scattering_coefficients"]


def as_images01(images: Any, *, what: str = "images") -> torch.Tensor:
    """Images as a float32 ``(N, C, H, W)`` tensor in ``[0, 1]``.

    Accepts :class:`ImageData`, tensors or arrays shaped ``(N, C, H, W)`` (C = 1 or 3) or
    ``(N, H, W)``, uint8 ``0..255`` or float in ``[0, 1]``.

    Example:
        >>> import numpy as np
        >>> as_images01(np.zeros((2, 8, 8), np.uint8)).shape
        torch.Size([2, 1, 8, 8])
    """
    if isinstance(images, ImageData):
        return images.float01()
    if isinstance(images, np.ndarray):
        if images.dtype == object:
            raise DataError(f"{what} is an object array", fix="pass a numeric array of images")
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, torch.Tensor):
        raise DataError(f"{what} must be an ImageData, a tensor or a NumPy array, got {type(images).__name__}",
                        fix="load images with reprlab.load_dataset or pass an (N, C, H, W) array")
    x = images.detach()
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4 or x.shape[1] not in (1, 3) or x.shape[0] == 0:
        raise DataError(f"{what} must have shape (N, C, H, W) with N >= 1 and C in (1, 3), or (N, H, W); "
                        f"got {tuple(images.shape)}",
                        fix="reshape to (N, C, H, W) (NHWC arrays: load them with reprlab.data.load_arrays)")
    if x.dtype == torch.uint8:
        return x.float().div_(255.0)
    if not x.is_floating_point():
        raise DataError(f"{what} must be uint8 (0..255) or float (0..1), got {x.dtype}",
                        fix="cast to uint8 or scale to float32 in [0, 1]")
    x = x.float()
    if not torch.isfinite(x).all():
        raise DataError(f"{what} contain NaN or infinite pixels", fix="remove or repair those images")
    lo, hi = float(x.min()), float(x.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise DataError(f"float {what} must lie in [0, 1], found values in [{lo:.3g}, {hi:.3g}]",
                        fix="divide 0..255 floats by 255 (or pass uint8)")
    return x


def gaussian_blur(x01: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(N, C, H, W)`` images (zero padding); ``sigma=0`` returns them unchanged.

    Example:
        >>> x = torch.zeros(1, 1, 9, 9); x[0, 0, 4, 4] = 1.0
        >>> round(float(gaussian_blur(x, 1.0).sum()), 3), float(gaussian_blur(x, 1.0).max()) < 1
        (1.0, True)
    """
    if sigma <= 0:
        return x01
    radius = max(1, int(round(3 * sigma)))
    r = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-r ** 2 / (2 * sigma ** 2))
    k = (k / k.sum()).to(x01.device)
    c = x01.shape[1]
    x = torch.nn.functional.conv2d(x01, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), padding=(0, radius), groups=c)
    return torch.nn.functional.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), padding=(radius, 0), groups=c)


def gradient_histograms(x01: torch.Tensor, *, bins: int = 9, cell: int | None = None) -> torch.Tensor:
    """HOG-like descriptors: histograms of gradient orientation weighted by magnitude, per cell.

    Grey-level gradients (central differences) vote into ``bins`` unsigned orientations in
    cells of ``cell`` px (default: a seventh of the height, 4 px at 28 px); histograms are
    pooled over overlapping 2x2 blocks of cells and the whole descriptor is L2-normalised.
    Returns ``(N, D)``.

    Example:
        >>> gradient_histograms(torch.rand(2, 1, 28, 28)).shape
        torch.Size([2, 324])
    """
    check_int("bins", bins, minimum=2)
    x = x01.float().mean(1, keepdim=True)
    cell = cell or max(2, int(round(x.shape[-2] / 7)))
    fn = torch.nn.functional
    gx = fn.conv2d(x, torch.tensor([[[[-1.0, 0.0, 1.0]]]], device=x.device), padding=(0, 1))
    gy = fn.conv2d(x, torch.tensor([[[[-1.0], [0.0], [1.0]]]], device=x.device), padding=(1, 0))
    mag = (gx ** 2 + gy ** 2).sqrt()
    angle = torch.atan2(gy, gx) % math.pi
    idx = (angle / math.pi * bins).long().clamp(max=bins - 1)
    votes = fn.one_hot(idx[:, 0], bins).permute(0, 3, 1, 2).float() * mag
    hist = fn.avg_pool2d(votes, cell, ceil_mode=True)
    if min(hist.shape[-2:]) >= 2:
        hist = fn.avg_pool2d(hist, 2, stride=1)
    hist = hist.flatten(1)
    return hist / (hist.norm(dim=1, keepdim=True) + 1e-6)


def scattering_coefficients(x01: torch.Tensor, *, scales: int = 2, angles: int = 8, eps: float = 0.01) -> torch.Tensor:
    """Log wavelet-scattering coefficients (Bruna & Mallat 2013, computed by kymatio): ``(N, D)``.

    Second-order 2-D scattering with ``scales`` dyadic scales (``J``) and ``angles``
    orientations (``L``) of the grey-level image, then ``log(1 + S / eps)``. The
    coefficients are stable to small deformations and translations up to ``2**scales`` px,
    which makes their nearest neighbours purer than those of pixels or HOG (on
    Fashion-MNIST, 85% of the 20 nearest share the class, against 83% for pixels + HOG).
    ``D = (1 + L*J + L**2 * J*(J-1)/2) * floor(H / 2**J) * floor(W / 2**J)``: 3,969 at 28 px
    with the defaults. Colour images are averaged to grey first. Images must be at least
    ``2**scales`` px on each side.

    Example:
        >>> scattering_coefficients(torch.rand(2, 1, 28, 28)).shape
        torch.Size([2, 3969])
    """
    check_int("scales", scales, minimum=1)
    check_int("angles", angles, minimum=1)
    check_float("eps", eps, minimum=0.0, exclusive_min=True)
    h, w = x01.shape[-2:]
    if min(h, w) < 2 ** scales:
        raise ConfigError(f"scattering with scales={scales} needs images of at least {2 ** scales} px, got {h}x{w}",
                          fix=f"set scales to at most {max(1, int(math.log2(min(h, w))))}")
    try:  # the 2-D torch frontend only: ``import kymatio.torch`` also loads 3-D code that newer scipy breaks
        from kymatio.scattering2d.frontend.torch_frontend import ScatteringTorch2D
    except ImportError as exc:  # pragma: no cover - kymatio is a declared dependency
        raise ConfigError(f"scattering descriptors need kymatio ({exc})", fix="pip install kymatio") from None
    transform = ScatteringTorch2D(J=int(scales), shape=(int(h), int(w)), L=int(angles)).to(x01.device)
    coefficients = transform(x01.float().mean(1).contiguous())  # (N, n_coefficients, H / 2**J, W / 2**J)
    return torch.log1p(coefficients.flatten(1) / eps)


def image_descriptors(images: Any, kind: str, *, blur: float = 0.0, bins: int = 9,
                      batch_size: int = 2000) -> np.ndarray:
    """Model-free descriptors: ``"pixels"`` (optionally blurred), ``"hog"`` (``bins`` orientations)
    or ``"scattering"`` (:func:`scattering_coefficients` with its defaults).

    Example:
        >>> image_descriptors(torch.rand(3, 1, 8, 8), "pixels", blur=1.0).shape
        (3, 64)
    """
    check_choice("kind", kind, ("pixels", "hog", "scattering"))
    x = as_images01(images)
    describe = {"pixels": lambda xb: gaussian_blur(xb, blur).flatten(1),
                "hog": lambda xb: gradient_histograms(xb, bins=bins),
                "scattering": scattering_coefficients}[kind]
    parts = [describe(x[start:start + batch_size]) for start in range(0, x.shape[0], batch_size)]
    return torch.cat(parts).double().numpy()
