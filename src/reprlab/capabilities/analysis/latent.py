"""Latent-space exploration: traversals, 2-D grids, interpolation, prior samples, noise robustness.

Every function takes images in ``[0, 1]`` (``(C, H, W)`` or ``(1, C, H, W)``), maps them
to the model's range, works in eval mode without gradients (restoring the model's mode)
and returns decoded images in ``[0, 1]`` as float32 CPU tensors ``(N, C, H, W)``. Codes of
any shape are handled as flat vectors: dimension ``i`` is the ``i``-th entry of the
flattened code.

Example:
    >>> import torch
    >>> from reprlab.models import create_model
    >>> m = create_model("fc_ae", input_shape=(1, 8, 8), latent_dim=3)
    >>> imgs, values = traversal(m, torch.rand(1, 8, 8), dim=2, n_steps=5)
    >>> imgs.shape, values.shape
    (torch.Size([5, 1, 8, 8]), (5,))
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from reprlab.base.errors import ConfigError, DataError, ModelError
from reprlab.evaluation.reconstruction import from_model_range, to_model_range
from reprlab.base.validation import check_float, check_int

logger = logging.getLogger(__name__)

__all__ = ["RobustnessResult", "code_size", "interpolate", "latent_noise_robustness", "prior_samples",
           "traversal", "traversal_grid"]

DEFAULT_NOISE_SCALES: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)


def _device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _one_image(model: nn.Module, image: torch.Tensor, what: str = "image") -> torch.Tensor:
    x = torch.as_tensor(image)
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4 or x.shape[0] != 1:
        raise DataError(f"{what} must be one image (C, H, W) or (1, C, H, W), got shape {tuple(x.shape)}",
                        fix="pass a single image, e.g. data.float01(slice(i, i + 1))")
    expected = getattr(getattr(model, "config", None), "input_shape", None)
    if expected is not None and tuple(expected) != tuple(x.shape[1:]):
        raise ModelError(f"the model expects images of shape {tuple(expected)}, got {tuple(x.shape[1:])}",
                         fix="use an image prepared like the training data")
    return x.float()


class _Eval:
    """Context: eval mode + no_grad, restoring the previous mode."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self) -> None:
        self.was_training = self.model.training
        self.model.eval()
        self.no_grad = torch.no_grad()
        self.no_grad.__enter__()

    def __exit__(self, *exc: object) -> None:
        self.no_grad.__exit__(*exc)
        self.model.train(self.was_training)


def _encode(model: nn.Module, x01: torch.Tensor) -> tuple[torch.Tensor, torch.Size]:
    z = model.encode(to_model_range(x01.to(_device(model)), model))
    return z.reshape(z.shape[0], -1), z.shape[1:]


def _decode(model: nn.Module, z_flat: torch.Tensor, code_shape: torch.Size) -> torch.Tensor:
    x = model.decode(z_flat.reshape(z_flat.shape[0], *code_shape))
    return from_model_range(x.float(), model).clamp(0.0, 1.0).cpu()


def code_size(model: nn.Module) -> int:
    """Number of entries of the model's (flattened) latent code.

    Example:
        >>> from reprlab.models import create_model
        >>> code_size(create_model("fc_ae", input_shape=(1, 8, 8), latent_dim=3))
        3
    """
    shape = tuple(getattr(model.config, "input_shape", (1, 28, 28)))
    with _Eval(model):
        z, _ = _encode(model, torch.zeros(1, *shape))
    return int(z.shape[1])


def _check_dim(model: nn.Module, dim: int, size: int) -> None:
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise ConfigError(f"latent dimension must be an integer, got {dim!r}", fix=f"choose a dimension in 0..{size - 1}")
    if not 0 <= int(dim) < size:
        name = getattr(model, "registry_name", type(model).__name__)
        raise ConfigError(f"cannot traverse dimension {dim} of the {size}-dim latent of {name}",
                          fix=f"choose a dimension in 0..{size - 1}")


def _steps(n_steps: int, span: float) -> torch.Tensor:
    check_int("n_steps", n_steps, minimum=2, maximum=64)
    check_float("span", span, minimum=0.0, exclusive_min=True)
    return torch.linspace(-float(span), float(span), int(n_steps))


