"""``dann``: domain-adversarial neural network (Ganin & Lempitsky 2015; Ganin et al. 2016, JMLR).

Three parts: a **feature extractor** ``G_f``, a **label predictor** ``G_y`` on its output and
a **domain classifier** ``G_d`` that sees the features through a **gradient reversal layer**
(:class:`GradReverse`: identity forward, ``-lambda * grad`` backward). One SGD step minimises
``class_loss + domain_loss``: the label predictor and the domain classifier each minimise their
own loss, while the feature extractor gets ``grad(class_loss) - lambda * grad(domain_loss)``,
i.e. it learns features that predict the label but not the domain (the saddle point of the
paper's ``E = L_y - lambda * L_d``).

Written here (about 250 lines) because no maintained PyTorch library ships DANN without
pulling in torchvision or a trainer of its own (TLlib, pytorch-adapt); the networks are the
papers' and are small.

Presets (``preset``; the flattened sizes follow the input shape through a dummy forward, so
any ``(C, H, W)`` at least as large as the network's receptive field works):

* ``"mnist"`` -- Ganin et al. 2016, JMLR, Figure 4 (a) (MNIST -> MNIST-M): conv 5x5, 32 ->
  ReLU -> max-pool 2x2/2 -> conv 5x5, 48 -> ReLU -> max-pool 2x2/2 -> flatten (768 features
  for 28x28, 1200 for 32x32); label predictor fc 100 -> ReLU -> fc 100 -> ReLU -> fc 10;
  domain classifier fc 100 -> ReLU -> fc 1.
* ``"svhn"`` -- Figure 4 (b) (SVHN <-> MNIST, synthetic numbers -> SVHN): conv 5x5, 64 -> ReLU
  -> max-pool 3x3/2 -> conv 5x5, 64 -> ReLU -> max-pool 3x3/2 -> conv 5x5, 128 (padding 2,
  as the common PyTorch re-implementations have it, so 28x28 inputs fit) -> ReLU -> flatten
  (2048 features for 32x32, 1152 for 28x28); label predictor fc 3072 -> ReLU -> fc 2048 ->
  ReLU -> fc 10; domain classifier fc 1024 -> ReLU -> fc 1024 -> ReLU -> fc 1.
* ``"lenet"`` -- the MNIST <-> USPS network of the Transfer-Learning-Library (TLlib,
  ``tllib/vision/models/digits.py`` LeNet + ``tllib.alignment.dann.ImageClassifier`` with its
  default 256-d bottleneck + ``tllib.modules.domain_discriminator.DomainDiscriminator(hidden
  1024)``): conv 5x5, 20 -> max-pool 2 -> ReLU -> conv 5x5, 50 -> Dropout2d -> max-pool 2 ->
  ReLU -> flatten -> fc 500 -> ReLU -> Dropout -> fc 256 -> BatchNorm -> ReLU (the features);
  label predictor fc 10; domain classifier fc 1024 -> BN -> ReLU -> fc 1024 -> BN -> ReLU -> fc 1.

``label_hidden`` / ``domain_hidden`` replace a preset's hidden widths; ``dropout`` (``None``:
the preset's, 0 for ``mnist``/``svhn``, 0.5 for ``lenet``) follows the label predictor's
hidden layers and replaces LeNet's two dropout rates.

Training (``training_step``): the batch's labelled source images and its paired unlabelled
target images (``batch.target``, from the ``adapt`` task's paired loader) go through the
network together; the domain labels are 0 (source) and 1 (target). Schedules read the
training progress ``p = ctx.fraction`` in [0, 1]:

* ``lambda_schedule="ganin"``: ``lambda_p = adapt_weight * (2 / (1 + exp(-gamma * p)) - 1)``
  with ``gamma = lambda_gamma`` (10): 0 at the start, ``adapt_weight`` at the end;
  ``"constant"``: ``lambda = adapt_weight``;
* ``lr_annealing=True``: the learning rate is ``lr / (1 + 10 p) ** 0.75`` (set each step through
  ``ctx.set_lr_factor``, so it is never cumulative and a resumed run continues it exactly).

``adapt_weight=0`` switches the domain loss off: the same network trains on labelled batches
only (source-only or target-only baselines) and needs no target batch.

One parameter group ``"main"``, declared as SGD with momentum 0.9 and lr 0.01 (the paper's);
the run's ``train.groups.main.*`` overrides it (``train.lr`` does not: the model's declaration
comes after the run's ``train.*``).

Logged terms: ``loss`` (``class_loss + domain_loss``), ``class_loss`` and ``acc`` on the source
batch, ``domain_loss`` and ``domain_acc`` (source and target together), ``lambda``.

Example:
    >>> import torch
    >>> from reprlab.models import create_model
    >>> m = create_model("dann", input_shape=(1, 28, 28), preset="mnist")
    >>> m.features(torch.zeros(2, 1, 28, 28)).shape, m.logits(torch.zeros(2, 1, 28, 28)).shape
    (torch.Size([2, 768]), torch.Size([2, 10]))
    >>> round(m.grl_lambda(0.5), 4), round(m.lr_factor(1.0), 4)
    (0.9866, 0.1656)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reprlab.base.errors import ConfigError, ModelError
from reprlab.models.base import (ModelConfig, ModelOutput, ParamGroup, ReprModel, check_choice, check_float, check_int,
                                 images_of)
from reprlab.models.registry import register_model
from reprlab.models.resnet18 import ClassifierMixin, classification_terms

PRESETS: tuple[str, ...] = ("mnist", "svhn", "lenet")
LAMBDA_SCHEDULES: tuple[str, ...] = ("ganin", "constant")

#: The optimiser DANN declares for its one group (Ganin et al. 2016: SGD, momentum 0.9, lr 0.01).
DANN_OPTIMIZER: dict[str, Any] = {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9}


@dataclass(frozen=True)
class Preset:
    """A digit network of the DANN literature: hidden widths, domain-head BatchNorm, default dropout."""

    label_hidden: tuple[int, ...]
    domain_hidden: tuple[int, ...]
    domain_norm: bool
    dropout: float
    source: str


PRESET_SPECS: dict[str, Preset] = {
    "mnist": Preset((100, 100), (100,), False, 0.0, "Ganin et al. 2016 (JMLR), Fig. 4a: MNIST -> MNIST-M"),
    "svhn": Preset((3072, 2048), (1024, 1024), False, 0.0, "Ganin et al. 2016 (JMLR), Fig. 4b: SVHN -> MNIST"),
    "lenet": Preset((), (1024, 1024), True, 0.5, "TLlib LeNet + 256-d bottleneck + DomainDiscriminator(1024)"),
}


class GradReverse(torch.autograd.Function):
    """Gradient reversal: ``forward(x, lam) = x``; ``backward`` multiplies the gradient by ``-lam``.

    Example:
        >>> x = torch.ones(3, requires_grad=True)
        >>> GradReverse.apply(x, 0.5).sum().backward()
        >>> x.grad.tolist()
        [-0.5, -0.5, -0.5]
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, lam: float) -> torch.Tensor:  # type: ignore[override]
        ctx.lam = float(lam)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return grad.neg() * ctx.lam, None


