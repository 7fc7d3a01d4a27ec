"""Reconstruction quality of a trained model: per-image MSE, L1, PSNR, SSIM (and ELBO/KL).

All metrics are computed on images in ``[0, 1]`` (models working in ``(-1, 1)`` are fed
``x * 2 - 1`` and their output is mapped back and clamped), so scores of models trained
with different output ranges are comparable.

Example:
    >>> import torch
    >>> x = torch.rand(2, 1, 16, 16)
    >>> m = per_image_metrics(x, x)
    >>> [round(float(v), 3) for v in m["mse"]], [round(float(v), 3) for v in m["ssim"]]
    ([0.0, 0.0], [1.0, 1.0])
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchmetrics.functional.image import structural_similarity_index_measure

from reprlab.models.base import _model_range, from_model_range, to_model_range  # noqa: F401  (re-exported)

from reprlab.data.dataset import ImageData
from reprlab.base.errors import ConfigError, DataError, ModelError
from reprlab.base.io import atomic_write

logger = logging.getLogger(__name__)

__all__ = [
    "ReconstructionReport",
    "evaluate_reconstruction",
    "per_image_metrics",
    "reconstruct01",
    "to_model_range",
    "from_model_range",
]

METRIC_NAMES: tuple[str, ...] = ("mse", "l1", "psnr", "ssim")
VARIATIONAL_NAMES: tuple[str, ...] = ("elbo_nats", "kl")
MSE_FLOOR = 1e-10  # PSNR is capped at 10*log10(1/1e-10) = 100 dB for perfect reconstructions
SSIM_KERNEL = 11
SSIM_SIGMA = 1.5

# (extras key with per-image values, terms key with the batch mean) for each variational score
_VARIATIONAL_SOURCES: dict[str, tuple[str, str]] = {
    "elbo_nats": ("elbo_per_image", "elbo"),
    "kl": ("kl_per_image", "kl"),
}


# ----------------------------------------------------------------------------------------
# metrics
# ----------------------------------------------------------------------------------------
def _ssim_kernel(height: int, width: int) -> tuple[int, float]:
    """Gaussian window ``(size, sigma)`` for SSIM: 11/1.5, or smaller for tiny images.

    torchmetrics derives the window size from sigma (``2 * int(3.5 sigma + 0.5) + 1``) and
    reflect-pads by half of it, which fails for images narrower than the window. For such
    images we use the largest odd size that fits and shrink sigma proportionally
    (``sigma = 1.5 * size / 11``), which reproduces that size exactly.
    """
    side = min(height, width)
    if side >= SSIM_KERNEL:
        return SSIM_KERNEL, SSIM_SIGMA
    size = side if side % 2 == 1 else side - 1
    size = max(size, 1)
    return size, SSIM_SIGMA * size / SSIM_KERNEL


_warned_small_ssim: set[tuple[int, int]] = set()


def per_image_metrics(x01: torch.Tensor, xhat01: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image ``mse``, ``l1`` (means per pixel), ``psnr`` (dB, data range 1) and ``ssim``.

    ``x01`` and ``xhat01`` are ``(N, C, H, W)`` tensors in ``[0, 1]``. MSE is floored at
    1e-10 for PSNR, so identical images score 100 dB. SSIM is torchmetrics' gaussian
    SSIM (window 11, sigma 1.5, data range 1) averaged over pixels and channels; images
    smaller than 11 px use a smaller odd window (logged once per size). Returns float64
    CPU tensors of shape ``(N,)``.

    Example:
        >>> import torch
        >>> x = torch.zeros(1, 1, 8, 8); y = x + 0.1
        >>> m = per_image_metrics(x, y)
        >>> round(float(m["mse"][0]), 6), round(float(m["psnr"][0]), 3)
        (0.01, 20.0)
    """
    if not isinstance(x01, torch.Tensor) or not isinstance(xhat01, torch.Tensor):
        raise DataError("per_image_metrics expects two torch tensors",
                        fix="pass images as torch tensors of shape (N, C, H, W) in [0, 1]")
    if x01.ndim != 4 or x01.shape != xhat01.shape:
        raise DataError(f"per_image_metrics expects two (N, C, H, W) tensors of equal shape, got "
                        f"{tuple(x01.shape)} and {tuple(xhat01.shape)}",
                        fix="pass originals and reconstructions of the same shape")
    x = x01.float()
    y = xhat01.float().to(x.device)
    diff = (y.double() - x.double()).flatten(1)
    mse = diff.pow(2).mean(1)
    l1 = diff.abs().mean(1)
    psnr = 10.0 * torch.log10(1.0 / mse.clamp_min(MSE_FLOOR))

    height, width = int(x.shape[-2]), int(x.shape[-1])
    size, sigma = _ssim_kernel(height, width)
    if size != SSIM_KERNEL and (height, width) not in _warned_small_ssim:
        _warned_small_ssim.add((height, width))
        logger.info("images of %dx%d px are smaller than the standard 11 px SSIM window; "
                    "using a %d px gaussian window (sigma %.3g) instead", height, width, size, sigma)
    ssim = structural_similarity_index_measure(
        y, x, gaussian_kernel=True, sigma=sigma, kernel_size=size, data_range=1.0, reduction="none")
    return {
        "mse": mse.cpu(),
        "l1": l1.cpu(),
        "psnr": psnr.cpu(),
        "ssim": ssim.reshape(-1).double().cpu(),
    }