def traversal(model: nn.Module, image: torch.Tensor, dim: int, *, n_steps: int = 9, span: float = 3.0,
              scale: float = 1.0, values: Sequence[float] | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """Decode the code of ``image`` with dimension ``dim`` swept; returns ``(images, values)``.

    The swept values are ``z[dim] + scale * linspace(-span, span, n_steps)`` (``scale`` is
    typically the dimension's standard deviation over a dataset; 1 for a VAE's prior), or
    ``values`` when given. Raises :class:`ConfigError` for a dimension outside the latent.

    Example:
        >>> import torch
        >>> from reprlab.models import create_model
        >>> m = create_model("fc_ae", input_shape=(1, 8, 8), latent_dim=2)
        >>> traversal(m, torch.rand(1, 8, 8), dim=5)  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        reprlab.base.errors.ConfigError: cannot traverse dimension 5 of the 2-dim latent of fc_ae. Fix: ...
    """
    x = _one_image(model, image)
    with _Eval(model):
        z, code_shape = _encode(model, x)
        _check_dim(model, dim, int(z.shape[1]))
        if values is None:
            check_float("scale", scale, minimum=0.0, exclusive_min=True)
            vals = z[0, int(dim)].cpu() + float(scale) * _steps(n_steps, span)
        else:
            vals = torch.as_tensor(list(values), dtype=torch.float32)
            if vals.ndim != 1 or vals.numel() < 1 or not torch.isfinite(vals).all():
                raise ConfigError("values must be a non-empty list of finite numbers", fix="e.g. values=[-2, 0, 2]")
        zs = z.repeat(vals.numel(), 1)
        zs[:, int(dim)] = vals.to(zs.device, zs.dtype)
        images = _decode(model, zs, code_shape)
    return images, vals.numpy().astype(np.float64)


def traversal_grid(model: nn.Module, image: torch.Tensor, dims: tuple[int, int] = (0, 1), *, n_steps: int = 7,
                   span: float = 3.0, scale: Sequence[float] | float = 1.0) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """A 2-D sweep over dimensions ``dims = (i, j)``: ``n_steps x n_steps`` images, row-major.

    Row ``r`` varies dimension ``i``, column ``c`` dimension ``j``. Returns
    ``(images (n_steps**2, C, H, W), values_i, values_j)``.

    Example:
        >>> import torch
        >>> from reprlab.models import create_model
        >>> m = create_model("fc_ae", input_shape=(1, 8, 8), latent_dim=2)
        >>> traversal_grid(m, torch.rand(1, 8, 8), (0, 1), n_steps=3)[0].shape
        torch.Size([9, 1, 8, 8])
    """
    if not isinstance(dims, (tuple, list)) or len(dims) != 2:
        raise ConfigError(f"dims must be two latent dimensions, got {dims!r}", fix="e.g. dims=(0, 1)")
    i, j = dims
    scales = (float(scale), float(scale)) if isinstance(scale, (int, float)) else tuple(float(s) for s in scale)
    if len(scales) != 2:
        raise ConfigError(f"scale must be a number or two numbers, got {scale!r}", fix="e.g. scale=(1.0, 1.0)")
    x = _one_image(model, image)
    with _Eval(model):
        z, code_shape = _encode(model, x)
        size = int(z.shape[1])
        _check_dim(model, i, size)
        _check_dim(model, j, size)
        if int(i) == int(j):
            raise ConfigError(f"dims must be two different dimensions, got {dims!r}", fix="e.g. dims=(0, 1)")
        steps = _steps(n_steps, span)
        vi = z[0, int(i)].cpu() + scales[0] * steps
        vj = z[0, int(j)].cpu() + scales[1] * steps
        zs = z.repeat(len(steps) ** 2, 1)
        gi, gj = torch.meshgrid(vi, vj, indexing="ij")
        zs[:, int(i)] = gi.reshape(-1).to(zs.device)
        zs[:, int(j)] = gj.reshape(-1).to(zs.device)
        images = _decode(model, zs, code_shape)
    return images, vi.numpy().astype(np.float64), vj.numpy().astype(np.float64)


def interpolate(model: nn.Module, image_a: torch.Tensor, image_b: torch.Tensor, *, n_steps: int = 10) -> tuple[torch.Tensor, np.ndarray]:
    """Decode ``(1 - t) z_a + t z_b`` for ``n_steps`` values of ``t`` in ``[0, 1]``; returns ``(images, t)``.

    Example:
        >>> import torch
        >>> from reprlab.models import create_model
        >>> m = create_model("fc_ae", input_shape=(1, 8, 8), latent_dim=2)
        >>> interpolate(m, torch.rand(1, 8, 8), torch.rand(1, 8, 8), n_steps=4)[0].shape
        torch.Size([4, 1, 8, 8])
    """
    check_int("n_steps", n_steps, minimum=2, maximum=64)
    xa, xb = _one_image(model, image_a, "image_a"), _one_image(model, image_b, "image_b")
    with _Eval(model):
        z, code_shape = _encode(model, torch.cat([xa, xb]))
        t = torch.linspace(0.0, 1.0, int(n_steps), device=z.device)[:, None]
        images = _decode(model, (1 - t) * z[0:1] + t * z[1:2], code_shape)
    return images, t[:, 0].cpu().numpy().astype(np.float64)


def prior_samples(model: nn.Module, n: int = 64, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` images decoded from draws of a VAE's prior ``N(0, I)``, in ``[0, 1]``.

    Raises :class:`ModelError` for models without a prior (plain autoencoders).

    Example:
        >>> import torch
        >>> from reprlab.models import create_model
        >>> m = create_model("vae", input_shape=(1, 8, 8), latent_dim=2, arch="fc", hidden_sizes=[8])
        >>> prior_samples(m, 4, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([4, 1, 8, 8])
    """
    check_int("n", n, minimum=1, maximum=4096)
    name = getattr(model, "registry_name", type(model).__name__)
    if not getattr(model, "is_variational", False) or not callable(getattr(model, "sample", None)):
        raise ModelError(f"{name} is a plain autoencoder and has no prior to sample from",
                         fix="train a vae or beta_vae for prior samples; for an autoencoder use traversal or interpolation")
    with _Eval(model):
        x = model.sample(int(n), generator=generator)
    return from_model_range(x.float(), model).clamp(0.0, 1.0).cpu()


@dataclass
class RobustnessResult:
    """Decoder robustness to latent noise: per-scale reconstruction error and example images.

    ``mse[s]`` is the mean per-image MSE (images in [0, 1]) against the *inputs* when noise
    of scale ``scales[s]`` is added to the codes; ``mse_std`` its standard deviation over
    images; ``examples[s]`` the decoded images of the first ``k`` inputs.
    """

    scales: np.ndarray
    mse: np.ndarray
    mse_std: np.ndarray
    examples: torch.Tensor
    originals: torch.Tensor
    relative: bool = True
    code_std: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def rows(self) -> list[dict[str, float]]:
        """One dict per noise scale (for CSV/JSON)."""
        return [{"noise_scale": float(s), "mse": float(m), "mse_std": float(sd)}
                for s, m, sd in zip(self.scales, self.mse, self.mse_std)]


def latent_noise_robustness(model: nn.Module, images01: torch.Tensor, *,
                            scales: Sequence[float] = DEFAULT_NOISE_SCALES, relative: bool = True, k: int = 6,
                            batch_size: int = 256, generator: torch.Generator | None = None) -> RobustnessResult:
    """Add Gaussian noise of several scales to the codes of ``images01`` and decode.

    With ``relative`` (default) the noise on dimension ``i`` has standard deviation
    ``scale * std_i``, ``std_i`` being the spread of that dimension over ``images01`` — so
    models with differently scaled latents (autoencoder against VAE) are comparable; else
    it is ``scale`` in absolute units. Error is MSE against the inputs. ``generator`` seeds
    the noise (default: seed 0).

    Example:
        >>> import torch
        >>> from reprlab.models import create_model
        >>> m = create_model("fc_ae", input_shape=(1, 8, 8), latent_dim=2)
        >>> r = latent_noise_robustness(m, torch.rand(20, 1, 8, 8), scales=[0, 1], k=2)
        >>> r.mse.shape, r.examples.shape
        ((2,), torch.Size([2, 2, 1, 8, 8]))
    """
    x = torch.as_tensor(images01).float()
    if x.ndim != 4 or x.shape[0] < 2:
        raise DataError(f"images01 must be (N, C, H, W) with N >= 2, got shape {tuple(x.shape)}",
                        fix="pass a batch of at least two images in [0, 1]")
    scale_list = [float(s) for s in scales]
    if not scale_list:
        raise ConfigError("no noise scales given", fix="e.g. scales=[0, 0.25, 0.5, 1, 2]")
    for s in scale_list:
        check_float("noise scale", s, minimum=0.0)
    check_int("k", k, minimum=1)
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    with _Eval(model):
        codes, code_shape = [], None
        for start in range(0, x.shape[0], batch_size):
            z, code_shape = _encode(model, x[start:start + batch_size])
            codes.append(z.cpu())
        z_all = torch.cat(codes)
        std = z_all.std(dim=0) if relative else torch.ones(z_all.shape[1])
        noise = torch.randn(z_all.shape, generator=gen)
        mse, mse_std, examples = [], [], []
        for s in scale_list:
            zn = z_all + s * std * noise
            errs, ex = [], None
            for start in range(0, x.shape[0], batch_size):
                dec = _decode(model, zn[start:start + batch_size].to(_device(model)), code_shape)
                errs.append((dec - x[start:start + batch_size]).pow(2).flatten(1).mean(1).double())
                if ex is None:
                    ex = dec[:k]
            e = torch.cat(errs)
            mse.append(float(e.mean()))
            mse_std.append(float(e.std()) if e.numel() > 1 else 0.0)
            examples.append(ex)
    return RobustnessResult(scales=np.asarray(scale_list), mse=np.asarray(mse), mse_std=np.asarray(mse_std),
                            examples=torch.stack(examples), originals=x[:k].clone(), relative=relative,
                            code_std=std.numpy().astype(np.float64))