def grad_reverse(x: torch.Tensor, lam: float) -> torch.Tensor:
    """``x`` unchanged, with its gradient multiplied by ``-lam`` on the way back."""
    return GradReverse.apply(x, lam)


def ganin_lambda(p: float, weight: float, gamma: float = 10.0) -> float:
    """Ganin et al.'s adaptation weight ``weight * (2 / (1 + exp(-gamma * p)) - 1)`` at progress ``p`` in [0, 1].

    Example:
        >>> ganin_lambda(0.0, 1.0), round(ganin_lambda(1.0, 2.0), 4)
        (0.0, 1.9998)
    """
    return float(weight) * (2.0 / (1.0 + math.exp(-float(gamma) * float(p))) - 1.0)


def _widths(name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ConfigError(f"{name} must be a list of layer widths, got {value!r}", fix=f"e.g. {name}=[100, 100]")
    widths = tuple(value)
    for w in widths:
        check_int(name, w, minimum=1)
    return tuple(int(w) for w in widths)


def conv_trunk(preset: str, channels: int, dropout: float) -> nn.Sequential:
    """The convolutional part of ``preset``'s feature extractor (ends with ``Flatten``)."""
    if preset == "mnist":
        layers: list[nn.Module] = [nn.Conv2d(channels, 32, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
                                   nn.Conv2d(32, 48, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2)]
    elif preset == "svhn":
        layers = [nn.Conv2d(channels, 64, 5), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
                  nn.Conv2d(64, 64, 5), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
                  nn.Conv2d(64, 128, 5, padding=2), nn.ReLU(inplace=True)]
    elif preset == "lenet":
        layers = [nn.Conv2d(channels, 20, 5), nn.MaxPool2d(2), nn.ReLU(inplace=True),
                  nn.Conv2d(20, 50, 5), nn.Dropout2d(dropout), nn.MaxPool2d(2), nn.ReLU(inplace=True)]
    else:  # pragma: no cover - the config checks the name
        raise ConfigError(f"unknown preset {preset!r}", fix=f"use one of {', '.join(PRESETS)}")
    return nn.Sequential(*layers, nn.Flatten(1))


def feature_extractor(preset: str, input_shape: tuple[int, int, int], dropout: float,
                      *, model: str = "dann") -> tuple[nn.Sequential, int]:
    """``preset``'s feature extractor for ``input_shape`` and its output size.

    The flattened size comes from a dummy forward; an input too small for the network raises
    :class:`ModelError` naming the layer sizes and the fix.

    Example:
        >>> net, d = feature_extractor("lenet", (1, 28, 28), 0.5)
        >>> d, net(torch.zeros(2, 1, 28, 28)).shape
        (256, torch.Size([2, 256]))
    """
    trunk = conv_trunk(preset, input_shape[0], dropout)
    try:
        with torch.no_grad():
            flat = int(trunk.eval()(torch.zeros(1, *input_shape)).shape[1])
    except RuntimeError as exc:
        raise ModelError(f"{model} preset={preset!r} cannot take images of shape {tuple(input_shape)}: "
                         f"{str(exc).splitlines()[0]}",
                         fix="enlarge the images (e.g. data.resize=[28,28] or [32,32]) or choose another preset "
                             f"({', '.join(PRESETS)})") from None
    trunk.train()
    if preset != "lenet":
        return trunk, flat
    layers = list(trunk) + [nn.Linear(flat, 500), nn.ReLU(inplace=True), nn.Dropout(dropout),
                            nn.Linear(500, 256), nn.BatchNorm1d(256), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers), 256


def mlp(in_dim: int, hidden: tuple[int, ...], *, dropout: float = 0.0, norm: bool = False) -> tuple[list[nn.Module], int]:
    """Hidden layers ``Linear -> [BatchNorm1d] -> ReLU -> [Dropout]`` and the last width."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers.append(nn.Linear(in_dim, width))
        if norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(nn.ReLU(inplace=True))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_dim = width
    return layers, in_dim


def domain_head(in_dim: int, hidden: tuple[int, ...], *, norm: bool = False) -> nn.Sequential:
    """A domain classifier: ``hidden`` layers (:func:`mlp`) then one logit (source 0, target 1).

    Example:
        >>> domain_head(8, (4,))(torch.zeros(3, 8)).shape
        torch.Size([3, 1])
    """
    layers, last = mlp(in_dim, hidden, norm=norm)
    return nn.Sequential(*layers, nn.Linear(last, 1))


@dataclass
class DANNConfig(ModelConfig):
    """Options of ``dann`` (see the module docstring).

    ``preset``: ``mnist``, ``svhn`` or ``lenet``; ``num_classes``; ``label_hidden`` /
    ``domain_hidden``: hidden widths (``None``: the preset's); ``dropout`` (``None``: the
    preset's); ``adapt_weight``: the largest ``lambda`` (0: no domain loss);
    ``lambda_schedule``: ``ganin`` or ``constant``; ``lambda_gamma``: the schedule's ``gamma``;
    ``lr_annealing``: the paper's ``1 / (1 + 10 p) ** 0.75`` learning-rate factor.
    ``latent_dim`` is not used (the feature size follows the preset and the input).

    Example:
        >>> DANNConfig(preset="svhn").resolved_domain_hidden
        (1024, 1024)
    """

    input_shape: tuple[int, int, int] = (3, 32, 32)
    num_classes: int = 10
    preset: str = "mnist"
    label_hidden: list[int] | None = None
    domain_hidden: list[int] | None = None
    dropout: float | None = None
    adapt_weight: float = 1.0
    lambda_schedule: str = "ganin"
    lambda_gamma: float = 10.0
    lr_annealing: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("num_classes", self.num_classes, minimum=2)
        check_choice("preset", self.preset, PRESETS)
        if self.label_hidden is not None:
            self.label_hidden = list(_widths("label_hidden", self.label_hidden))
        if self.domain_hidden is not None:
            self.domain_hidden = list(_widths("domain_hidden", self.domain_hidden))
        if self.dropout is not None:
            check_float("dropout", self.dropout, minimum=0.0, maximum=1.0)
            if self.dropout >= 1:
                raise ConfigError(f"dropout={self.dropout} drops every feature", fix="use a dropout in [0, 1)")
        check_float("adapt_weight", self.adapt_weight, minimum=0.0)
        check_choice("lambda_schedule", self.lambda_schedule, LAMBDA_SCHEDULES)
        check_float("lambda_gamma", self.lambda_gamma, minimum=0.0, exclusive_min=True)
        if not isinstance(self.lr_annealing, bool):
            raise ConfigError(f"lr_annealing must be true or false, got {self.lr_annealing!r}",
                              fix="set model.lr_annealing=true (the paper's schedule) or false")
        if self.rotation_beta:
            raise ConfigError("dann has no rotation self-supervision", fix="set model.rotation_beta=0")

    @property
    def spec(self) -> Preset:
        return PRESET_SPECS[self.preset]

    @property
    def resolved_label_hidden(self) -> tuple[int, ...]:
        return tuple(self.label_hidden) if self.label_hidden is not None else self.spec.label_hidden

    @property
    def resolved_domain_hidden(self) -> tuple[int, ...]:
        return tuple(self.domain_hidden) if self.domain_hidden is not None else self.spec.domain_hidden

    @property
    def resolved_dropout(self) -> float:
        return float(self.dropout) if self.dropout is not None else self.spec.dropout


def needs_target_error(model: str, why: str) -> ConfigError:
    """The error of an adaptation step that got no target batch."""
    return ConfigError(f"{model} {why} needs unlabelled target images in every training batch, but this batch "
                       f"has none (batch.target is None)",
                       fix="use task=adapt (it pairs each labelled source batch with a target batch)"
                           + (", or set model.adapt_weight=0 for source-only training" if model == "dann" else ""))


@register_model("dann", config=DANNConfig)
class DANN(ClassifierMixin, ReprModel):
    """Domain-adversarial network: feature extractor, label predictor, domain classifier behind a GRL.

    Example:
        >>> m = DANN(DANNConfig(input_shape=(3, 32, 32), preset="svhn"))
        >>> m(torch.zeros(2, 3, 32, 32), grl_lambda=1.0).extras["domain_logits"].shape
        torch.Size([2])
    """

    config: DANNConfig

    def __init__(self, config: DANNConfig) -> None:
        super().__init__(config)
        c = config
        dropout = c.resolved_dropout
        self.feature_extractor, self.feature_dim = feature_extractor(c.preset, tuple(c.input_shape), dropout)
        hidden, last = mlp(self.feature_dim, c.resolved_label_hidden, dropout=dropout)
        self.label_predictor = nn.Sequential(*hidden, nn.Linear(last, c.num_classes))
        self.domain_classifier = domain_head(self.feature_dim, c.resolved_domain_hidden, norm=c.spec.domain_norm)

    # -- schedules -------------------------------------------------------------------------
    @property
    def adapts(self) -> bool:
        """Whether the domain loss is on (``adapt_weight > 0``)."""
        return float(self.config.adapt_weight) > 0

    @property
    def ddp_find_unused_parameters(self) -> bool:
        """Source-only training leaves the domain classifier without gradients."""
        return not self.adapts

    def grl_lambda(self, p: float) -> float:
        """The gradient-reversal weight at training progress ``p`` in [0, 1]."""
        c = self.config
        if c.lambda_schedule == "constant":
            return float(c.adapt_weight)
        return ganin_lambda(p, float(c.adapt_weight), float(c.lambda_gamma))

    @staticmethod
    def lr_factor(p: float) -> float:
        """The paper's learning-rate annealing factor ``1 / (1 + 10 p) ** 0.75``."""
        return 1.0 / (1.0 + 10.0 * float(p)) ** 0.75

    # -- interface -------------------------------------------------------------------------
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature extractor's output ``(N, feature_dim)`` (what the domain classifier sees)."""
        return self.feature_extractor(x)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`features` (the code other tools embed)."""
        return self.features(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores ``(N, num_classes)`` of the label predictor."""
        return self.label_predictor(self.features(x))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, *,
                grl_lambda: float | None = None) -> ModelOutput:
        """Logits (``extras["logits"]``) and, with ``labels``, the cross-entropy terms; with
        ``grl_lambda`` also ``extras["domain_logits"]`` ``(N,)`` computed through the gradient reversal."""
        feats = self.features(x)
        logits = self.label_predictor(feats)
        extras = {"logits": logits, "features": feats}
        if grl_lambda is not None:
            extras["domain_logits"] = self.domain_classifier(grad_reverse(feats, grl_lambda)).squeeze(1)
        if labels is None:
            zero = logits.sum() * 0.0
            return ModelOutput(loss=zero, terms={"loss": zero}, latent=feats, extras=extras)
        terms = classification_terms(logits, labels)
        return ModelOutput(loss=terms["loss"], terms=terms, latent=feats, extras=extras)

    def optimizer_groups(self) -> dict[str, Any]:  # type: ignore[override]
        """One group ``main``, declared as SGD lr 0.01 momentum 0.9 (Ganin et al.)."""
        return {"main": ParamGroup([p for p in self.parameters() if p.requires_grad], dict(DANN_OPTIMIZER))}

    # -- training --------------------------------------------------------------------------
    def domain_terms(self, domain_logits: torch.Tensor, n_source: int) -> dict[str, torch.Tensor]:
        """``domain_loss`` (BCE; source 0, target 1) and ``domain_acc`` of logits for source then target images."""
        target = torch.zeros_like(domain_logits)
        target[n_source:] = 1.0
        loss = F.binary_cross_entropy_with_logits(domain_logits, target)
        acc = ((domain_logits > 0).float() == target).float().mean()
        return {"domain_loss": loss, "domain_acc": acc}

    def training_step(self, batch: Any, ctx: Any) -> dict[str, torch.Tensor]:
        """One SGD step on the source batch (and, when adapting, its target batch)."""
        labels = getattr(batch, "labels", None)
        if labels is None:
            raise ConfigError("dann trains on labelled source batches, but this batch has no labels",
                              fix="use task=adapt (labelled source + unlabelled target) or task=classify")
        p = float(ctx.fraction)
        if self.config.lr_annealing:
            ctx.set_lr_factor("main", self.lr_factor(p))
        xs = images_of(batch)
        n = xs.shape[0]
        if not self.adapts:
            out = ctx.forward(xs, labels)
            ctx.step("main", out.loss)
            return {"loss": out.loss.detach(), "class_loss": out.loss.detach(), "acc": out.terms["acc"].detach(),
                    "lambda": torch.zeros((), device=out.loss.device)}
        target = getattr(batch, "target", None)
        if target is None:
            raise needs_target_error("dann", f"with adapt_weight={self.config.adapt_weight}")
        lam = self.grl_lambda(p)
        out = ctx.forward(torch.cat([xs, target.images]), grl_lambda=lam)
        logits = out.extras["logits"][:n]
        cls = classification_terms(logits, labels)
        dom = self.domain_terms(out.extras["domain_logits"], n)
        loss = cls["loss"] + dom["domain_loss"]
        ctx.step("main", loss)
        return {"loss": loss.detach(), "class_loss": cls["loss"].detach(), "acc": cls["acc"].detach(),
                "domain_loss": dom["domain_loss"].detach(), "domain_acc": dom["domain_acc"].detach(),
                "lambda": torch.tensor(lam, device=loss.device)}

    @torch.no_grad()
    def validation_step(self, batch: Any) -> dict[str, torch.Tensor]:
        """``loss`` / ``class_loss`` (cross-entropy) and ``acc`` on a labelled batch (the source validation split)."""
        labels = getattr(batch, "labels", None)
        out = self(images_of(batch), labels)
        if labels is None:
            return dict(out.terms)
        return {"loss": out.loss, "class_loss": out.loss, "acc": out.terms["acc"]}

    def sanity_check(self, x: torch.Tensor) -> None:
        """One batch: data range, a finite loss, and gradients for every part (the domain classifier
        included when adapting; the batch's two halves stand in for source and target)."""
        lo, hi = self.output_range
        if float(x.min()) < lo - 1e-4 or float(x.max()) > hi + 1e-4:
            raise ModelError(f"batch values lie in [{float(x.min()):.3g}, {float(x.max()):.3g}] but dann expects "
                             f"values in [{lo:g}, {hi:g}]", fix="set data.scale to match model.output_range")
        if x.shape[0] < 2:
            raise ModelError("dann needs batches of at least 2 images", fix="raise train.batch_size to 2 or more")
        labels = torch.arange(x.shape[0]) % self.config.num_classes
        out = self(x, labels, grl_lambda=1.0 if self.adapts else None)
        loss = out.loss
        if self.adapts:
            loss = loss + self.domain_terms(out.extras["domain_logits"], x.shape[0] // 2)["domain_loss"]
        if not torch.isfinite(loss):
            raise ModelError(f"dann: the loss on the first batch is {float(loss)}",
                             fix="check the data for NaN/inf and lower the learning rate")
        loss.backward()
        skip = () if self.adapts else tuple(id(p) for p in self.domain_classifier.parameters())
        missing = [n for n, p in self.named_parameters() if p.requires_grad and p.grad is None and id(p) not in skip]
        self.zero_grad(set_to_none=True)
        if missing:
            raise ModelError(f"dann: parameters get no gradient: {', '.join(missing[:5])}",
                             fix="this is a model bug; please report it")