# ----------------------------------------------------------------------------------------
# range mapping and reconstruction
# ----------------------------------------------------------------------------------------
def _model_name(model: nn.Module) -> str:
    name = getattr(model, "registry_name", "?")
    return model.__class__.__name__ if name in (None, "?") else str(name)


def _check_tensor(t: torch.Tensor, what: str, model: nn.Module, start: int, stop: int) -> None:
    """Raise :class:`ModelError` for float64 or non-finite model outputs."""
    where = f"{_model_name(model)}: {what} for images {start}..{stop - 1}"
    if not isinstance(t, torch.Tensor):
        raise ModelError(f"{where} is a {type(t).__name__}, not a tensor",
                         fix="this is a model bug; the model must return torch tensors")
    if t.dtype == torch.float64:
        raise ModelError(f"{where} is float64 but reprlab works in float32",
                         fix="keep the model in float32 (do not call model.double()) and return float32 tensors")
    if not t.is_floating_point():
        raise ModelError(f"{where} has dtype {t.dtype}, expected a float tensor",
                         fix="this is a model bug; return float32 values")
    if not torch.isfinite(t).all():
        bad = int((~torch.isfinite(t)).reshape(t.shape[0], -1).any(1).sum()) if t.ndim else 1
        raise ModelError(f"{where} contains NaN or infinite values ({bad} image(s) affected)",
                         fix="the model has diverged or its checkpoint is corrupt; retrain with a lower "
                             "learning rate or load an earlier checkpoint")


def _reconstruct_batch(model: nn.Module, xm: torch.Tensor, x01: torch.Tensor, start: int) -> torch.Tensor:
    """Reconstruct a model-range batch, check it, and return it in ``[0, 1]`` (clamped)."""
    stop = start + int(xm.shape[0])
    xhat = model.reconstruct(xm)
    _check_tensor(xhat, "the reconstruction", model, start, stop)
    if tuple(xhat.shape) != tuple(x01.shape):
        raise ModelError(f"{_model_name(model)} reconstructs shape {tuple(xhat.shape[1:])} from input "
                         f"{tuple(x01.shape[1:])}",
                         fix="evaluate on data of the shape the model was trained on (see data.resize)")
    return from_model_range(xhat.float(), model).clamp_(0.0, 1.0)


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def reconstruct01(model: nn.Module, x01: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """Deterministic reconstructions in ``[0, 1]`` of images ``x01`` (``(N, C, H, W)`` in ``[0, 1]``).

    Maps to and from the model's output range, runs in eval mode without gradients on the
    model's device (restoring its train/eval mode afterwards) and returns a float32 CPU
    tensor. Raises :class:`ModelError` for float64 or NaN outputs.

    Example:
        >>> import torch
        >>> from reprlab.models import create_model
        >>> m = create_model("fc_ae", input_shape=(1, 8, 8), latent_dim=2)
        >>> reconstruct01(m, torch.rand(3, 1, 8, 8)).shape
        torch.Size([3, 1, 8, 8])
    """
    _check_batch_size(batch_size)
    device = _model_device(model)
    was_training = model.training
    model.eval()
    parts = []
    try:
        with torch.no_grad():
            for start in range(0, int(x01.shape[0]), batch_size):
                xb = x01[start:start + batch_size].float().to(device)
                parts.append(_reconstruct_batch(model, to_model_range(xb, model), xb, start).cpu())
    finally:
        model.train(was_training)
    if not parts:
        return x01.float().clone()
    return torch.cat(parts)


def _check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}",
                          fix="e.g. batch_size=256")


