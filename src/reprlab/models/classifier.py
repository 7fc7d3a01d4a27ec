"""``classifier``: a classification head on the encoder of any reprlab model (or a ResNet-18 trunk).

The encoder is any registered model with an ``encode`` (an autoencoder, a VAE, ``rotnet``,
``resnet18``, another ``classifier``), built from ``encoder`` (its registry name) and
``encoder_options`` (its config fields; ``input_shape`` and ``output_range`` are this
model's). Only what ``encode`` uses is kept: top-level parts that get no gradient from
``encode`` (a decoder, a rotation head, ResNet-18's ``fc``) are dropped when the model is
built. The head maps the code to ``num_classes`` logits: ``linear`` (dropout + linear) or
``mlp`` (linear, ReLU, dropout, linear); ``feature_norm`` puts a BatchNorm without affine
parameters before it (the usual linear-probe normalisation of codes of any scale).

Training regimes (``freeze``):

* ``"encoder"``: the encoder is frozen, BatchNorm statistics included (a linear probe with
  ``head="linear"``); only the ``head`` parameter group trains;
* ``"all-but-N"``: the last ``N`` encoder blocks train, the rest is frozen. Blocks are the
  encoder's ``blocks()`` where it has them (ResNet-18: the stem and the eight
  BasicBlocks), else its layers with parameters in the order ``encode`` runs them, a norm
  layer counted with the conv/linear before it;
* ``"none"``: everything trains (full fine-tuning).

Semi-supervised training (``semi_supervised="fixmatch"``, with ``classify.unlabelled``): each
labelled batch comes with unlabelled images, and confident predictions on their weak view
teach the strong view (:mod:`reprlab.models.semisup`; ``unlabelled_weight``, ``confidence``,
``strong_augment``, ``distribution_alignment``). ``semi_supervised="flexmatch"`` replaces the one
``confidence`` threshold by FlexMatch's per-class thresholds.

The parameter groups are ``encoder`` (its trainable part, when there is one) and ``head``,
so a config gives them their own settings: ``train.groups.encoder.lr=1e-4``,
``train.groups.head.lr=1e-3``.

Pretrained weights (``pretrained``) are **not** read by the constructor (a saved classifier
reloads without its source); :meth:`Classifier.load_pretrained` reads them (the
``classify`` task calls it before training). ``pretrained`` is either the checkpoint stem
of a reprlab model (``RUN/checkpoints/best/model``: ``model.json`` + ``model.safetensors``;
its encoder weights are reused) or, for ``encoder="resnet18"``, a torchvision-layout
ResNet-18 state dict file (``.safetensors`` or ``.pth`` read with ``weights_only=True``;
see :func:`reprlab.models.resnet18.load_imagenet_weights`). The ``classify`` task turns a
run directory given as ``model.pretrained`` into the checkpoint stem and the encoder's
name and options.

Example:
    >>> import torch
    >>> from reprlab.models import create_model
    >>> m = create_model("classifier", input_shape=(1, 28, 28), encoder="conv_ae",
    ...                  encoder_options={"latent_dim": 8, "channels": [4, 8]}, freeze="encoder")
    >>> sorted(m.optimizer_groups()), m.code_size, hasattr(m.encoder, "decoder") and type(m.encoder.decoder).__name__
    (['head'], 8, 'Identity')
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reprlab.base.errors import ConfigError, ModelError
from reprlab.models.base import ModelConfig, ModelOutput, ReprModel, check_choice, check_float, check_int
from reprlab.models.registry import create_model, get_model_entry, register_model
from reprlab.models.resnet18 import ClassifierMixin, ResNet18, classification_terms, load_imagenet_weights
from reprlab.models.semisup import SEMI_SUPERVISED, check_strong_augment

logger = logging.getLogger(__name__)

HEADS: tuple[str, ...] = ("linear", "mlp")
_FREEZE = re.compile(r"^(none|encoder|all-but-(\d+))$")
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d, nn.LayerNorm)
#: Suffixes of a torchvision-style weights file (anything else is a reprlab checkpoint stem).
WEIGHT_FILE_SUFFIXES: tuple[str, ...] = (".pth", ".pt", ".bin", ".safetensors")


def parse_freeze(freeze: str) -> tuple[str, int]:
    """``"none"`` / ``"encoder"`` / ``"all-but-N"`` -> ``(mode, N)``; :class:`ConfigError` otherwise.

    Example:
        >>> parse_freeze("all-but-2"), parse_freeze("encoder")
        (('all-but', 2), ('encoder', 0))
    """
    m = _FREEZE.match(str(freeze))
    if not m:
        raise ConfigError(f"freeze={freeze!r} is not a freeze mode",
                          fix="use encoder (linear probe), none (full fine-tuning) or all-but-N (train the last N blocks)")
    if m.group(2) is None:
        return m.group(1), 0
    n = int(m.group(2))
    if n < 1:
        raise ConfigError(f"freeze={freeze!r} trains no block", fix="use all-but-N with N >= 1, or freeze=encoder")
    return "all-but", n


def has_encoder(model_name: str) -> bool:
    """Whether registered model ``model_name`` has an ``encode`` of its own.

    Example:
        >>> has_encoder("conv_ae"), has_encoder("resnet18")
        (True, True)
    """
    cls, _ = get_model_entry(model_name)
    enc = getattr(cls, "encode", None)
    return enc is not None and enc is not ReprModel.encode


@dataclass
class ClassifierConfig(ModelConfig):
    """Options of ``classifier`` (see the module docstring).

    ``encoder``/``encoder_options``: the encoder's registry name and config fields;
    ``pretrained``: where its weights come from (``None``: random initialisation);
    ``pretrained_source``: a note of where they came from (the run directory), kept in the
    config for the record; ``num_classes``; ``head`` (``linear``/``mlp``), ``head_hidden``
    (MLP width), ``dropout``, ``feature_norm``; ``label_smoothing``; ``freeze``.
    ``latent_dim`` is not used (the code size is the encoder's).

    Example:
        >>> ClassifierConfig(input_shape=(1, 28, 28), encoder="conv_ae", freeze="all-but-1").freeze
        'all-but-1'
    """

    encoder: str = "resnet18"
    encoder_options: dict[str, Any] = field(default_factory=dict)
    pretrained: str | None = None
    pretrained_source: str = ""
    num_classes: int = 10
    head: str = "linear"
    head_hidden: int = 256
    dropout: float = 0.0
    feature_norm: bool = False
    label_smoothing: float = 0.0
    freeze: str = "none"
    semi_supervised: str = "none"
    unlabelled_weight: float = 1.0
    confidence: float = 0.95
    strong_augment: dict[str, Any] = field(default_factory=dict)
    distribution_alignment: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.encoder, str):
            raise ConfigError(f"encoder={self.encoder!r} is not an encoder name",
                              fix="name a model with an encoder, e.g. encoder=conv_ae or encoder=resnet18")
        if not has_encoder(self.encoder):
            raise ConfigError(f"model {self.encoder!r} has no encoder (no encode method) to put a head on",
                              fix="use an autoencoder, VAE, rotnet or resnet18 run / model as the encoder")
        if not isinstance(self.encoder_options, dict):
            raise ConfigError(f"encoder_options must be a mapping, got {self.encoder_options!r}",
                              fix="e.g. encoder_options={latent_dim: 32, channels: [32, 64]}")
        self.encoder_options = dict(self.encoder_options)
        shape = self.encoder_options.get("input_shape")
        if shape is not None and tuple(int(v) for v in shape) != tuple(self.input_shape):
            raise ModelError(f"the pretrained encoder takes images of shape {tuple(shape)} but the data has "
                             f"{tuple(self.input_shape)}",
                             fix=f"resize the data to the encoder's input (data.resize=[{shape[1]},{shape[2]}] "
                                 f"data.channels={shape[0]}), or pretrain on data of this shape")
        rng = self.encoder_options.get("output_range")
        if rng is not None and rng != self.output_range:
            raise ConfigError(f"the encoder was trained on images scaled {rng} but data.scale is {self.output_range}",
                              fix=f"set data.scale={rng}")
        if self.pretrained is not None and not isinstance(self.pretrained, str):
            raise ConfigError(f"pretrained must be a path, got {self.pretrained!r}",
                              fix="give a run directory, a checkpoint stem or a weights file")
        check_int("num_classes", self.num_classes, minimum=2)
        check_choice("head", self.head, HEADS)
        check_int("head_hidden", self.head_hidden, minimum=1)
        check_float("dropout", self.dropout, minimum=0, maximum=1)
        if self.dropout >= 1:
            raise ConfigError(f"dropout={self.dropout} drops every feature", fix="use a dropout in [0, 1)")
        if not isinstance(self.feature_norm, bool):
            raise ConfigError(f"feature_norm must be true or false, got {self.feature_norm!r}", fix="feature_norm=true")
        check_float("label_smoothing", self.label_smoothing, minimum=0, maximum=0.5)
        parse_freeze(self.freeze)
        check_choice("semi_supervised", self.semi_supervised, SEMI_SUPERVISED)
        check_float("unlabelled_weight", self.unlabelled_weight, minimum=0)
        check_float("confidence", self.confidence, minimum=0, maximum=1)
        if not isinstance(self.distribution_alignment, bool):
            raise ConfigError(f"distribution_alignment must be true or false, got {self.distribution_alignment!r}",
                              fix="distribution_alignment=true")
        try:
            self.strong_augment = check_strong_augment(self.strong_augment)
        except ValueError as exc:
            raise ConfigError(str(exc), fix="e.g. strong_augment={crop_scale: [0.4, 1], brightness: 0.4}, "
                                            "or drop it for the defaults") from None
        if self.rotation_beta:
            raise ConfigError("a classifier has no rotation self-supervision", fix="set model.rotation_beta=0")


@register_model("classifier", config=ClassifierConfig)
class Classifier(ClassifierMixin, ReprModel):
    """A head on a reprlab encoder, with frozen / partially frozen / fully trained regimes.

    Example:
        >>> m = Classifier(ClassifierConfig(input_shape=(1, 16, 16), encoder="conv_ae", num_classes=3,
        ...                                 encoder_options={"latent_dim": 4, "channels": [4]}, freeze="all-but-1"))
        >>> len(m.encoder_blocks()), [n for n, p in m.encoder.named_parameters() if p.requires_grad]
        (2, ['encoder.to_latent.1.weight', 'encoder.to_latent.1.bias'])
    """

    config: ClassifierConfig

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__(config)
        c = config
        self.label_smoothing = float(c.label_smoothing)
        self.semi_supervised, self.unlabelled_weight = c.semi_supervised, float(c.unlabelled_weight)
        self.confidence, self.strong_augment = float(c.confidence), dict(c.strong_augment)
        self.distribution_alignment = c.distribution_alignment
        opts = {**c.encoder_options, "input_shape": tuple(c.input_shape), "output_range": c.output_range}
        self.encoder = create_model(c.encoder, **opts)
        self.code_size = self._strip_unused()
        self._blocks = self._find_blocks()
        layers: list[nn.Module] = [nn.BatchNorm1d(self.code_size, affine=False)] if c.feature_norm else []
        if c.head == "linear":
            layers += ([nn.Dropout(c.dropout)] if c.dropout > 0 else []) + [nn.Linear(self.code_size, c.num_classes)]
        else:
            layers += [nn.Linear(self.code_size, c.head_hidden), nn.ReLU(inplace=True)]
            layers += ([nn.Dropout(c.dropout)] if c.dropout > 0 else []) + [nn.Linear(c.head_hidden, c.num_classes)]
        self.head = nn.Sequential(*layers)
        self._frozen: list[nn.Module] = []
        self._apply_freeze()

    # -- construction ---------------------------------------------------------------------
    def _probe(self) -> torch.Tensor:
        return torch.rand(2, *self.config.input_shape, generator=torch.Generator().manual_seed(0))

    def _strip_unused(self) -> int:
        """Drop top-level parts of the encoder that ``encode`` never uses; returns the code size."""
        enc = self.encoder
        was = enc.training
        enc.train()
        try:
            z = enc.encode(self._probe())
        except NotImplementedError:
            raise ConfigError(f"model {self.config.encoder!r} has no encoder to put a head on",
                              fix="use an autoencoder, VAE, rotnet or resnet18 as the encoder") from None
        z.flatten(1).float().sum().backward()
        for name, child in list(enc.named_children()):
            params = list(child.parameters())
            if params and all(p.grad is None for p in params):
                setattr(enc, name, nn.Identity())
        for p in enc.parameters():
            if p.grad is None:
                p.requires_grad_(False)  # a part of a used module that encode skips: kept, never trained
            p.grad = None
        enc.train(was)
        return int(z.flatten(1).shape[1])

    def _find_blocks(self) -> list[list[nn.Module]]:
        """The encoder's blocks: its ``blocks()``, else its parameter layers in the order ``encode`` runs them."""
        enc = self.encoder
        if hasattr(enc, "blocks"):
            return [[b] for b in enc.blocks()]
        order: list[nn.Module] = []
        hooks = [m.register_forward_pre_hook(lambda mod, _inp: order.append(mod) if mod not in order else None)
                 for m in enc.modules() if any(True for _ in m.parameters(recurse=False))]
        was = enc.training
        enc.eval()
        try:
            with torch.no_grad():
                enc.encode(self._probe())
        finally:
            for h in hooks:
                h.remove()
            enc.train(was)
        blocks: list[list[nn.Module]] = []
        for m in order:
            if isinstance(m, _NORMS) and blocks:
                blocks[-1].append(m)
            else:
                blocks.append([m])
        return blocks

    def _apply_freeze(self) -> None:
        mode, n = parse_freeze(self.config.freeze)
        if mode == "none":
            return
        if mode == "encoder":
            frozen_modules = [self.encoder]
        else:
            if n > len(self._blocks):
                raise ConfigError(f"freeze=all-but-{n} but the encoder {self.config.encoder!r} has only "
                                  f"{len(self._blocks)} blocks", fix=f"use all-but-N with N <= {len(self._blocks)}, "
                                                                     "or freeze=none")
            trainable = {id(p) for block in self._blocks[-n:] for m in block for p in m.parameters()}
            for p in self.encoder.parameters():
                if id(p) not in trainable:
                    p.requires_grad_(False)
            frozen_modules = [m for block in self._blocks[:-n] for m in block]
        for m in frozen_modules:
            for p in m.parameters():
                p.requires_grad_(False)
        self._frozen = frozen_modules
        self.train(self.training)

    def train(self, mode: bool = True) -> "Classifier":
        """Like ``nn.Module.train``, but frozen encoder parts stay in eval mode (BatchNorm statistics fixed)."""
        super().train(mode)
        for m in getattr(self, "_frozen", []):
            m.eval()
        return self

    # -- interface ------------------------------------------------------------------------
    def encoder_blocks(self) -> list[list[nn.Module]]:
        """The encoder's blocks, input to output (``freeze=all-but-N`` trains the last N)."""
        return list(self._blocks)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's code ``(N, code_size)``."""
        return self.encoder.encode(x).flatten(1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores ``(N, num_classes)``."""
        return self.head(self.encode(x))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> ModelOutput:
        features = self.encode(x)
        logits = self.head(features)
        if labels is None:
            zero = logits.sum() * 0.0
            return ModelOutput(loss=zero, terms={"loss": zero}, latent=features,
                               extras={"logits": logits, "features": features})
        terms = classification_terms(logits, labels, label_smoothing=self.label_smoothing)
        return ModelOutput(loss=terms["loss"], terms=terms, latent=features,
                           extras={"logits": logits, "features": features})

    def optimizer_groups(self) -> dict[str, Any]:
        """``encoder`` (its trainable parameters, if any) and ``head``."""
        groups: dict[str, Any] = {}
        enc = [p for p in self.encoder.parameters() if p.requires_grad]
        if enc:
            groups["encoder"] = enc
        groups["head"] = [p for p in self.head.parameters() if p.requires_grad]
        return groups

    # -- pretrained weights ---------------------------------------------------------------
    def load_pretrained(self) -> str:
        """Load the encoder weights named by ``config.pretrained`` (no-op when ``None``); returns what was loaded.

        Raises :class:`ModelError` when the file is missing, belongs to another
        architecture, or lacks some of the encoder's weights.
        """
        src = self.config.pretrained
        if src is None:
            return "random initialisation"
        path = Path(src)
        if path.suffix in WEIGHT_FILE_SUFFIXES and not path.with_suffix(".json").is_file():
            if not isinstance(self.encoder, ResNet18):
                raise ModelError(f"pretrained={src} is a weights file, which only a resnet18 encoder can take "
                                 f"(the encoder is {self.config.encoder!r})",
                                 fix="give a reprlab run directory or checkpoint for other encoders")
            load_imagenet_weights(self.encoder, path, skip_head=True)
            return f"ResNet-18 weights file {path}"
        return self._load_reprlab_checkpoint(path)

    def _load_reprlab_checkpoint(self, stem: Path) -> str:
        from reprlab.base.io import read_json
        from safetensors.torch import load_file

        stem = stem.with_suffix("") if stem.suffix in (".json", ".safetensors") else stem
        json_path, weights = stem.with_suffix(".json"), stem.with_suffix(".safetensors")
        if not json_path.is_file() or not weights.is_file():
            raise ModelError(f"pretrained={stem} is neither a weights file nor a reprlab checkpoint "
                             f"({json_path.name} + {weights.name})",
                             fix="give a run directory (model.pretrained=runs/NAME) or RUN/checkpoints/best/model")
        spec = read_json(json_path)
        if spec.get("model") != self.config.encoder:
            raise ModelError(f"the checkpoint {stem} holds a {spec.get('model')!r} model but the encoder is "
                             f"{self.config.encoder!r}", fix=f"set model.encoder={spec.get('model')}")
        shape = tuple(spec.get("config", {}).get("input_shape", self.config.input_shape))
        if shape != tuple(self.config.input_shape):
            raise ModelError(f"the pretrained encoder takes images of shape {shape} but the data has "
                             f"{tuple(self.config.input_shape)}",
                             fix=f"resize the data (data.resize=[{shape[1]},{shape[2]}] data.channels={shape[0]})")
        state = load_file(str(weights))
        own = self.encoder.state_dict()
        missing = [k for k in own if k not in state]
        misshapen = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
        if missing or misshapen:
            raise ModelError(f"the checkpoint {stem} does not fit the encoder: missing {missing[:3]}, "
                             f"different shapes {misshapen[:3]}",
                             fix="set model.encoder_options to the pretrained model's config (the classify task does "
                                 "this when model.pretrained is a run directory)")
        self.encoder.load_state_dict({k: state[k] for k in own}, strict=True)
        return f"{spec.get('model')} checkpoint {stem}"
