"""``resnet18``: the ResNet-18 image classifier (He et al. 2016), built here.

Built by hand (there is no torchvision here, and the network is ~60 lines): a stem, four
stages of two :class:`BasicBlock` s (64, 128, 256, 512 channels; stages 2-4 start with a
stride-2 block whose shortcut is a 1x1 convolution + BatchNorm projection), global
average pooling and a linear head ``fc``.

* ``stem="imagenet"``: 7x7/2 conv, BatchNorm, ReLU, 3x3/2 max-pool (the standard network;
  with 3 channels and ``num_classes=1000`` it has exactly 11,689,512 parameters);
* ``stem="small"``: a 3x3/1 conv, BatchNorm, ReLU and no max-pool, for 28x28 or 32x32 images
  (the CIFAR-style variant).

Parameter names and shapes follow the usual (torchvision) ResNet-18 layout: ``conv1.weight``,
``bn1.*``, ``layer1.0.conv1.weight``, ``layer2.0.downsample.0.weight`` (the 1x1 conv),
``layer2.0.downsample.1.*`` (its BatchNorm), ..., ``fc.weight``, ``fc.bias``. So a
state dict of ImageNet weights in that layout loads with :func:`load_imagenet_weights`,
which reads ``.safetensors`` files, or ``.pth``/``.pt`` files with
``torch.load(weights_only=True)`` (nothing is unpickled). For a 1-channel model the
3-channel ``conv1.weight`` is **summed** over its input channels: a grayscale image then
gives exactly the activations the RGB network gives for that image copied to 3 channels.
The ``fc`` of another class count is skipped (the head is task-specific); a 3x3 ``small``
stem cannot take 7x7 weights and is refused.

``encode(x)`` is the 512-d pooled feature (the representation a ``classifier`` head or the
frozen-code baselines use); ``forward(x, labels)`` gives the cross-entropy (with optional
label smoothing) and the accuracy. ``blocks()`` lists the stem and the eight BasicBlocks
in order (partial unfreezing counts these).

Example:
    >>> import torch
    >>> from reprlab.models import create_model
    >>> m = create_model("resnet18", input_shape=(3, 224, 224), num_classes=1000, stem="imagenet")
    >>> m.num_parameters()
    11689512
    >>> small = create_model("resnet18", input_shape=(1, 28, 28), num_classes=10)
    >>> small.logits(torch.rand(2, 1, 28, 28)).shape, small.encode(torch.rand(2, 1, 28, 28)).shape
    (torch.Size([2, 10]), torch.Size([2, 512]))
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reprlab.base.errors import ConfigError, ModelError
from reprlab.models.base import ModelConfig, ModelOutput, ReprModel, check_choice, check_float, check_int, images_of
from reprlab.models.registry import register_model
from reprlab.models.semisup import fixmatch_terms, pseudo_labels, strong_view

logger = logging.getLogger(__name__)

STEMS: tuple[str, ...] = ("imagenet", "small")
WIDTHS: tuple[int, ...] = (64, 128, 256, 512)
#: ImageNet channel statistics (the usual normalisation of ImageNet-pretrained weights).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
NORMALIZATIONS: tuple[str, ...] = ("none", "imagenet")


class BasicBlock(nn.Module):
    """Two 3x3 convs with BatchNorm and ReLU, plus the shortcut (identity, or 1x1 conv + BN projection).

    Example:
        >>> b = BasicBlock(64, 128, stride=2)
        >>> b(torch.zeros(1, 64, 8, 8)).shape, [n for n, _ in b.downsample.named_children()]
        (torch.Size([1, 128, 4, 4]), ['0', '1'])
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