# ----------------------------------------------------------------------------------------
# report
# ----------------------------------------------------------------------------------------
@dataclass
class ReconstructionReport:
    """Per-image reconstruction scores and their means.

    ``per_image`` maps metric names (``mse``, ``l1``, ``psnr``, ``ssim`` and, for VAEs whose
    forward provides per-image values, ``elbo_nats``, ``kl``) to float64 arrays aligned
    with ``indices`` (the dataset indices evaluated). ``summary`` holds the mean of each.

    Example:
        >>> import numpy as np
        >>> r = ReconstructionReport({"mse": 0.2}, {"mse": np.array([0.3, 0.1])}, np.array([5, 7]))
        >>> r.best(1).tolist(), r.worst(1).tolist(), r.prefixed("test")
        ([7], [5], {'test/mse': 0.2})
    """

    summary: dict[str, float]
    per_image: dict[str, np.ndarray]
    indices: np.ndarray
    labels: np.ndarray | None = None
    model_name: str = ""
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(len(self.indices))

    def _order(self, metric: str) -> np.ndarray:
        if metric not in self.per_image:
            raise ConfigError(f"no per-image metric {metric!r} in this report "
                              f"(available: {', '.join(sorted(self.per_image))})",
                              fix=f"use one of {', '.join(sorted(self.per_image))}")
        return np.argsort(self.per_image[metric], kind="stable")

    def best(self, k: int, metric: str = "mse") -> np.ndarray:
        """Dataset indices of the ``k`` lowest-``metric`` images (lowest MSE first)."""
        return self.indices[self._order(metric)[:max(int(k), 0)]]

    def worst(self, k: int, metric: str = "mse") -> np.ndarray:
        """Dataset indices of the ``k`` highest-``metric`` images (highest MSE first)."""
        order = self._order(metric)[::-1]
        return self.indices[order[:max(int(k), 0)]]

    def scores(self, index: int) -> dict[str, float]:
        """All per-image scores of dataset index ``index``."""
        hits = np.flatnonzero(self.indices == int(index))
        if hits.size == 0:
            raise ConfigError(f"dataset index {index} was not evaluated in this report",
                              fix=f"choose one of the {len(self)} evaluated indices")
        pos = int(hits[0])
        return {k: float(v[pos]) for k, v in self.per_image.items()}

    def prefixed(self, prefix: str) -> dict[str, float]:
        """Summary with keys ``f"{prefix}/{name}"``, e.g. ``{"test/mse": ...}``."""
        prefix = prefix.rstrip("/")
        return {f"{prefix}/{k}": float(v) for k, v in self.summary.items()}

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Atomically write one row per image: ``index``, ``label`` (if any), then the metrics."""
        metrics = list(self.per_image)
        header = ["index"] + (["label"] if self.labels is not None else []) + metrics

        def write(tmp: str) -> None:
            with open(tmp, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(header)
                for i in range(len(self.indices)):
                    row: list = [int(self.indices[i])]
                    if self.labels is not None:
                        row.append(int(self.labels[i]))
                    row.extend(repr(float(self.per_image[m][i])) for m in metrics)
                    w.writerow(row)

        return atomic_write(path, write)


# ----------------------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------------------
def _variational_batch(model: nn.Module, xm: torch.Tensor, start: int) -> dict[str, tuple[torch.Tensor, bool]]:
    """``{name: (values, per_image)}`` for ELBO/KL from one forward pass."""
    stop = start + int(xm.shape[0])
    out = model(xm)
    extras = getattr(out, "extras", None) or {}
    terms = getattr(out, "terms", None) or {}
    found: dict[str, tuple[torch.Tensor, bool]] = {}
    for name, (extra_key, term_key) in _VARIATIONAL_SOURCES.items():
        if extra_key in extras:
            value = extras[extra_key]
            _check_tensor(value, f"extras[{extra_key!r}]", model, start, stop)
            if value.numel() != xm.shape[0]:
                raise ModelError(f"{_model_name(model)}: extras[{extra_key!r}] has shape {tuple(value.shape)} "
                                 f"for a batch of {xm.shape[0]} images",
                                 fix="this is a model bug; per-image extras must have shape (batch,)")
            found[name] = (value.detach().reshape(-1).double().cpu(), True)
        elif term_key in terms:
            value = terms[term_key]
            _check_tensor(value.reshape(1), f"terms[{term_key!r}]", model, start, stop)
            found[name] = (value.detach().double().mean().cpu(), False)
    return found


def evaluate_reconstruction(model: nn.Module, data: ImageData, *, batch_size: int = 256,
                            device: str | torch.device = "cpu",
                            max_images: int | None = None) -> ReconstructionReport:
    """Score the model's deterministic reconstructions of ``data`` image by image.

    The model is moved to ``device`` and run in eval mode without gradients (its previous
    train/eval mode is restored). Images are mapped to the model's range, reconstructed with
    ``model.reconstruct``, mapped back to ``[0, 1]`` and clamped, then scored with
    :func:`per_image_metrics`. For variational models, ``model(x)`` additionally gives
    ``elbo_nats`` and ``kl`` (nats per image): per image from ``out.extras["elbo_per_image"]``
    / ``["kl_per_image"]`` when present, otherwise only in the summary as the
    batch-size-weighted mean of ``out.terms["elbo"]`` / ``["kl"]``. ``max_images`` limits
    the evaluation to the first images of ``data``.

    Raises :class:`ModelError` when a batch's output is float64, NaN/inf, or mis-shaped.

    Example:
        >>> import torch
        >>> from reprlab.data.dataset import ImageData
        >>> from reprlab.models import create_model
        >>> m = create_model("fc_ae", input_shape=(1, 8, 8), latent_dim=2)
        >>> rep = evaluate_reconstruction(m, ImageData(torch.rand(10, 1, 8, 8)), batch_size=4)
        >>> sorted(rep.summary), len(rep)
        (['l1', 'mse', 'psnr', 'ssim'], 10)
    """
    if not isinstance(data, ImageData):
        raise DataError(f"evaluate_reconstruction expects an ImageData, got {type(data).__name__}",
                        fix="wrap images with reprlab.data.dataset.ImageData(images, labels)")
    _check_batch_size(batch_size)
    if max_images is not None and (isinstance(max_images, bool) or not isinstance(max_images, int)
                                   or max_images < 1):
        raise ConfigError(f"max_images must be a positive integer or None, got {max_images!r}",
                          fix="e.g. max_images=1000, or None for all images")
    config = getattr(model, "config", None)
    expected = getattr(config, "input_shape", None)
    if expected is not None and tuple(expected) != tuple(data.shape):
        raise ModelError(f"{_model_name(model)} was built for images of shape {tuple(expected)} but "
                         f"{data.name} has shape {tuple(data.shape)}",
                         fix="evaluate on data prepared like the training data (same data.resize / channels)")

    n = len(data) if max_images is None else min(len(data), max_images)
    variational = bool(getattr(model, "is_variational", False))
    device = torch.device(device)
    model.to(device)
    was_training = model.training
    model.eval()

    metric_parts: dict[str, list[torch.Tensor]] = {k: [] for k in METRIC_NAMES}
    var_parts: dict[str, list[torch.Tensor]] = {k: [] for k in VARIATIONAL_NAMES}
    var_sum = {k: 0.0 for k in VARIATIONAL_NAMES}
    var_count = {k: 0 for k in VARIATIONAL_NAMES}
    var_per_image = {k: True for k in VARIATIONAL_NAMES}
    try:
        with torch.no_grad():
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)
                x01 = data.float01(slice(start, stop)).to(device)
                xm = to_model_range(x01, model)
                xhat01 = _reconstruct_batch(model, xm, x01, start)
                for k, v in per_image_metrics(x01, xhat01).items():
                    metric_parts[k].append(v)
                if variational:
                    got = _variational_batch(model, xm, start)
                    for k in VARIATIONAL_NAMES:
                        if k not in got:
                            var_per_image[k] = False
                            continue
                        value, is_per_image = got[k]
                        var_sum[k] += float(value.sum()) if is_per_image else float(value) * (stop - start)
                        var_count[k] += stop - start
                        if is_per_image:
                            var_parts[k].append(value)
                        else:
                            var_per_image[k] = False
    finally:
        model.train(was_training)

    per_image = {k: torch.cat(v).numpy().astype(np.float64) for k, v in metric_parts.items()}
    summary = {k: float(v.mean()) for k, v in per_image.items()}
    if variational:
        for k in VARIATIONAL_NAMES:
            if var_count[k] == 0:
                logger.warning("%s is variational but its forward gives neither extras['%s'] nor terms['%s']; "
                               "'%s' is not reported", _model_name(model), _VARIATIONAL_SOURCES[k][0],
                               _VARIATIONAL_SOURCES[k][1], k)
                continue
            summary[k] = var_sum[k] / var_count[k]
            if var_per_image[k] and var_count[k] == n:
                per_image[k] = torch.cat(var_parts[k]).numpy().astype(np.float64)
            else:
                logger.info("%s: no per-image '%s' (extras['%s'] missing); summary uses the weighted mean "
                            "of batch means", _model_name(model), k, _VARIATIONAL_SOURCES[k][0])

    labels = None if data.labels is None else data.labels[:n].cpu().numpy().astype(np.int64)
    report = ReconstructionReport(summary=summary, per_image=per_image,
                                  indices=np.arange(n, dtype=np.int64), labels=labels,
                                  model_name=_model_name(model),
                                  meta={"dataset": data.name, "n_images": n, "output_range": _model_range(model)})
    logger.info("reconstruction of %d %s images: %s", n, data.name,
                ", ".join(f"{k}={v:.4g}" for k, v in summary.items()))
    return report
