"""``pixelda``: pixel-level domain adaptation with a GAN (Bousmalis et al. 2017, CVPR, "PixelDA").

A **generator** ``G(x_s, z)`` turns a labelled source image into a target-style image; a
**discriminator** ``D`` tells real target images from translated ones; a **task classifier**
``T`` learns the labels on the translated images (and on the source images), so it works on
target-style images: at test time ``T`` classifies real target images (``logits``).

Built after the paper and eriklindernoren/PyTorch-GAN's ``implementations/pixelda/pixelda.py``:

* generator: the noise ``z ~ U(-1, 1)`` of ``noise_dim`` (10) entries goes through a dense
  layer to one ``H x W`` plane per image channel, concatenated to the image (``2C`` channels)
  -> conv 3x3, ``gen_channels`` (64) -> ReLU -> ``gen_blocks`` (6) residual blocks (conv 3x3 ->
  BatchNorm -> ReLU -> conv 3x3 -> BatchNorm, plus the skip) -> conv 3x3 to ``C`` channels -> tanh;
* discriminator: ``disc_blocks`` (4) stride-2 conv 3x3 blocks (``disc_channels`` = 64,
  doubling up to 512) with LeakyReLU(0.2) and InstanceNorm (not after the first) -> a conv 3x3
  to one channel: a map of patch scores (``patch=True``, PyTorch-GAN's PatchGAN; H/16 x W/16
  for 4 blocks) or, with ``patch=False``, a dense layer to one score per image. Optional
  ``instance_noise``: Gaussian noise of that std added to every discriminator input;
* task classifier: the paper's MNIST -> MNIST-M classifier, i.e. the DANN ``mnist`` network
  (conv 5x5 32 -> ReLU -> max-pool -> conv 5x5 48 -> ReLU -> max-pool -> fc 100 -> fc 100 ->
  fc ``num_classes``), or another DANN preset (``task_preset``). ``features`` is its
  penultimate layer.

Losses (PyTorch-GAN's defaults): ``adv_loss="lsgan"`` (least squares: ``D`` regresses 1 on
target images and 0 on translations; the paper uses the standard GAN log loss, available as
``"bce"``); generator objective ``adv_weight * adv + task_weight * task + content_weight *
content`` with ``adv_weight=1``, ``task_weight=0.1`` and the task loss ``(CE(T(G(x_s))) +
source_task_weight * CE(T(x_s))) / (1 + source_task_weight)`` (PyTorch-GAN's mean of the two
for ``source_task_weight=1``); the discriminator minimises the mean of its real and fake
losses. ``content_weight > 0`` adds the paper's content-similarity loss, here without
foreground masks: the pairwise mean squared error ``PMSE(x, G(x)) = mean(d^2) - mean(d)^2``
per image (``d = x - G(x)``), which lets the generator shift the overall colour but keeps the
shapes.

``gen_warp="affine"`` puts a spatial transformer (Jaderberg et al. 2015) in front of the generator's
residual blocks: a small localisation network (two stride-2 convolutions, a 4x4 average pool, a dense
layer, initialised to the identity) predicts one affine warp per image, bounded to ``I + warp_bound *
tanh(.)`` entry by entry (so no flip or half turn, which could change a 6 into a 9), and the image is
resampled with it (``grid_sample``, border padding) before the pixel-level blocks. The residual blocks
see only a few pixels around each one, so they cannot resize or move a digit; between two grey digit
datasets that is most of the shift (USPS digits fill the frame, MNIST's sit inside a 4-pixel margin),
and without the warp the generator paints strokes of larger digits over the source digit instead,
which can change its class. The content loss then compares the output with the *warped* image, so it
keeps the shapes but lets the warp move and scale them. Logged as ``warp_scale`` (the mean
``sqrt(|det A|)`` of the warps' linear parts: below 1 enlarges the digit, above 1 shrinks it). Off by
default (``"none"``, the paper's generator); an addition to the paper, named in tables.

``feature_weight > 0`` adds a **feature-level** adversarial loss on top of the paper's pixel-level
one, as CyCADA (Hoffman et al. 2018) does: a domain classifier (the task preset's DANN domain
head) sees the task classifier's features through a gradient-reversal layer and learns to tell
source and translated images (domain 0) from target images (domain 1); the task classifier
learns features it cannot tell apart. Its loss, the mean of the two sides' BCE, enters the
generator objective with the task loss's weight (``task_weight``), so against the task loss it
weighs as DANN's domain loss against its class loss; the reversal weight follows DANN's schedule
``feature_weight * (2 / (1 + exp(-feature_gamma * p)) - 1)``. The target batch then also goes
through the task classifier (its batch norm sees both domains, as DANN's does). ``feature_source``
chooses the domain classifier's source side: ``both`` (translated and source images, the default),
``source`` (the source images only, as in DANN) or ``translated`` (as in CyCADA). Off by default:
``feature_weight=0`` is the paper's PixelDA. Tables name the variant ("PixelDA + feature
alignment"): it is a hybrid of PixelDA and DANN, not the paper's method.

``target_weight > 0`` adds **self-training on the target images** (FixMatch, Sohn et al. 2020, as
:mod:`reprlab.models.semisup` does for few labels): at every step the task classifier predicts the target
batch without gradient; where its most likely class has a probability of at least ``target_confidence``
(0.95) that class becomes a pseudo-label, and a strongly augmented view of the same image
(:func:`reprlab.models.semisup.strong_view` with ``target_augment`` over :data:`TARGET_AUGMENT_DEFAULTS`:
no flip, which would turn digits into other shapes, and crops of at least 60% of the area, which keep the
digit) must predict it. The cross-entropy over the confident images, averaged over the whole target batch,
enters the objective as ``task_weight * target_weight * target_loss``, so it weighs against the task loss
as FixMatch's unlabelled term weighs against its supervised one. No target label is read. Logged as
``target_loss`` and ``target_mask_rate`` (the share of target images confident enough to teach). Off by
default; an addition to the paper ("PixelDA + self-training" in tables). On MNIST -> MNIST-M it fell 0.4 to 1.1
points behind the runs without it by epoch 6 on each of three seeds (BENCHMARKS.md, "Self-training on the target
images inside PixelDA").

``classifier_annealing=True`` anneals the ``classifier`` group's learning rate as DANN does, by
``1 / (1 + 10 p) ** 0.75`` at every step (``p`` the training progress); with
``train.groups.classifier.optimizer=sgd`` and ``lr`` 0.1 (the loss carries ``task_weight`` 0.1) the task
classifier then trains as DANN's network does. Off by default (the paper keeps Adam's rate constant).

Three parameter groups, each declared as Adam lr 2e-4, betas (0.5, 0.999) (PyTorch-GAN's):
``generator``, ``classifier`` (the task classifier and the feature-level domain classifier) and
``discriminator``; ``train.groups.NAME.*`` overrides them (for example
``train.groups.classifier.optimizer=sgd``). The generator and the classifier minimise one
objective and step together from one backward pass, as in the paper (with the same settings
Adam treats them as one group would); each step updates them first and then the discriminator
on the same translations (PyTorch-GAN's order).

Inputs in [-1, 1] (``data.scale=-1_1``; the generator's output is tanh). Logged terms: ``loss``
(generator objective + discriminator loss), ``class_loss`` (the task loss), ``acc`` (``T`` on
the translated source batch), ``source_acc`` (``T`` on the source batch), ``d_loss``,
``g_adv_loss``, ``d_real`` / ``d_fake`` (with ``bce`` the mean sigmoid of ``D`` on target /
translated images; with ``lsgan`` the mean patch score, whose targets are 1 and 0), and
``content_loss`` when it is on; ``domain_loss``, ``domain_acc`` and ``lambda`` with feature alignment.

Example:
    >>> import torch
    >>> from reprlab.models import create_model
    >>> m = create_model("pixelda", input_shape=(3, 32, 32), gen_blocks=1, gen_channels=8, disc_channels=8)
    >>> x = torch.rand(2, 3, 32, 32) * 2 - 1
    >>> m.translate(x).shape, m.logits(x).shape, m.features(x).shape
    (torch.Size([2, 3, 32, 32]), torch.Size([2, 10]), torch.Size([2, 100]))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reprlab.base.errors import ConfigError, ModelError, TrainingError
from reprlab.models.base import ModelConfig, ParamGroup, ReprModel, check_choice, check_float, check_int, images_of
from reprlab.models.dann import (DANN, PRESET_SPECS, PRESETS, domain_head, feature_extractor, ganin_lambda,
                                 grad_reverse, mlp, needs_target_error)
from reprlab.models.registry import register_model
from reprlab.models.resnet18 import ClassifierMixin, classification_terms
from reprlab.models.semisup import check_strong_augment, pseudo_labels, strong_view

ADV_LOSSES: tuple[str, ...] = ("lsgan", "bce")
#: The images on the source side of the feature-level domain classifier (``feature_source``).
FEATURE_SOURCES: tuple[str, ...] = ("both", "source", "translated")

#: The generator's geometric stage (``gen_warp``): none (the paper's) or a bounded affine spatial transformer.
GEN_WARPS: tuple[str, ...] = ("none", "affine")

#: The strong view of a target image for self-training (``target_weight``), under ``model.target_augment``:
#: :data:`reprlab.models.semisup.STRONG_AUGMENT_DEFAULTS` without the flip (a mirrored 2, 3, 4, 5, 7 or 9 is no
#: digit) and with crops of 60 to 100% of the area (smaller ones cut a digit filling a 32x32 frame).
TARGET_AUGMENT_DEFAULTS: dict[str, Any] = {"flip": 0.0, "crop_scale": (0.6, 1.0)}

#: What both groups declare (PyTorch-GAN's pixelda: Adam, lr 2e-4, betas (0.5, 0.999)).
PIXELDA_OPTIMIZER: dict[str, Any] = {"optimizer": "adam", "lr": 2e-4, "betas": (0.5, 0.999)}


@dataclass
class PixelDAConfig(ModelConfig):
    """Options of ``pixelda`` (see the module docstring).

    ``output_range`` must be ``"-1_1"`` (tanh generator; ``data.scale=-1_1``). ``latent_dim``
    is not used (``noise_dim`` is the noise size).

    Example:
        >>> PixelDAConfig().noise_dim, PixelDAConfig().adv_loss
        (10, 'lsgan')
    """

    input_shape: tuple[int, int, int] = (3, 32, 32)
    output_range: str = "-1_1"
    num_classes: int = 10
    noise_dim: int = 10
    gen_channels: int = 64
    gen_blocks: int = 6
    disc_channels: int = 64
    disc_blocks: int = 4
    patch: bool = True
    instance_noise: float = 0.0
    adv_loss: str = "lsgan"
    adv_weight: float = 1.0
    task_weight: float = 0.1
    source_task_weight: float = 1.0
    content_weight: float = 0.0
    feature_weight: float = 0.0
    feature_gamma: float = 10.0
    classifier_annealing: bool = False
    feature_source: str = "both"
    task_preset: str = "mnist"
    dropout: float | None = None
    gen_warp: str = "none"
    warp_bound: float = 0.5
    target_weight: float = 0.0
    target_confidence: float = 0.95
    target_augment: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.output_range != "-1_1":
            raise ConfigError(f"pixelda's generator has a tanh output in [-1, 1], but output_range="
                              f"{self.output_range!r} (data.scale={self.output_range})",
                              fix="set data.scale=-1_1 for pixelda runs")
        super().__post_init__()
        check_int("num_classes", self.num_classes, minimum=2)
        for name in ("noise_dim", "gen_channels", "disc_channels", "disc_blocks"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("gen_blocks", self.gen_blocks, minimum=0)
        for name in ("patch", "classifier_annealing"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}",
                                  fix=f"set model.{name}=true or false")
        check_float("instance_noise", self.instance_noise, minimum=0.0, maximum=2.0)
        check_choice("adv_loss", self.adv_loss, ADV_LOSSES)
        check_choice("feature_source", self.feature_source, FEATURE_SOURCES)
        check_choice("gen_warp", self.gen_warp, GEN_WARPS)
        check_float("warp_bound", self.warp_bound, minimum=0.0, maximum=0.9, exclusive_min=True)
        for name in ("adv_weight", "task_weight", "source_task_weight", "content_weight", "feature_weight"):
            check_float(name, getattr(self, name), minimum=0.0)
        check_float("feature_gamma", self.feature_gamma, minimum=0.0, exclusive_min=True)
        check_float("target_weight", self.target_weight, minimum=0.0)
        check_float("target_confidence", self.target_confidence, minimum=0.0, maximum=1.0, exclusive_min=True)
        try:
            self.target_augment = check_strong_augment(self.target_augment)
        except ValueError as exc:
            raise ConfigError(f"model.target_augment: {exc}",
                              fix="e.g. target_augment={crop_scale: [0.6, 1], cutout: 0.3}, or drop it for the "
                                  "defaults") from None
        if self.task_weight == 0:
            raise ConfigError("task_weight=0 leaves the task classifier untrained (logits would be random)",
                              fix="set model.task_weight > 0 (PyTorch-GAN uses 0.1)")
        check_choice("task_preset", self.task_preset, PRESETS)
        if self.dropout is not None:
            check_float("dropout", self.dropout, minimum=0.0, maximum=1.0)
            if self.dropout >= 1:
                raise ConfigError(f"dropout={self.dropout} drops every feature", fix="use a dropout in [0, 1)")
        if self.rotation_beta:
            raise ConfigError("pixelda has no rotation self-supervision", fix="set model.rotation_beta=0")


class ResBlock(nn.Module):
    """conv 3x3 -> BN -> ReLU -> conv 3x3 -> BN, plus the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
                                   nn.Conv2d(channels, channels, 3, 1, 1), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class AffineWarp(nn.Module):
    """A spatial transformer: one bounded affine warp per image, predicted from the image.

    Written here because PyTorch has the sampling (``affine_grid`` / ``grid_sample``) but no
    localisation network; this one is two stride-2 convolutions, a 4x4 average pool and a dense
    layer whose zero initialisation starts every warp at the identity. Each entry of the 2x3 matrix
    stays within ``bound`` of the identity's (``tanh``), so a warp can move, scale and shear a digit
    but not flip or turn it over.

    Example:
        >>> warp = AffineWarp(1, 0.5)
        >>> x = torch.rand(2, 1, 28, 28)
        >>> torch.allclose(warp(x), x, atol=1e-5), warp.theta(x).shape
        (True, torch.Size([2, 2, 3]))
    """

    def __init__(self, channels: int, bound: float) -> None:
        super().__init__()
        self.bound = float(bound)
        self.loc = nn.Sequential(nn.Conv2d(channels, 8, 5, 2, 2), nn.ReLU(inplace=True),
                                 nn.Conv2d(8, 16, 5, 2, 2), nn.ReLU(inplace=True),
                                 nn.AdaptiveAvgPool2d(4), nn.Flatten(1), nn.Linear(256, 32), nn.ReLU(inplace=True),
                                 nn.Linear(32, 6))
        nn.init.zeros_(self.loc[-1].weight)
        nn.init.zeros_(self.loc[-1].bias)
        self.register_buffer("identity", torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), persistent=False)

    def theta(self, x: torch.Tensor) -> torch.Tensor:
        """The warps ``(N, 2, 3)`` (output to input coordinates, as ``affine_grid`` takes them)."""
        return self.identity + self.bound * torch.tanh(self.loc(x).float()).view(-1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.warp(x, self.theta(x))

    @staticmethod
    def warp(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """``x`` resampled with ``theta`` (bilinear, the border pixels repeated outside the image)."""
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=False).to(x.dtype)

    @staticmethod
    def scale(theta: torch.Tensor) -> torch.Tensor:
        """The mean ``sqrt(|det A|)`` of the warps' linear parts (1: the digit keeps its size)."""
        return theta[:, :, :2].det().abs().sqrt().mean()


class PixelGenerator(nn.Module):
    """``(x, z)`` -> a translated image of ``x``'s shape in [-1, 1] (``warp`` first with ``gen_warp="affine"``)."""

    def __init__(self, cfg: PixelDAConfig) -> None:
        super().__init__()
        c, h, w = cfg.input_shape
        self.shape = (c, h, w)
        self.warp: AffineWarp | None = AffineWarp(c, cfg.warp_bound) if cfg.gen_warp == "affine" else None
        self.fc = nn.Linear(cfg.noise_dim, c * h * w)
        self.head = nn.Sequential(nn.Conv2d(2 * c, cfg.gen_channels, 3, 1, 1), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*[ResBlock(cfg.gen_channels) for _ in range(cfg.gen_blocks)])
        self.out = nn.Sequential(nn.Conv2d(cfg.gen_channels, c, 3, 1, 1), nn.Tanh())

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.render(self.warp_input(x)[0], z)

    def warp_input(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(warped x, the warps theta)``; ``(x, None)`` without ``gen_warp``."""
        if self.warp is None:
            return x, None
        theta = self.warp.theta(x)
        return AffineWarp.warp(x, theta), theta

    def render(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The pixel-level stage: noise planes, the residual blocks, tanh."""
        planes = self.fc(z).view(x.shape[0], *self.shape)
        return self.out(self.blocks(self.head(torch.cat([x, planes], 1))))


class PatchDiscriminator(nn.Module):
    """Images -> scores ``(N, h, w)`` (patch) or ``(N, 1, 1)``; stride-2 conv blocks as in PyTorch-GAN."""

    def __init__(self, cfg: PixelDAConfig) -> None:
        super().__init__()
        c, h, w = cfg.input_shape
        layers: list[nn.Module] = []
        ch_in = c
        for i in range(cfg.disc_blocks):
            ch = min(cfg.disc_channels * 2 ** i, 512)
            layers += [nn.Conv2d(ch_in, ch, 3, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
            if i > 0:
                layers.append(nn.InstanceNorm2d(ch))
            ch_in = ch
            h, w = (h + 1) // 2, (w + 1) // 2
            if i > 0 and h * w == 1:
                fits = max(1, i)
                raise ModelError(f"pixelda: disc_blocks={cfg.disc_blocks} shrinks {cfg.input_shape[1]}x"
                                 f"{cfg.input_shape[2]} images to 1x1 in block {i + 1}, where instance norm has "
                                 f"nothing to normalise",
                                 fix=f"set model.disc_blocks={fits} or less, or enlarge the images (data.resize)")
        self.features = nn.Sequential(*layers)
        self.patch = cfg.patch
        self.head: nn.Module = nn.Conv2d(ch_in, 1, 3, 1, 1) if cfg.patch else nn.Linear(ch_in * h * w, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        if self.patch:
            return self.head(f).squeeze(1)
        return self.head(f.flatten(1)).view(-1, 1, 1)


class TaskClassifier(nn.Module):
    """A DANN preset network: ``body`` (feature extractor + hidden layers) and ``head`` (the logits)."""

    def __init__(self, cfg: PixelDAConfig) -> None:
        super().__init__()
        spec = PRESET_SPECS[cfg.task_preset]
        dropout = spec.dropout if cfg.dropout is None else float(cfg.dropout)
        extractor, dim = feature_extractor(cfg.task_preset, tuple(cfg.input_shape), dropout, model="pixelda task_preset")
        hidden, self.feature_dim = mlp(dim, spec.label_hidden, dropout=dropout)
        self.body = nn.Sequential(*extractor, *hidden)
        self.head = nn.Linear(self.feature_dim, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def pmse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise mean squared error ``mean(d^2) - mean(d)^2`` per image (``d = a - b``), averaged.

    Example:
        >>> x = torch.zeros(1, 1, 2, 2)
        >>> float(pmse(x, x + 0.5)), float(pmse(x, torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])))
        (0.0, 0.25)
    """
    d = (a - b).flatten(1)
    return (d.pow(2).mean(1) - d.mean(1).pow(2)).mean()


@register_model("pixelda", config=PixelDAConfig)
class PixelDA(ClassifierMixin, ReprModel):
    """Pixel-level domain adaptation: a generator translating source to target style, a discriminator, a task classifier.

    Example:
        >>> m = PixelDA(PixelDAConfig(input_shape=(1, 28, 28), gen_blocks=1, gen_channels=4, disc_channels=4))
        >>> sorted(m.optimizer_groups()), m.discriminator(torch.zeros(2, 1, 28, 28)).shape
        (['classifier', 'discriminator', 'generator'], torch.Size([2, 2, 2]))
    """

    config: PixelDAConfig

    def __init__(self, config: PixelDAConfig) -> None:
        super().__init__(config)
        classifier = TaskClassifier(config)  # first: an input too small for it is the clearest error
        self.generator = PixelGenerator(config)
        self.discriminator = PatchDiscriminator(config)
        self.classifier = classifier
        if config.feature_weight > 0:
            spec = PRESET_SPECS[config.task_preset]
            self.domain_classifier = domain_head(classifier.feature_dim, spec.domain_hidden, norm=spec.domain_norm)
        for m in (self.generator, self.discriminator):  # PyTorch-GAN: N(0, 0.02) convs, N(1, 0.02) BN scales
            for layer in m.modules():
                if isinstance(layer, nn.Conv2d):
                    nn.init.normal_(layer.weight, 0.0, 0.02)
                elif isinstance(layer, nn.BatchNorm2d):
                    nn.init.normal_(layer.weight, 1.0, 0.02)
                    nn.init.zeros_(layer.bias)

    @property
    def aligns_features(self) -> bool:
        """Whether the feature-level domain loss is on (``feature_weight > 0``)."""
        return float(self.config.feature_weight) > 0

    @property
    def self_trains(self) -> bool:
        """Whether self-training on the target images is on (``target_weight > 0``)."""
        return float(self.config.target_weight) > 0

    def target_terms(self, target: torch.Tensor, forward: Any = None) -> dict[str, torch.Tensor]:
        """FixMatch on the target images ``target`` (see the module docstring): ``target_loss``, the
        cross-entropy of the strong views against the confident pseudo-labels averaged over the whole
        batch, and ``target_mask_rate``; ``forward`` is the module call to use (the engine's ``ctx.forward``).

        Example:
            >>> m = PixelDA(PixelDAConfig(gen_blocks=1, gen_channels=8, disc_channels=8, target_weight=1.0,
            ...                           target_confidence=0.01))
            >>> t = m.target_terms(torch.rand(4, 3, 32, 32) * 2 - 1)
            >>> float(t["target_mask_rate"]), bool(t["target_loss"] > 0)
            (1.0, True)
        """
        forward = self if forward is None else forward
        with torch.no_grad():
            weak = forward(target, mode="classify").extras["logits"]
        pseudo, mask = pseudo_labels(weak, confidence=float(self.config.target_confidence))
        strong = strong_view(target, value_range=self.output_range,
                             options={**TARGET_AUGMENT_DEFAULTS, **self.config.target_augment})
        logits = forward(strong, mode="classify").extras["logits"]
        loss = (F.cross_entropy(logits.float(), pseudo, reduction="none") * mask).mean()
        return {"target_loss": loss, "target_mask_rate": mask.mean()}

    def feature_lambda(self, p: float) -> float:
        """The feature-level gradient-reversal weight at training progress ``p`` in [0, 1] (0 when off)."""
        return ganin_lambda(p, float(self.config.feature_weight), float(self.config.feature_gamma))

    # -- interface -------------------------------------------------------------------------
    def noise(self, n: int, *, device: Any = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` noise vectors ``U(-1, 1)`` of ``noise_dim`` entries (on ``generator``'s device when given)."""
        check_int("n", n, minimum=1)
        if generator is not None:
            dev = generator.device
        else:
            dev = device if device is not None else next(self.parameters()).device
        return torch.rand(int(n), int(self.config.noise_dim), generator=generator, device=dev) * 2 - 1

    def translate(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Source images ``x`` in [-1, 1] -> target-style images ``(N, C, H, W)`` in [-1, 1]."""
        z = self.noise(x.shape[0], device=x.device) if noise is None else noise
        if tuple(z.shape) != (x.shape[0], int(self.config.noise_dim)):
            raise ModelError(f"pixelda.translate: noise of shape {tuple(z.shape)} for {x.shape[0]} images",
                             fix=f"pass noise of shape ({x.shape[0]}, {self.config.noise_dim}) or none")
        return self.generator(x, z.to(x.device))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The task classifier's penultimate layer ``(N, D)``."""
        return self.classifier.body(x)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`features`."""
        return self.features(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The task classifier's class scores for (target-style) images ``x``."""
        return self.classifier(x)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, *, mode: str = "classify",
                z: torch.Tensor | None = None, fake: torch.Tensor | None = None,
                target: torch.Tensor | None = None, grl_lambda: float = 0.0) -> Any:
        """``"classify"``: a :class:`ModelOutput` (``extras["logits"]``; the cross-entropy with ``labels``);
        ``"generate"``: ``(G(x, z), D(G(x, z)), T(G(x, z)), T(x), domain_logits, (warped, theta))``, where
        ``warped`` is ``x`` after the generator's warp ``theta`` (``x`` and ``None`` without one) and ``domain_logits``
        (``None`` without feature alignment or ``target``) scores the features of the ``feature_source``
        images (``G(x, z)`` and ``x``, or one of them) and then ``target`` through the gradient reversal
        (``grl_lambda``); ``"discriminate"``: ``(D(x), D(fake))``
        (instance noise added to both in training)."""
        if mode == "classify":
            return self.classify(x, labels)
        if mode == "generate":
            warped, theta = self.generator.warp_input(x)
            translated = self.generator.render(warped, z)
            n = x.shape[0]
            domain_logits = None
            if self.aligns_features and target is not None:
                feats = self.classifier.body(torch.cat([translated, x, target]))
                task_logits = self.classifier.head(feats[:2 * n])
                domain_logits = self.domain_classifier(grad_reverse(self._domain_side(feats, n),
                                                                    grl_lambda)).squeeze(1)
            else:
                task_logits = self.classifier(torch.cat([translated, x]))
            return (translated, self.discriminator(self._noisy(translated)), task_logits[:n], task_logits[n:],
                    domain_logits, (warped, theta))
        if mode == "discriminate":
            return self.discriminator(self._noisy(x)), self.discriminator(self._noisy(fake))
        raise ValueError(f"unknown mode {mode!r}")

    def _domain_side(self, feats: torch.Tensor, n: int) -> torch.Tensor:
        """The rows of ``feats`` (translated, source, target; ``n`` each) the domain classifier sees."""
        source = self.config.feature_source
        if source == "source":
            return feats[n:]
        if source == "translated":
            return torch.cat([feats[:n], feats[2 * n:]])
        return feats

    def n_domain_source(self, n: int) -> int:
        """How many of the domain classifier's rows are on the source side, for ``n`` source images."""
        return 2 * n if self.config.feature_source == "both" else n

    def _noisy(self, x: torch.Tensor) -> torch.Tensor:
        std = float(self.config.instance_noise)
        return x + std * torch.randn_like(x) if std > 0 and self.training else x

    def optimizer_groups(self) -> dict[str, Any]:  # type: ignore[override]
        """``generator``, ``classifier`` (task classifier + feature-level domain classifier) and
        ``discriminator``, each Adam 2e-4, betas (0.5, 0.999)."""
        task = list(self.classifier.parameters())
        if self.aligns_features:
            task += list(self.domain_classifier.parameters())
        return {"generator": ParamGroup(list(self.generator.parameters()), dict(PIXELDA_OPTIMIZER)),
                "classifier": ParamGroup(task, dict(PIXELDA_OPTIMIZER)),
                "discriminator": ParamGroup(list(self.discriminator.parameters()), dict(PIXELDA_OPTIMIZER))}

    # -- objective -------------------------------------------------------------------------
    def adversarial(self, scores: torch.Tensor, real: bool) -> torch.Tensor:
        """LSGAN (mean squared error to 1 / 0) or BCE on logits, against the all-real or all-fake target."""
        target = torch.full_like(scores, 1.0 if real else 0.0)
        if self.config.adv_loss == "lsgan":
            return F.mse_loss(scores, target)
        return F.binary_cross_entropy_with_logits(scores, target)

    def _score(self, scores: torch.Tensor) -> torch.Tensor:
        return (torch.sigmoid(scores) if self.config.adv_loss == "bce" else scores).mean()

    def generator_objective(self, xs: torch.Tensor, labels: torch.Tensor, parts: tuple) -> tuple[torch.Tensor, dict]:
        """The loss of the generator and classifier groups from ``forward(mode="generate")``'s outputs, and its terms."""
        c = self.config
        translated, d_fake, t_fake, t_src, domain_logits, (warped, theta) = parts
        fake_terms, src_terms = classification_terms(t_fake, labels), classification_terms(t_src, labels)
        w = float(c.source_task_weight)
        task = (fake_terms["loss"] + w * src_terms["loss"]) / (1.0 + w)
        adv = self.adversarial(d_fake, real=True)
        loss = float(c.adv_weight) * adv + float(c.task_weight) * task
        terms = {"class_loss": task, "acc": fake_terms["acc"], "source_acc": src_terms["acc"], "g_adv_loss": adv}
        if theta is not None:
            terms["warp_scale"] = AffineWarp.scale(theta.detach())
        if c.content_weight > 0:
            content = pmse(translated, warped)
            loss = loss + float(c.content_weight) * content
            terms["content_loss"] = content
        if domain_logits is not None:
            dom = self.domain_terms(domain_logits, self.n_domain_source(xs.shape[0]))
            loss = loss + float(c.task_weight) * dom["domain_loss"]
            terms.update(dom)
        return loss, terms

    @staticmethod
    def domain_terms(domain_logits: torch.Tensor, n_source: int) -> dict[str, torch.Tensor]:
        """``domain_loss``: the mean of the source side's (the first ``n_source``, label 0) and the target
        side's (label 1) BCE, so the 2:1 batch counts each domain equally; ``domain_acc`` over all.

        Example:
            >>> t = PixelDA.domain_terms(torch.tensor([-9.0, -9.0, 9.0]), 2)
            >>> round(float(t["domain_loss"]), 4), float(t["domain_acc"])
            (0.0001, 1.0)
        """
        src, tgt = domain_logits[:n_source], domain_logits[n_source:]
        loss = (F.binary_cross_entropy_with_logits(src, torch.zeros_like(src))
                + F.binary_cross_entropy_with_logits(tgt, torch.ones_like(tgt))) / 2
        acc = torch.cat([(src < 0).float(), (tgt > 0).float()]).mean()
        return {"domain_loss": loss, "domain_acc": acc}

    def discriminator_loss(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
        """Mean of the real (target images) and fake (translations) losses."""
        return (self.adversarial(d_real, real=True) + self.adversarial(d_fake, real=False)) / 2

    @staticmethod
    def _check_finite(name: str, loss: torch.Tensor, ctx: Any) -> None:
        if not torch.isfinite(loss.detach()).item():
            raise TrainingError(
                f"pixelda: {name} became {float(loss.detach())} at epoch {getattr(ctx, 'epoch', 0) + 1}, step "
                f"{getattr(ctx, 'step_in_epoch', 0) + 1}; training stopped",
                fix="lower the learning rates (train.groups.generator.lr, .classifier.lr, .discriminator.lr) or set "
                    "train.grad_clip")

    def training_step(self, batch: Any, ctx: Any) -> dict[str, torch.Tensor]:
        """A generator-group step (translation, adversarial + task + content losses), then a discriminator step."""
        labels = getattr(batch, "labels", None)
        if labels is None:
            raise ConfigError("pixelda trains on labelled source batches, but this batch has no labels",
                              fix="use task=adapt (labelled source + unlabelled target)")
        target = getattr(batch, "target", None)
        if target is None:
            raise needs_target_error("pixelda", "(pixel-level adaptation)")
        xs, xt = images_of(batch), target.images
        if self.config.classifier_annealing:
            ctx.set_lr_factor("classifier", DANN.lr_factor(float(ctx.fraction)))
        z = self.noise(xs.shape[0], device=xs.device)
        lam = self.feature_lambda(float(ctx.fraction)) if self.aligns_features else 0.0
        parts = ctx.forward(xs, mode="generate", z=z, target=xt if self.aligns_features else None, grl_lambda=lam)
        g_loss, terms = self.generator_objective(xs, labels, parts)
        if self.self_trains:
            target_terms = self.target_terms(xt, ctx.forward)
            weight = float(self.config.task_weight) * float(self.config.target_weight)
            g_loss = g_loss + weight * target_terms["target_loss"]
            terms.update(target_terms)
        self._check_finite("the generator loss", g_loss, ctx)
        ctx.step(("generator", "classifier"), g_loss)
        d_real, d_fake = ctx.forward(xt, mode="discriminate", fake=parts[0].detach())
        d_loss = self.discriminator_loss(d_real, d_fake)
        self._check_finite("the discriminator loss", d_loss, ctx)
        ctx.step("discriminator", d_loss)
        out = {k: v.detach() for k, v in terms.items()}
        if self.aligns_features:
            out["lambda"] = torch.tensor(lam, device=g_loss.device)
        out.update(loss=(g_loss + d_loss).detach(), d_loss=d_loss.detach(), d_real=self._score(d_real.detach()),
                   d_fake=self._score(d_fake.detach()))
        return out

    @torch.no_grad()
    def validation_step(self, batch: Any) -> dict[str, torch.Tensor]:
        """``loss`` / ``class_loss`` (the task classifier's cross-entropy) and ``acc`` on a labelled batch."""
        labels = getattr(batch, "labels", None)
        out = self.classify(images_of(batch), labels)
        if labels is None:
            return dict(out.terms)
        return {"loss": out.loss, "class_loss": out.loss, "acc": out.terms["acc"]}

    # -- checks ----------------------------------------------------------------------------
    def check_input(self, input_shape: tuple[int, int, int] | None = None) -> None:
        """The classifier's logits, the generator's output shape and the discriminator's scores."""
        super().check_input(input_shape)
        shape = tuple(input_shape or self.config.input_shape)
        if shape != tuple(self.config.input_shape):
            raise ModelError(f"pixelda was built for images of shape {tuple(self.config.input_shape)}, not {shape}",
                             fix="build the model for the data's shape (data.resize / data.channels)")
        was = self.training
        self.eval()
        try:
            with torch.no_grad():
                fake = self.translate(torch.zeros(2, *shape))
                scores = self.discriminator(fake)
        finally:
            self.train(was)
        if tuple(fake.shape[1:]) != shape or scores.shape[0] != 2:
            raise ModelError(f"pixelda translates {shape} images to {tuple(fake.shape[1:])}",
                             fix="this is a model bug; please report it")

    def sanity_check(self, x: torch.Tensor) -> None:
        """One batch (standing in for both domains): data range, finite losses, gradients in all three networks."""
        lo, hi = self.output_range
        if float(x.min()) < lo - 1e-4 or float(x.max()) > hi + 1e-4:
            raise ModelError(f"batch values lie in [{float(x.min()):.3g}, {float(x.max()):.3g}] but pixelda expects "
                             f"values in [{lo:g}, {hi:g}]", fix="set data.scale=-1_1")
        if x.shape[0] < 2:
            raise ModelError("pixelda's batch norm needs batches of at least 2 images",
                             fix="raise train.batch_size to 2 or more")
        labels = torch.arange(x.shape[0]) % self.config.num_classes
        parts = self(x, mode="generate", z=self.noise(x.shape[0], device=x.device),
                     target=x if self.aligns_features else None, grl_lambda=1.0)
        g_loss, _ = self.generator_objective(x, labels, parts)
        d_loss = self.discriminator_loss(*self(x, mode="discriminate", fake=parts[0].detach()))
        for name, loss in (("generator loss", g_loss), ("discriminator loss", d_loss)):
            if not torch.isfinite(loss):
                raise ModelError(f"pixelda: the {name} on the first batch is {float(loss)}",
                                 fix="check the data for NaN/inf")
        g_loss.backward()
        missing = [n for n, p in self.named_parameters()
                   if p.grad is None and not n.startswith("discriminator.")]
        self.zero_grad(set_to_none=True)
        d_loss.backward()
        missing += [n for n, p in self.discriminator.named_parameters() if p.grad is None]
        self.zero_grad(set_to_none=True)
        if missing:
            raise ModelError(f"pixelda: parameters get no gradient: {', '.join(missing[:5])}",
                             fix="this is a model bug; please report it")