@dataclass
class ResNet18Config(ModelConfig):
    """Options of ``resnet18``.

    ``num_classes``: outputs of ``fc``; ``stem``: ``"imagenet"`` (7x7/2 conv + max-pool) or
    ``"small"`` (3x3/1 conv, no pool); ``dropout`` before ``fc``; ``label_smoothing`` of
    the cross-entropy; ``normalize``: ``"imagenet"`` subtracts the ImageNet mean and divides
    by its std inside the network (what ImageNet weights expect; a 1-channel input uses the
    channel average), ``"none"`` feeds the images as they come. ``latent_dim`` is fixed
    at 512 (the pooled feature size).

    Example:
        >>> ResNet18Config(input_shape=(3, 32, 32)).stem
        'small'
    """

    latent_dim: int = 512
    num_classes: int = 10
    stem: str = "small"
    dropout: float = 0.0
    label_smoothing: float = 0.0
    normalize: str = "none"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("num_classes", self.num_classes, minimum=2)
        check_choice("stem", self.stem, STEMS)
        check_float("dropout", self.dropout, minimum=0, maximum=1)
        if self.dropout >= 1:
            raise ConfigError(f"dropout={self.dropout} drops every feature", fix="use a dropout in [0, 1)")
        check_float("label_smoothing", self.label_smoothing, minimum=0, maximum=0.5)
        check_choice("normalize", self.normalize, NORMALIZATIONS)
        if int(self.latent_dim) != WIDTHS[-1]:
            raise ConfigError(f"resnet18 codes have {WIDTHS[-1]} features; latent_dim={self.latent_dim} cannot be set",
                              fix=f"drop latent_dim (it is {WIDTHS[-1]})")
        if self.rotation_beta:
            raise ConfigError("resnet18 is a classifier and has no rotation self-supervision",
                              fix="set model.rotation_beta=0")
        h, w = self.input_shape[1:]
        smallest = 32 if self.stem == "imagenet" else 8
        if min(h, w) < smallest:
            raise ModelError(f"resnet18 with stem={self.stem!r} downsamples {h}x{w} images below 1x1 "
                             f"(it needs at least {smallest}x{smallest})",
                             fix="use stem=small for small images, or enlarge them (data.resize)")


def classification_terms(logits: torch.Tensor, labels: torch.Tensor, *,
                         label_smoothing: float = 0.0) -> dict[str, torch.Tensor]:
    """``loss`` (cross-entropy, optionally label-smoothed), ``xent`` (plain cross-entropy) and ``acc``.

    Example:
        >>> t = classification_terms(torch.tensor([[2.0, 0.0], [0.0, 2.0]]), torch.tensor([0, 0]))
        >>> round(float(t["acc"]), 2)
        0.5
    """
    xent = F.cross_entropy(logits, labels)
    loss = xent if label_smoothing == 0 else F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    acc = (logits.argmax(1) == labels).float().mean()
    return {"loss": loss, "xent": xent, "acc": acc}


