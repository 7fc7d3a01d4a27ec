"""``simclr``: a contrastive, augmentation-invariant encoder (SimCLR, Chen et al. 2020).

Every training image is augmented twice; the encoder and a projection MLP map both views to
unit vectors, and the NT-Xent loss (normalised temperature-scaled cross-entropy) asks each
view to pick its partner out of the ``2N - 1`` other views of the batch (:func:`nt_xent`).
The codes learn what survives cropping, flipping, shifting and brightness/contrast changes
(the object's shape and class) and drop what does not (position, scale, exposure), which is
what a few-label classifier needs; a reconstruction code keeps all of it.

``encode(x)`` is the encoder's representation *before* the projection head, as in SimCLR
(the head's output is tuned to the augmentations and transfers worse), so ``classifier``
with ``encoder=simclr``, ``reprlab finetune RUN_DIR`` and every latent-space tool use it
unchanged; ``classifier`` drops the projection head and the decoder because ``encode``
does not use them.

Task: like ``rotnet``, the model has a small conv decoder trained on the **detached** code
(it never changes the encoder), so it is an ordinary reprlab autoencoder for the default
``reconstruct`` task: ``check_input``, the reconstruction metrics and figures, the analysis
and the run-directory tools all work without a new task. The loss is ``nt_xent +
recon_weight * mse``; the best checkpoint follows ``val/loss``. The validation views are
drawn from a fixed seed (:meth:`SimCLR.forward` in eval mode), so the validation loss of
every epoch is computed on the same pairs and compares models, not augmentation draws.

Augmentations (:func:`augment_views`) are hand-written torch ops because the project has no
torchvision (and its transforms work image by image on PIL images or tensors, with the global
RNG): one affine warp per image through ``F.affine_grid``/``F.grid_sample`` does the random
resized crop (area fraction in ``crop_scale``, aspect ratio in ``crop_ratio``), the
horizontal flip and a small translation at once, on the whole batch, from an explicit
``torch.Generator``; then brightness and contrast jitter and optional Gaussian noise. Pixels
outside the image are filled with the background (the range's low end). Training draws one
seed per step from the global RNG, which the engine seeds per epoch, so a run (and its
resume) replays the same augmentations.

Architecture (the encoder is ``rotnet``'s, which trains fast on a CPU): stage 0 is ``conv3x3
-> norm -> act`` at full resolution with ``channels[0]`` channels; every further entry of
``channels`` and a last stage with ``latent_dim`` channels each add ``conv3x3/stride 2 ->
norm -> act -> conv3x3 -> norm -> act``; global average pooling gives the ``latent_dim``
code. Projection head: ``linear(latent_dim, proj_hidden) -> BatchNorm -> ReLU ->
linear(proj_hidden, proj_dim)``.

Example:
    >>> import torch
    >>> from reprlab.models import create_model
    >>> m = create_model("simclr", input_shape=(1, 28, 28), latent_dim=16, channels=(8,), proj_dim=8)
    >>> out = m(torch.rand(4, 1, 28, 28))
    >>> sorted(out.terms), m.encode(torch.rand(3, 1, 28, 28)).shape
    (['loss', 'mse', 'nt_xent', 'pair_acc'], torch.Size([3, 16]))
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reprlab.base.errors import ConfigError, ModelError, TrainingError
from reprlab.models.base import (
    ModelConfig,
    ModelOutput,
    ReprModel,
    check_choice,
    check_float,
    check_int,
    images_of,
)
from reprlab.models.conv import plan_conv_stages
from reprlab.models.rotnet import code_decoder, pooled_conv_features
from reprlab.models.layers import (
    ACTIVATIONS,
    NORMS,
    check_channels,
    init_weights,
    output_activation,
)
from reprlab.models.registry import register_model

logger = logging.getLogger(__name__)

#: Seed of the fixed validation / evaluation views (eval mode, no generator given).
EVAL_VIEW_SEED = 12345


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, *, temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent loss of two views ``(N, D)``: view ``i`` must find view ``i + N`` among the other ``2N - 1``.

    The embeddings are L2-normalised; ``sim = z @ z.T / temperature`` with the self-similarity
    masked out, and the loss is the cross-entropy of each row's partner, averaged over the
    ``2N`` rows (Chen et al. 2020, eq. 1).

    Example:
        >>> z = torch.eye(4)
        >>> round(float(nt_xent(z[:2], z[:2], temperature=1.0)), 4)  # partners identical, others orthogonal
        0.5514
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ModelError(f"nt_xent needs two (N, D) views of the same shape, got {tuple(z1.shape)} and "
                         f"{tuple(z2.shape)}", fix="pass the projections of the two views of one batch")
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.t() / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


def _uniform(n: int, lo: float, hi: float, generator: torch.Generator | None, device: Any) -> torch.Tensor:
    return (torch.rand(n, generator=generator) * (hi - lo) + lo).to(device)


def augment_views(x: torch.Tensor, *, generator: torch.Generator | None = None, value_range: tuple[float, float] = (0.0, 1.0),
                  crop_scale: tuple[float, float] = (0.3, 1.0), crop_ratio: tuple[float, float] = (0.75, 4 / 3),
                  flip: float = 0.5, translate: float = 0.1, brightness: float = 0.4, contrast: float = 0.4,
                  noise_std: float = 0.0) -> torch.Tensor:
    """One random augmentation of every image of ``x`` ``(N, C, H, W)`` (values in ``value_range``).

    Random resized crop (a crop with ``crop_scale`` of the area and aspect ratio in
    ``crop_ratio``, scaled back to ``H x W``), horizontal flip with probability ``flip``,
    a shift of up to ``translate`` of the image size, brightness (``+ U(-b, b)`` of the range)
    and contrast (``x (1 + U(-c, c))`` about the image mean) jitter, Gaussian noise with
    ``noise_std`` (of the range); the result is clamped to ``value_range``. Every random
    number comes from ``generator`` (``None``: the global RNG).

    Example:
        >>> x = torch.rand(3, 1, 8, 8)
        >>> a = augment_views(x, generator=torch.Generator().manual_seed(0))
        >>> b = augment_views(x, generator=torch.Generator().manual_seed(0))
        >>> a.shape, torch.equal(a, b), float(a.min()) >= 0 and float(a.max()) <= 1
        (torch.Size([3, 1, 8, 8]), True, True)
    """
    n = x.shape[0]
    lo, hi = value_range
    span = hi - lo
    g, dev = generator, x.device
    area = _uniform(n, crop_scale[0], crop_scale[1], g, dev)
    log_r = _uniform(n, math.log(crop_ratio[0]), math.log(crop_ratio[1]), g, dev)
    ratio = torch.exp(log_r)  # width / height of the crop
    sx = torch.sqrt(area * ratio).clamp(max=1.0)  # crop width as a fraction of the image width
    sy = torch.sqrt(area / ratio).clamp(max=1.0)
    # the crop's centre: anywhere that keeps the crop inside the image, plus a small shift
    cx = (torch.rand(n, generator=g).to(dev) * 2 - 1) * (1 - sx) + _uniform(n, -2 * translate, 2 * translate, g, dev)
    cy = (torch.rand(n, generator=g).to(dev) * 2 - 1) * (1 - sy) + _uniform(n, -2 * translate, 2 * translate, g, dev)
    mirror = torch.where(torch.rand(n, generator=g).to(dev) < flip, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, device=dev, dtype=x.dtype)
    theta[:, 0, 0] = sx * mirror
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = sy
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x - lo, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + lo
    b = _uniform(n, -brightness, brightness, g, dev).view(n, 1, 1, 1) * span
    c = (1 + _uniform(n, -contrast, contrast, g, dev)).view(n, 1, 1, 1)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * c + mean + b
    if noise_std > 0:
        out = out + torch.randn(out.shape, generator=g).to(dev) * (noise_std * span)
    return out.clamp(lo, hi)


def _check_range(name: str, value: Any, *, low: float, high: float, low_open: bool) -> tuple[float, float]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ConfigError(f"{name} must be a pair [min, max], got {value!r}", fix=f"e.g. {name}=[{low if not low_open else 0.2}, {high}]")
    for i, v in enumerate(value):
        check_float(f"{name}[{i}]", v)
    a, b = float(value[0]), float(value[1])
    if not (a > low if low_open else a >= low) or b > high or a > b:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise ConfigError(f"{name}={[a, b]} must be a range min <= max inside {interval}",
                          fix=f"e.g. {name}=[{0.2 if low_open else low}, {high:g}]")
    return a, b


@dataclass
class SimCLRConfig(ModelConfig):
    """Options of ``simclr`` (see the module docstring).

    ``latent_dim``: size of the representation (``encode``); ``channels``: widths of the
    stages before the last; ``proj_hidden``/``proj_dim``: the projection MLP; ``temperature``
    (> 0) of NT-Xent; augmentations: ``crop_scale`` (area fraction range, in (0, 1]),
    ``crop_ratio`` (aspect ratio range, > 0), ``flip`` (probability), ``translate`` (fraction
    of the image size, in [0, 0.5]), ``brightness``, ``contrast`` (in [0, 1)), ``noise_std``;
    ``recon_weight`` (> 0): weight of the detached decoder's MSE.

    Example:
        >>> SimCLRConfig(input_shape=(1, 28, 28), crop_scale=[0.2, 1]).crop_scale
        (0.2, 1.0)
    """

    latent_dim: int = 128
    channels: tuple = (32, 64)
    proj_hidden: int = 128
    proj_dim: int = 64
    temperature: float = 0.5
    crop_scale: tuple = (0.3, 1.0)
    crop_ratio: tuple = (0.75, 4 / 3)
    flip: float = 0.5
    translate: float = 0.1
    brightness: float = 0.4
    contrast: float = 0.4
    noise_std: float = 0.0
    norm: str = "batch"
    activation: str = "relu"
    recon_weight: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.channels = check_channels("channels", self.channels)
        check_int("proj_hidden", self.proj_hidden, minimum=1)
        check_int("proj_dim", self.proj_dim, minimum=1)
        check_float("temperature", self.temperature, minimum=0, exclusive_min=True)
        self.crop_scale = _check_range("crop_scale", self.crop_scale, low=0.0, high=1.0, low_open=True)
        self.crop_ratio = _check_range("crop_ratio", self.crop_ratio, low=0.0, high=math.inf, low_open=True)
        check_float("flip", self.flip, minimum=0, maximum=1)
        check_float("translate", self.translate, minimum=0, maximum=0.5)
        check_float("brightness", self.brightness, minimum=0, maximum=1)
        check_float("contrast", self.contrast, minimum=0, maximum=1)
        if self.contrast >= 1:
            raise ConfigError(f"contrast={self.contrast} can scale an image's contrast to zero",
                              fix="use a contrast jitter in [0, 1), e.g. contrast=0.4")
        check_float("noise_std", self.noise_std, minimum=0)
        check_choice("norm", self.norm, NORMS)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_float("recon_weight", self.recon_weight, minimum=0, exclusive_min=True)
        if self.rotation_beta:
            raise ConfigError("simclr has its own self-supervision (two augmented views); rotation_beta is not used",
                              fix="set model.rotation_beta=0")
        plan_conv_stages(self.input_shape, self.channels)  # one halving per entry of channels: checks the input size

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["crop_scale"], d["crop_ratio"] = list(self.crop_scale), list(self.crop_ratio)
        return d


@register_model("simclr", config=SimCLRConfig)
class SimCLR(ReprModel):
    """Contrastive encoder (NT-Xent on two augmented views) with a projection head and a detached decoder.

    Example:
        >>> m = SimCLR(SimCLRConfig(input_shape=(1, 16, 16), latent_dim=8, channels=(4,), proj_dim=4))
        >>> m.encode(torch.rand(2, 1, 16, 16)).shape, m.reconstruct(torch.rand(2, 1, 16, 16)).shape
        (torch.Size([2, 8]), torch.Size([2, 1, 16, 16]))
    """

    config: SimCLRConfig

    def __init__(self, config: SimCLRConfig) -> None:
        super().__init__(config)
        c = config
        self.features = pooled_conv_features(c)
        self.projector = nn.Sequential(nn.Linear(c.latent_dim, c.proj_hidden), nn.BatchNorm1d(c.proj_hidden),
                                       nn.ReLU(inplace=True), nn.Linear(c.proj_hidden, c.proj_dim))
        self.from_latent, self.decoder = code_decoder(c)
        self.out_act = output_activation(c.output_range)
        self.code_size = int(c.latent_dim)
        init_weights(self, c.activation)

    # -- augmentations ----------------------------------------------------------------------
    def augment(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One augmented view of ``x`` with this model's augmentation options."""
        c = self.config
        return augment_views(x, generator=generator, value_range=self.output_range, crop_scale=c.crop_scale,
                             crop_ratio=c.crop_ratio, flip=c.flip, translate=c.translate, brightness=c.brightness,
                             contrast=c.contrast, noise_std=c.noise_std)

    def views(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Two independent augmentations of ``x`` (from ``generator``).

        Example:
            >>> m = SimCLR(SimCLRConfig(input_shape=(1, 8, 8), latent_dim=4, channels=(2,), proj_dim=2))
            >>> a, b = m.views(torch.rand(2, 1, 8, 8), torch.Generator().manual_seed(1))
            >>> a.shape, bool((a - b).abs().max() > 0)
            (torch.Size([2, 1, 8, 8]), True)
        """
        return self.augment(x, generator), self.augment(x, generator)

    # -- interface --------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The representation ``(N, latent_dim)``: global-average-pooled encoder features (before the head)."""
        return self.features(x).mean(dim=(2, 3))

    def project(self, h: torch.Tensor) -> torch.Tensor:
        """The projection head's output ``(N, proj_dim)`` (what NT-Xent compares)."""
        return self.projector(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images from codes, in the model's output range."""
        return self.out_act(self.decoder(self.from_latent(z)))

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> ModelOutput:
        """NT-Xent of two views of ``x`` plus the detached decoder's MSE.

        The views come from ``generator``; without one, training mode uses the global RNG
        and eval mode a generator seeded with :data:`EVAL_VIEW_SEED` (the same pairs every time).
        """
        n = x.shape[0]
        if n < 2:
            raise ModelError(f"simclr needs at least 2 images per batch (NT-Xent contrasts each image with the "
                             f"others), got {n}", fix="raise train.batch_size to 2 or more (SimCLR likes 128 or more)")
        if generator is None and not self.training:
            generator = torch.Generator().manual_seed(EVAL_VIEW_SEED)
        v1, v2 = self.views(x, generator)
        h = self.encode(torch.cat([v1, v2]))
        p = self.project(h)
        loss_c = nt_xent(p[:n], p[n:], temperature=self.config.temperature)
        with torch.no_grad():
            sim = F.normalize(p[:n], dim=1) @ F.normalize(p[n:], dim=1).t()
            pair_acc = (sim.argmax(1) == torch.arange(n, device=x.device)).float().mean()
        z = self.encode(x) if not self.training else h[:n]
        recon = self.decode(z.detach())
        target = x if not self.training else v1
        mse = F.mse_loss(recon, target)
        loss = loss_c + self.config.recon_weight * mse
        terms = {"loss": loss, "nt_xent": loss_c, "pair_acc": pair_acc, "mse": mse}
        return ModelOutput(loss=loss, terms=terms, reconstruction=recon, latent=z)

    def training_step(self, batch: Any, ctx: Any) -> dict[str, torch.Tensor]:
        """One step on two views of the batch; the views' seed is drawn from the (engine-seeded) global RNG."""
        x = images_of(batch)
        if x.shape[0] < 2:
            if getattr(ctx, "step_in_epoch", 0) == 0:
                raise TrainingError(f"simclr got a batch of {x.shape[0]} image(s); NT-Xent needs 2 or more",
                                    fix="raise train.batch_size to 2 or more")
            return {}  # a last batch of one image has no negatives: skipped
        seed = int(torch.randint(0, 2**62, (1,)).item())
        out = ctx.forward(x, torch.Generator().manual_seed(seed))
        ctx.step("main", out.loss)
        return {k: v.detach() for k, v in out.terms.items()}

    def sanity_check(self, x: torch.Tensor) -> None:
        """The base checks, after refusing batches of fewer than 2 images (NT-Xent needs negatives)."""
        if x.shape[0] < 2:
            raise ModelError(f"simclr needs batches of at least 2 images (NT-Xent contrasts each image with the "
                             f"others), but the first batch has {x.shape[0]}",
                             fix="raise train.batch_size to 2 or more (SimCLR likes 128 or more), or use more images")
        super().sanity_check(x)
