"""Building a classifier from a run directory: resolve its encoder, and the ``reprlab finetune`` config.

:func:`resolve_pretrained` turns ``model.pretrained: RUN_DIR`` of a ``classifier`` into the
encoder's registry name and options (from the run's best checkpoint, ``model.json``) and the
checkpoint stem whose weights :meth:`reprlab.models.classifier.Classifier.load_pretrained`
reads. It refuses a run whose model has no encoder, and one trained on images of another
shape than this run's data (before any run directory exists).

:func:`finetune_config` writes the whole run config of ``reprlab finetune RUN_DIR --labels
100 --freeze encoder``: the pretrained run's data (dataset, folder, resize, channels, scale),
a ``classifier`` on its encoder, the ``classify`` task with the label budget, and for the
regimes that train the encoder a smaller learning rate for it than for the head
(``train.groups.encoder.lr`` and ``train.groups.head.lr``); with ``--unlabelled all`` the
semi-supervised version (FixMatch on the training images outside the budget).

Example:
    >>> cfg = finetune_config("runs/conv_ae-fmnist", labels=100, freeze="all-but-1")  # doctest: +SKIP
    >>> cfg["model"]["pretrained"], cfg["classify"]["labels"], cfg["train"]["groups"]  # doctest: +SKIP
    ('runs/conv_ae-fmnist', 100, {'encoder': {'lr': 0.0001}, 'head': {'lr': 0.001}})
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from reprlab.base.errors import ConfigError, RunDirError
from reprlab.base.io import read_json
from reprlab.capabilities.classification.budgets import parse_budget, parse_unlabelled
from reprlab.models.classifier import WEIGHT_FILE_SUFFIXES, has_encoder, parse_freeze
from reprlab.runs import RunDir

logger = logging.getLogger(__name__)

#: Data settings a fine-tuning run takes over from the pretrained run (the images must match).
DATA_KEYS: tuple[str, ...] = ("name", "data_dir", "path", "labels_path", "test_path", "test_labels_path", "scale",
                              "resize", "channels", "val_fraction", "test_fraction")


def encoder_spec(run_dir: str | Path, tag: str = "best") -> tuple[str, dict[str, Any], Path]:
    """``(model name, model config, checkpoint stem)`` of a run's checkpoint ``tag``; the model must have an encoder.

    Raises :class:`RunDirError` for a path that is not a run directory and
    :class:`ConfigError` when the run's model has no encoder.
    """
    run = RunDir.open(run_dir, kinds=("train",), command="finetune")
    stem = run.model_path(tag)
    try:
        spec = read_json(stem.with_suffix(".json"))
    except (OSError, ValueError) as exc:
        raise RunDirError(f"cannot read the model description of {run.path} ({exc})",
                          fix="point to a run directory written by `reprlab train`") from None
    name = str(spec.get("model"))
    if not has_encoder(name):
        raise ConfigError(f"the model of run {run.path} ({name!r}) has no encoder to put a classifier head on",
                          fix="pretrain an autoencoder, VAE, rotnet or resnet18 run, and fine-tune that")
    return name, dict(spec.get("config") or {}), stem


def resolve_pretrained(cfg: Any) -> None:
    """Resolve ``model.pretrained`` of a ``classifier`` given as a run directory (in place; see the module docstring)."""
    m = cfg.model
    if m.get("name") != "classifier" or not m.get("pretrained"):
        return
    path = Path(str(m["pretrained"]))
    if path.suffix in WEIGHT_FILE_SUFFIXES and not path.with_suffix(".json").is_file():
        if not path.is_file():
            raise ConfigError(f"model.pretrained={path} does not exist", fix="give the path of the weights file")
        return  # a ResNet-18 weights file: read by the model
    if not path.is_dir():
        if path.with_suffix(".json").is_file():
            return  # already a checkpoint stem
        raise RunDirError(f"model.pretrained={path} is neither a run directory nor a weights file",
                          fix="give a run directory printed by `reprlab train`, or a ResNet-18 .pth/.safetensors file")
    name, options, stem = encoder_spec(path)
    shape = tuple(options.get("input_shape", ()))
    if m.get("encoder") not in (None, name):
        raise ConfigError(f"model.encoder={m['encoder']!r} but the run {path} holds a {name!r} model",
                          fix="drop model.encoder: it follows model.pretrained")
    m["encoder"] = name
    m["encoder_options"] = {**options, **(m.get("encoder_options") or {}), "input_shape": list(shape)}
    m["pretrained"] = str(stem)
    m["pretrained_source"] = str(path)
    logger.info("encoder: %s from %s", name, stem)


def finetune_config(run_dir: str | Path, *, labels: Any = 100, freeze: str = "encoder", head: str = "linear",
                    epochs: int = 30, lr: float = 1e-3, encoder_lr: float | None = None, seed: int | None = None,
                    data: str | None = None, unlabelled: Any = "none") -> dict[str, Any]:
    """The config of a ``classify`` run with a head on the encoder of ``run_dir`` (see the module docstring).

    ``encoder_lr`` defaults to ``lr / 10`` for the regimes that train the encoder. ``unlabelled``
    (``all`` or a number) adds FixMatch on that many unlabelled training images
    (``model.semi_supervised=fixmatch``, flips and 2-pixel crops as the weak augmentation). Every
    option is checked here (unknown freeze mode, a budget that is not a number, a run
    without encoder), before any run directory exists.
    """
    parse_budget(labels)
    semi = parse_unlabelled(unlabelled) is not False
    mode, _ = parse_freeze(freeze)
    run = RunDir.open(run_dir, kinds=("train",), command="finetune")
    encoder_spec(run.path)  # refuse a model without encoder now
    source = _read_yaml(run.path / "config.yaml")
    src_data = dict(source.get("data") or {})
    data_cfg = {k: src_data[k] for k in DATA_KEYS if k in src_data}
    if data is not None:
        data_cfg["name"] = data
    train: dict[str, Any] = {"epochs": int(epochs), "lr": float(lr)}
    if mode != "encoder":
        train["groups"] = {"encoder": {"lr": float(encoder_lr if encoder_lr is not None else lr / 10)},
                           "head": {"lr": float(lr)}}
    cfg: dict[str, Any] = {
        "task": "classify",
        "seed": int(source.get("seed", 0) if seed is None else seed),
        "data": data_cfg,
        "model": {"name": "classifier", "pretrained": str(run.path), "freeze": freeze, "head": head},
        "train": train,
        "classify": {"labels": labels},
    }
    if semi:
        cfg["model"]["semi_supervised"] = "fixmatch"
        cfg["classify"]["unlabelled"] = unlabelled
        cfg["data"]["augment"] = {"flip": True, "crop_padding": 2}
    return cfg


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RunDirError(f"cannot read {path}: {exc}", fix="point to a run directory written by `reprlab train`") from None
    return raw if isinstance(raw, dict) else {}