class ClassifierMixin:
    """What every reprlab classifier shares: the labelled training/validation steps and the checks.

    A classifier has ``logits(x)``; ``forward(x, labels=None)`` returns a :class:`ModelOutput`
    whose ``extras["logits"]`` are the class scores (and whose loss is the cross-entropy
    when ``labels`` are given, 0 otherwise). It has no ``decode``: it does not reconstruct.
    """

    reconstructs: bool = False
    label_smoothing: float = 0.0
    #: FixMatch settings (:mod:`reprlab.models.semisup`); a model with these config fields sets them.
    semi_supervised: str = "none"
    unlabelled_weight: float = 1.0
    confidence: float = 0.95
    strong_augment: dict[str, Any] | None = None
    distribution_alignment: bool = False

    @property
    def decode(self) -> Any:
        """A classifier does not decode: ``hasattr(model, "decode")`` is false, so reconstruction steps skip it."""
        raise AttributeError(f"{type(self).__name__} is a classifier and has no decoder")

    def classify(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> ModelOutput:
        logits = self.logits(x)  # type: ignore[attr-defined]
        if labels is None:
            zero = logits.sum() * 0.0
            return ModelOutput(loss=zero, terms={"loss": zero}, extras={"logits": logits})
        terms = classification_terms(logits, labels, label_smoothing=self.label_smoothing)
        return ModelOutput(loss=terms["loss"], terms=terms, extras={"logits": logits})

    def training_step(self, batch: Any, ctx: Any) -> dict[str, torch.Tensor]:
        """One cross-entropy step on ``batch.labels`` (plus FixMatch on ``batch.target`` when the model has
        ``semi_supervised="fixmatch"`` or ``"flexmatch"``; :mod:`reprlab.models.semisup`).

        One parameter group: one step. The groups ``encoder`` and ``head`` (a classifier
        fine-tuned with its own learning rate per part) are stepped from one forward pass:
        ``encoder`` on the loss, then ``head`` on the loss recomputed from the detached
        features (only the head runs again); with the head's weights unchanged in between,
        each optimiser gets exactly its parameters' gradient of the loss.
        """
        labels = getattr(batch, "labels", None)
        if labels is None:
            raise ConfigError(f"{self.registry_name} trains on labelled batches, but this batch has no labels",  # type: ignore[attr-defined]
                              fix="use task=classify with a labelled dataset")
        x = images_of(batch)
        unlabelled = getattr(batch, "target", None) if self.semi_supervised != "none" else None
        if unlabelled is None:
            out = ctx.forward(x, labels)

            def loss_of(logits: torch.Tensor) -> dict[str, torch.Tensor]:
                return classification_terms(logits, labels, label_smoothing=self.label_smoothing)
            terms = out.terms
        else:
            u = images_of(unlabelled)
            with torch.no_grad():
                weak = self.logits(u)  # type: ignore[attr-defined]
            running = self.prediction_mean(weak.shape[1], weak.device) if self.distribution_alignment else None
            selected = self._flexmatch_memory(unlabelled, weak.device) if self.semi_supervised == "flexmatch" else None
            pseudo, mask = pseudo_labels(weak, confidence=self.confidence, running_mean=running, selected=selected,
                                         index=getattr(unlabelled, "index", None))
            strong = strong_view(u, value_range=self.output_range, options=self.strong_augment)  # type: ignore[attr-defined]
            n = x.shape[0]
            out = ctx.forward(torch.cat([x, strong]))

            def loss_of(logits: torch.Tensor) -> dict[str, torch.Tensor]:
                return fixmatch_terms(logits[:n], labels, logits[n:], pseudo, mask,
                                      unlabelled_weight=self.unlabelled_weight, label_smoothing=self.label_smoothing)
            terms = loss_of(out.extras["logits"])
        groups = list(self.optimizer_groups())  # type: ignore[attr-defined]
        if len(groups) == 1:
            ctx.step(groups[0], terms["loss"])
        else:
            ctx.step("encoder", terms["loss"])
            ctx.step("head", loss_of(self.head(out.extras["features"].detach()))["loss"])  # type: ignore[attr-defined]
        return {k: v.detach() for k, v in terms.items()}

    def start_semi_supervised(self, n_unlabelled: int) -> None:
        """Forget the memory of earlier semi-supervised training and size FlexMatch's for ``n_unlabelled``
        images (the ``classify`` task calls this before training): every image unselected (-1), the
        predicted class distribution uniform again."""
        self._prediction_mean = None
        self._selected = (torch.full((int(n_unlabelled),), -1, dtype=torch.int64)
                          if self.semi_supervised == "flexmatch" else None)

    def _flexmatch_memory(self, unlabelled: Any, device: torch.device) -> torch.Tensor:
        selected = getattr(self, "_selected", None)
        if selected is None:
            raise ConfigError(f"{self.registry_name} trains with semi_supervised=flexmatch but does not know its "  # type: ignore[attr-defined]
                              "unlabelled images", fix="train it with task=classify and classify.unlabelled=all, or "
                                                       "call model.start_semi_supervised(len(unlabelled)) first")
        index = getattr(unlabelled, "index", None)  # pseudo_labels checks there is one per image
        if index is None or (index.numel() and int(index.max()) >= len(selected)):
            raise ConfigError(f"semi_supervised=flexmatch needs each unlabelled image's index below {len(selected)} "
                              "(batch.target.index), but the batch has "
                              f"{'none' if index is None else f'indices up to {int(index.max())}'}",
                              fix="feed the unlabelled images through reprlab's loaders (PairedLoader), or call "
                                  "start_semi_supervised with the size of the unlabelled set")
        if selected.device != device:
            selected = self._selected = selected.to(device)
        return selected

    def training_state(self) -> dict[str, torch.Tensor]:
        """What semi-supervised training remembers between steps, for the resume state (not the weights):
        FlexMatch's selected classes and the distribution-alignment average, where in use."""
        state = {}
        if getattr(self, "_selected", None) is not None:
            state["flexmatch_selected"] = self._selected.cpu()
        if getattr(self, "_prediction_mean", None) is not None:
            state["prediction_mean"] = self._prediction_mean.cpu()
        return state

    def load_training_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore :meth:`training_state` (a resumed run continues FlexMatch's thresholds exactly)."""
        selected = getattr(self, "_selected", None)
        if selected is not None:
            saved = state.get("flexmatch_selected")
            if saved is None or saved.shape != selected.shape:
                raise ConfigError(f"the resume state has no FlexMatch memory of {len(selected)} unlabelled images "
                                  f"({'none' if saved is None else f'one of {len(saved)}'})",
                                  fix="resume with the config and data the run started with, or start a new run")
            self._selected = saved.clone().to(selected.device)
        if "prediction_mean" in state:
            self._prediction_mean = state["prediction_mean"].clone()

    def prediction_mean(self, n_classes: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """The moving average of the class distribution predicted on unlabelled images (distribution
        alignment), on ``device`` (the predictions'); starts uniform, lives with the model object and its
        resume state (:meth:`training_state`), not in its weights."""
        rm = getattr(self, "_prediction_mean", None)
        if rm is None or rm.shape[0] != n_classes or rm.device != torch.device(device):
            rm = torch.full((n_classes,), 1.0 / n_classes, device=device)
            self._prediction_mean = rm
        return rm

    @torch.no_grad()
    def validation_step(self, batch: Any) -> dict[str, torch.Tensor]:
        """``loss``, ``xent`` and ``acc`` on a labelled validation batch."""
        labels = getattr(batch, "labels", None)
        out = self(images_of(batch), labels)  # type: ignore[operator]
        return dict(out.terms)

    def check_input(self, input_shape: tuple[int, int, int] | None = None) -> None:
        """Run a dummy batch and check the logits' shape (raises :class:`ModelError`)."""
        shape = tuple(input_shape or self.config.input_shape)  # type: ignore[attr-defined]
        was = self.training  # type: ignore[attr-defined]
        self.eval()  # type: ignore[attr-defined]
        try:
            with torch.no_grad():
                logits = self.logits(torch.zeros(2, *shape))  # type: ignore[attr-defined]
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"{self.registry_name} cannot process input of shape {shape}: {str(exc).splitlines()[0]}",  # type: ignore[attr-defined]
                             fix="resize the input (data.resize) or choose a model that fits it") from None
        finally:
            self.train(was)  # type: ignore[attr-defined]
        if tuple(logits.shape) != (2, self.config.num_classes):  # type: ignore[attr-defined]
            raise ModelError(f"{self.registry_name} gives logits of shape {tuple(logits.shape)}",  # type: ignore[attr-defined]
                             fix="this is a model bug; please report it")

    def sanity_check(self, x: torch.Tensor) -> None:
        """One batch with stand-in labels: finite loss, and a gradient for every trainable parameter."""
        lo, hi = self.output_range  # type: ignore[attr-defined]
        if float(x.min()) < lo - 1e-4 or float(x.max()) > hi + 1e-4:
            raise ModelError(f"batch values lie in [{float(x.min()):.3g}, {float(x.max()):.3g}] but "
                             f"{self.registry_name} expects values in [{lo:g}, {hi:g}]",  # type: ignore[attr-defined]
                             fix="set data.scale to match model.output_range ('0_1' or '-1_1')")
        labels = torch.arange(x.shape[0]) % self.config.num_classes  # type: ignore[attr-defined]
        loss = self(x, labels).loss  # type: ignore[operator]
        if not torch.isfinite(loss):
            raise ModelError(f"{self.registry_name}: the loss on the first batch is {float(loss)}",  # type: ignore[attr-defined]
                             fix="check the data for NaN/inf and lower the learning rate")
        loss.backward()
        missing = [n for n, p in self.named_parameters() if p.requires_grad and p.grad is None]  # type: ignore[attr-defined]
        self.zero_grad(set_to_none=True)  # type: ignore[attr-defined]
        if missing:
            raise ModelError(f"{self.registry_name}: parameters get no gradient: {', '.join(missing[:5])}",  # type: ignore[attr-defined]
                             fix="this is a model bug; please report it")


@register_model("resnet18", config=ResNet18Config)
class ResNet18(ClassifierMixin, ReprModel):
    """ResNet-18 classifier in the torchvision parameter layout (see the module docstring).

    Example:
        >>> m = ResNet18(ResNet18Config(input_shape=(1, 32, 32), num_classes=3))
        >>> len(m.blocks()), m(torch.rand(4, 1, 32, 32), torch.tensor([0, 1, 2, 0])).terms["acc"].shape
        (9, torch.Size([]))
    """

    config: ResNet18Config

    def __init__(self, config: ResNet18Config) -> None:
        super().__init__(config)
        c = config
        self.label_smoothing = float(c.label_smoothing)
        if c.stem == "imagenet":
            self.conv1 = nn.Conv2d(c.input_shape[0], 64, 7, stride=2, padding=3, bias=False)
            self.maxpool: nn.Module = nn.MaxPool2d(3, stride=2, padding=1)
        else:
            self.conv1 = nn.Conv2d(c.input_shape[0], 64, 3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        in_ch = 64
        for i, width in enumerate(WIDTHS):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(in_ch, width, stride), BasicBlock(width, width)))
            in_ch = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(c.dropout) if c.dropout > 0 else nn.Identity()
        self.fc = nn.Linear(WIDTHS[-1], c.num_classes)
        self.code_size = WIDTHS[-1]
        mean = torch.tensor(IMAGENET_MEAN if c.input_shape[0] == 3 else (sum(IMAGENET_MEAN) / 3,))
        std = torch.tensor(IMAGENET_STD if c.input_shape[0] == 3 else (sum(IMAGENET_STD) / 3,))
        self.register_buffer("input_mean", mean.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("input_std", std.view(1, -1, 1, 1), persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        # He init for convs, unit BatchNorm, and the last BN of each block at zero (the block starts as
        # the identity: Goyal et al. 2017), as in the usual training recipes.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def blocks(self) -> list[nn.Module]:
        """The stem (``conv1`` + ``bn1``) and the eight BasicBlocks, input to output."""
        stem = nn.ModuleList([self.conv1, self.bn1])
        return [stem] + [b for i in range(1, 5) for b in getattr(self, f"layer{i}")]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled 512-d features of a batch."""
        if self.config.normalize == "imagenet":
            lo = float(self.output_range[0])
            x01 = (x + 1) / 2 if lo < 0 else x
            x = (x01 - self.input_mean) / self.input_std
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The representation: pooled 512-d features ``(N, 512)``."""
        return self.features(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores ``(N, num_classes)``."""
        return self.fc(self.dropout(self.features(x)))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> ModelOutput:
        out = self.classify(x, labels)
        return out

    def optimizer_groups(self) -> dict[str, list[nn.Parameter]]:
        """One group, ``main``: the whole network (see the ``classifier`` model for encoder/head groups)."""
        return {"main": [p for p in self.parameters() if p.requires_grad]}


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors``, or from ``.pth``/``.pt``/``.bin`` with ``torch.load(weights_only=True)``.

    Raises :class:`ModelError` for a missing file or one that is not a plain tensor state dict.

    Example:
        >>> _ = torch.save({"w": torch.zeros(2)}, "/tmp/doc_sd.pth")
        >>> list(read_state_dict("/tmp/doc_sd.pth"))
        ['w']
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"weights file {path} does not exist", fix="give the path of a ResNet-18 state dict file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any reading failure is the same user error
        raise ModelError(f"cannot read weights {path}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                         fix="use a .safetensors file or a .pth state dict of tensors (weights_only loading)") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path} does not hold a state dict of tensors", fix="save model.state_dict() of a ResNet-18")
    return {str(k).removeprefix("module."): v for k, v in state.items()}


def load_imagenet_weights(model: ResNet18, state: dict[str, torch.Tensor] | str | Path, *,
                          skip_head: bool | None = None) -> list[str]:
    """Load a torchvision-layout ResNet-18 state dict into ``model``; returns the keys not loaded.

    ``conv1.weight`` of 3 input channels is summed over them for a 1-channel model. The
    ``fc`` weights are skipped when their class count differs from the model's (or with
    ``skip_head=True``). Every other parameter and BatchNorm buffer must be there with
    its shape, else :class:`ModelError` names the first that is missing or misshapen.

    Example:
        >>> src = ResNet18(ResNet18Config(input_shape=(3, 64, 64), stem="imagenet", num_classes=1000))
        >>> gray = ResNet18(ResNet18Config(input_shape=(1, 64, 64), stem="imagenet", num_classes=10))
        >>> load_imagenet_weights(gray, src.state_dict())
        ['fc.weight', 'fc.bias']
        >>> torch.allclose(gray.conv1.weight, src.conv1.weight.sum(1, keepdim=True))
        True
    """
    if not isinstance(state, dict):
        state = read_state_dict(state)
    state = dict(state)
    own = model.state_dict()
    w = state.get("conv1.weight")
    if w is not None and w.ndim == 4 and w.shape[1] == 3 and own["conv1.weight"].shape[1] == 1:
        state["conv1.weight"] = w.sum(1, keepdim=True)
    if w is not None and w.shape[-1] != own["conv1.weight"].shape[-1]:
        raise ModelError(f"the weights have a {w.shape[-1]}x{w.shape[-1]} conv1 but the model's stem is "
                         f"{model.config.stem!r} ({own['conv1.weight'].shape[-1]}x{own['conv1.weight'].shape[-1]})",
                         fix="set model.stem=imagenet to start from ImageNet weights")
    head = ("fc.weight", "fc.bias")
    if skip_head is None:
        skip_head = "fc.weight" in state and "fc.weight" in own and state["fc.weight"].shape != own["fc.weight"].shape
    skipped = [k for k in head if k in own and (skip_head or k not in state)]
    for key, value in own.items():
        if key in skipped or (key.endswith("num_batches_tracked") and key not in state):
            continue
        if key not in state:
            raise ModelError(f"the weights have no {key!r}: they are not a ResNet-18 in the usual layout",
                             fix="use the state dict of a torchvision-style ResNet-18")
        if tuple(state[key].shape) != tuple(value.shape):
            raise ModelError(f"{key!r} has shape {tuple(state[key].shape)} in the weights but {tuple(value.shape)} in the model",
                             fix="match model.input_shape channels / stem / num_classes to the weights")
    load = {k: v for k, v in state.items() if k in own and k not in skipped}
    model.load_state_dict(load, strict=False)
    extra = sorted(set(state) - set(own))
    if extra:
        logger.info("ignored %d keys of the weights that ResNet-18 does not have: %s", len(extra), extra[:3])
    return skipped
