"""Run configuration: nested pydantic dataclasses loaded from YAML, with dotted overrides.

A config has the core sections ``data``, ``model``, ``train`` and ``eval``, plus ``seed``,
``name``, ``output_dir`` and ``task`` (``reconstruct`` by default; see :mod:`reprlab.tasks`),
and the sections that other packages register with :func:`register_section` (the
clustering capability registers ``cluster``). They are found through the plugin entry
points (:func:`reprlab.base.plugins.load_plugins`): this module imports no capability.
Sections are strict pydantic dataclasses (:mod:`reprlab.config.typed`); ``model`` is a
free dict whose keys are the fields of the chosen model's config dataclass (see ``reprlab
models``), checked against the model registry by :meth:`RunConfig.check_model` before any
data is loaded. Sections stay mutable (``cfg.data.data_dir = ...``); :meth:`RunConfig.validate`
checks them again.

Example:
    >>> cfg = RunConfig.from_dict({"model": {"name": "conv_ae", "latent_dim": 8}})
    >>> cfg = cfg.with_overrides(["train.epochs=3", "model.latent_dim=16"])
    >>> cfg.train.epochs, cfg.model["latent_dim"]
    (3, 16)
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
from dataclasses import field
from pathlib import Path
from typing import Any

import yaml
from pydantic import field_validator

from reprlab.base.errors import ConfigError
from reprlab.base.validation import check_choice, check_float, check_int
from reprlab.config.typed import build, coerce, field_types, is_section, section, unknown_key
from reprlab.config.yamlio import dump_yaml, load_yaml, parse_value

#: The string choices of ``data.scale`` and ``model.output_range``.
SCALES: tuple[str, ...] = ("0_1", "-1_1")
#: ``train.precision``: ``fp32`` (the default) or ``bf16`` (training steps under bfloat16 autocast).
PRECISIONS: tuple[str, ...] = ("fp32", "bf16")


@section
class AugmentConfig:
    """Random training-time augmentation (applied per batch, seeded)."""

    flip: bool = False
    rotation: float = 0.0
    crop_padding: int = 0

    def validate(self) -> None:
        check_float("data.augment.rotation", self.rotation, minimum=0, maximum=180)
        check_int("data.augment.crop_padding", self.crop_padding, minimum=0)


@section
class DataConfig:
    """Which images to use and how to prepare them."""

    name: str = "fashion-mnist-sample"
    data_dir: str | None = None
    path: str | None = None
    labels_path: str | None = None
    test_path: str | None = None
    test_labels_path: str | None = None
    image_shape: list[int] | None = None  # 'arrays' only: [H, W] or [C, H, W] of flat (N, H*W) rows
    download: bool = True
    scale: str = "0_1"
    resize: list[int] | None = None
    channels: int | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    max_train: int | None = None
    max_test: int | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def validate(self) -> None:
        check_choice("data.scale", self.scale, SCALES)
        check_float("data.val_fraction", self.val_fraction, minimum=0, maximum=0.9)
        check_float("data.test_fraction", self.test_fraction, minimum=0, maximum=0.9, exclusive_min=True)
        for key in ("max_train", "max_test"):
            if getattr(self, key) is not None:
                check_int(f"data.{key}", getattr(self, key), minimum=1)
        if self.resize is not None:
            if not isinstance(self.resize, (list, tuple)) or len(self.resize) != 2:
                raise ConfigError(f"data.resize must be [H, W], got {self.resize!r}", fix="e.g. data.resize=[32,32]")
            for v in self.resize:
                check_int("data.resize", v, minimum=4)
        if self.image_shape is not None:
            if not isinstance(self.image_shape, (list, tuple)) or len(self.image_shape) not in (2, 3):
                raise ConfigError(f"data.image_shape must be [H, W] or [C, H, W], got {self.image_shape!r}",
                                  fix="e.g. data.image_shape=[20,30]")
            for v in self.image_shape:
                check_int("data.image_shape", v, minimum=1)
            if self.name != "arrays":
                raise ConfigError(f"data.image_shape is only read for data.name=arrays, not {self.name!r}",
                                  fix="drop data.image_shape (or use data.resize=[H,W] to resize images)")
        if self.channels is not None and self.channels not in (1, 3):
            raise ConfigError(f"data.channels must be 1 or 3, got {self.channels!r}", fix="set data.channels=1 or 3")
        self.augment.validate()


@section
class EarlyStoppingConfig:
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    patience: int | None = None
    monitor: str | None = None  # None: the task's (val/loss for reconstruct); also picks the best checkpoint
    min_delta: float = 0.0

    def validate(self) -> None:
        if self.patience is not None:
            check_int("train.early_stopping.patience", self.patience, minimum=1)
        check_float("train.early_stopping.min_delta", self.min_delta, minimum=0)


@section
class GroupConfig:
    """The optimiser settings of one parameter group (``train.groups.NAME.*``); unset keys follow ``train.*``.

    ``cfg.train.groups`` stays a plain dict of dicts (only the keys that were set); this
    class checks them, with the same rules as the ``train.*`` keys of the same names.

    Example:
        >>> GroupConfig.check("encoder", {"lr": "1e-4", "betas": [0.5, 0.999]})
        {'lr': 0.0001, 'betas': [0.5, 0.999]}
    """

    optimizer: str | None = None
    lr: float | None = None
    betas: list[float] | None = None
    momentum: float | None = None
    weight_decay: float | None = None
    scheduler: str | None = None

    @classmethod
    def check(cls, name: str, settings: dict[str, Any]) -> dict[str, Any]:
        """Check the settings of group ``name``; returns them with their values typed."""
        prefix = f"train.groups.{name}."
        group = build(cls, settings, prefix)
        probe = TrainConfig(**{k: v for k, v in dataclasses.asdict(group).items() if v is not None})
        try:
            probe.validate()
        except ConfigError as exc:  # name the group's key, not train.*
            raise ConfigError(exc.problem.replace("train.", prefix, 1),
                              fix=(exc.fix or "").replace("train.", prefix)) from None
        return {k: getattr(probe, k) for k in settings}


@section
class TrainConfig:
    """Optimisation settings."""

    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    momentum: float = 0.9
    weight_decay: float = 0.0
    l1_penalty: float = 0.0
    scheduler: str = "none"
    step_size: int = 10
    gamma: float = 0.1
    plateau_patience: int = 3
    grad_clip: float | None = None
    groups: dict[str, Any] = field(default_factory=dict)  # per parameter group: GroupConfig's keys, e.g. groups.encoder.lr
    paired_epoch: str = "larger"  # two-domain tasks: an epoch runs over the larger or the smaller domain
    target_batch_size: int | None = None  # two-domain tasks: images of the second domain per step (None: batch_size)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    checkpoint_every: int | None = None  # None: best and last only; N: also epoch_NNNN every N epochs
    max_cpu_minutes: float | None = None  # stop after the epoch in which the run's process used this much CPU time
    device: str = "auto"
    progress: str = "auto"
    tensorboard: bool = False
    num_threads: int | None = None
    channels_last: bool = False  # conv nets: train with NHWC tensors (faster on CPU; BENCHMARKS.md, "Memory layout")
    precision: str = "fp32"  # fp32 | bf16: training steps under bfloat16 autocast (BENCHMARKS.md, "Mixed precision")
    ema_decay: float | None = None  # validate and keep an exponential moving average of the weights (e.g. 0.999)
    sanity_check: bool = True

    @field_validator("progress", mode="before")
    @classmethod
    def _progress_on_off(cls, value: Any) -> Any:
        if isinstance(value, bool):  # YAML 1.1 reads a bare on/off (yes/no) as true/false
            return "on" if value else "off"
        return value

    def validate(self) -> None:
        check_int("train.epochs", self.epochs, minimum=1)
        check_int("train.batch_size", self.batch_size, minimum=1)
        check_choice("train.optimizer", self.optimizer, ("adam", "adamw", "sgd"))
        check_float("train.lr", self.lr, minimum=0, exclusive_min=True)
        if not isinstance(self.betas, (list, tuple)) or len(self.betas) != 2:
            raise ConfigError(f"train.betas must be two numbers [beta1, beta2], got {self.betas!r}",
                              fix="e.g. train.betas=[0.5,0.999]")
        for b in self.betas:
            check_float("train.betas", b, minimum=0, maximum=1)
        self.betas = [float(b) for b in self.betas]
        if not all(isinstance(v, dict) for v in self.groups.values()):
            raise ConfigError(f"train.groups must map group names to settings, got {self.groups!r}",
                              fix="e.g. train.groups.encoder.lr=1e-4")
        self.groups = {str(name): GroupConfig.check(str(name), settings) for name, settings in self.groups.items()}
        check_choice("train.paired_epoch", self.paired_epoch, ("larger", "smaller"))
        if self.target_batch_size is not None:
            check_int("train.target_batch_size", self.target_batch_size, minimum=1)
        check_float("train.momentum", self.momentum, minimum=0, maximum=1)
        check_float("train.weight_decay", self.weight_decay, minimum=0)
        check_float("train.l1_penalty", self.l1_penalty, minimum=0)
        check_choice("train.scheduler", self.scheduler, ("none", "step", "cosine", "plateau"))
        check_int("train.step_size", self.step_size, minimum=1)
        check_float("train.gamma", self.gamma, minimum=0, maximum=1, exclusive_min=True)
        check_int("train.plateau_patience", self.plateau_patience, minimum=0)
        if self.grad_clip is not None:
            check_float("train.grad_clip", self.grad_clip, minimum=0, exclusive_min=True)
        if self.checkpoint_every is not None:
            check_int("train.checkpoint_every", self.checkpoint_every, minimum=1)
        if self.max_cpu_minutes is not None:
            check_float("train.max_cpu_minutes", self.max_cpu_minutes, minimum=0, exclusive_min=True)
        if self.device not in ("auto", "cpu") and not str(self.device).startswith(("cuda", "mps")):
            raise ConfigError(f"train.device must be auto, cpu, cuda[:N] or mps, got {self.device!r}",
                              fix="set train.device=auto")
        check_choice("train.progress", self.progress, ("auto", "on", "off"))
        check_choice("train.precision", self.precision, PRECISIONS)
        if self.num_threads is not None:
            check_int("train.num_threads", self.num_threads, minimum=1)
        if self.ema_decay is not None:
            check_float("train.ema_decay", self.ema_decay, minimum=0, maximum=1, exclusive_min=True)
            if self.ema_decay >= 1:
                raise ConfigError(f"train.ema_decay={self.ema_decay} never moves the average from the initial weights",
                                  fix="use a decay in (0, 1), e.g. train.ema_decay=0.999, or drop it")
        self.early_stopping.validate()


@section
class EvalConfig:
    """What to evaluate and draw at the end of training."""

    batch_size: int = 256
    max_images: int | None = None
    figures: bool = True
    show: list[int] = field(default_factory=lambda: list(range(8)))
    k: int = 8
    report: bool = True  # write report.html (with a quick analysis) at the end of training

    def validate(self) -> None:
        check_int("eval.batch_size", self.batch_size, minimum=1)
        if self.max_images is not None:
            check_int("eval.max_images", self.max_images, minimum=1)
        check_int("eval.k", self.k, minimum=1, maximum=64)


@section
class RunConfig:
    """A whole run: what to train on, which model, how to train and evaluate."""

    seed: int = 0
    name: str | None = None
    output_dir: str = "runs"
    task: str = "reconstruct"
    data: DataConfig = field(default_factory=DataConfig)
    model: dict[str, Any] = field(default_factory=lambda: {"name": "conv_ae", "latent_dim": 16})
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    sections: dict[str, Any] = field(default_factory=dict)  # registered sections, by name (also cfg.<name>)

    def __post_init__(self) -> None:
        for name, cls in _REGISTERED.items():  # every registered section exists, with its defaults
            if name not in self.sections:
                self.sections[name] = cls()

    def __getattr__(self, name: str) -> Any:
        sections = self.__dict__.get("sections")
        if sections is not None and name in sections:
            return sections[name]
        if sections is not None and name in _REGISTERED:
            sections[name] = _REGISTERED[name]()
            return sections[name]
        raise AttributeError(f"RunConfig has no section {name!r}")

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> "RunConfig":
        """Build and validate from a plain dict (unknown keys are errors with suggestions).

        Everything is checked here, the model's name and options included, before any data
        is loaded (see :meth:`validate`).
        """
        if raw is not None and not isinstance(raw, dict):
            raise ConfigError(f"config must be a mapping, got {raw!r}", fix="see configs/ for examples")
        raw = dict(raw or {})
        core = [f.name for f in dataclasses.fields(cls) if f.name != "sections"]
        extra = {k: raw.pop(k) for k in list(raw) if k not in core}
        if extra and set(extra) - set(_REGISTERED):
            from reprlab.base.plugins import load_plugins

            load_plugins()  # sections of the capability packages register on import
        sections = {}
        for key, value in extra.items():
            if key not in _REGISTERED:
                raise unknown_key(key, "", sorted(set(core) | set(_REGISTERED)))
            sections[key] = build(_REGISTERED[key], value, f"{key}.")
        cfg = build(cls, raw, "", hidden=("sections",))
        cfg.sections.update(sections)
        cfg.validate()
        return cfg

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> "RunConfig":
        """Load ``path`` and apply ``key=value`` overrides (see :mod:`reprlab.config.yamlio` for how YAML is read)."""
        return cls.from_dict(apply_overrides(read_config_file(path), overrides))

    def with_overrides(self, overrides: list[str] | tuple[str, ...]) -> "RunConfig":
        """A new config with dotted ``key=value`` overrides applied."""
        return RunConfig.from_dict(apply_overrides(self.to_dict(), overrides))

    def validate(self) -> None:
        """Check every value (again: attributes may have been set since), the model's included.

        Types are checked by pydantic, ranges and choices by the sections' ``validate()``,
        cross-section rules by the registered sections' optional ``check_run(cfg)``, and the
        model's name and options by :meth:`check_model`.
        """
        _recheck(self, "", hidden=("sections",))
        check_int("seed", self.seed, minimum=0)
        if not isinstance(self.model.get("name"), str):
            raise ConfigError("model.name is missing", fix="set model.name, e.g. model.name=conv_ae (see `reprlab models`)")
        if self.name is not None and (not self.name or "/" in self.name or self.name.startswith(".")):
            raise ConfigError(f"name {self.name!r} is not a valid run directory name", fix="use letters, digits, - and _")
        if not self.task:
            raise ConfigError(f"task must be a task name, got {self.task!r}", fix="e.g. task=reconstruct")
        self.data.validate()
        self.train.validate()
        self.eval.validate()
        for name, sec in self.sections.items():
            _recheck(sec, f"{name}.")
            sec.validate()
        for sec in self.sections.values():
            if hasattr(sec, "check_run"):
                sec.check_run(self)
        self.check_model()

    def check_model(self) -> None:
        """Check ``model.name`` and every ``model.*`` key and value, without data and without building the model.

        The keys must be fields of the model's config dataclass (``reprlab models`` lists
        them); the values are checked by building that dataclass with a stand-in
        ``input_shape`` (``data.channels`` and ``data.resize`` where set, else a large
        square: what only the data can tell is checked when the model is built). YAML
        quirks are repaired by the field's type, as for the other sections.

        Example:
            >>> cfg = RunConfig.from_dict({"model": {"name": "conv_ae"}})
            >>> cfg.model["laten_dim"] = 8
            >>> cfg.check_model()  # doctest: +IGNORE_EXCEPTION_DETAIL
            Traceback (most recent call last):
            reprlab.base.errors.ConfigError: unknown config key model.laten_dim. Fix: did you mean model.latent_dim? ...
        """
        from reprlab.models.registry import get_model_entry

        name = self.model.get("name")
        if not isinstance(name, str):
            raise ConfigError(f"model.name must be a model name, got {name!r}", fix="e.g. model.name=conv_ae (see `reprlab models`)")
        _, config_cls = get_model_entry(name)
        types_ = field_types(config_cls)
        valid = sorted(types_)
        for key in list(self.model):
            if key == "name":
                continue
            if key not in types_:
                raise unknown_key(key, "model.", valid, where=f" of model {name}")
            self.model[key] = coerce(types_[key], self.model[key])
        kwargs = self.model_kwargs()
        if "output_range" in kwargs and kwargs["output_range"] != self.data.scale:
            raise ConfigError(f"model.output_range={kwargs['output_range']!r} does not match data.scale={self.data.scale!r}",
                              fix="set both to the same value, or drop model.output_range (it follows data.scale)")
        kwargs.setdefault("output_range", self.data.scale)
        if "input_shape" not in kwargs:
            size = list(self.data.resize or (_STAND_IN_SIZE, _STAND_IN_SIZE))
            kwargs["input_shape"] = (self.data.channels or 1, *size)
        try:
            config_cls(**kwargs)
        except ConfigError as exc:  # name the config keys: "padding=3 ..." -> "model.padding=3 ..."
            alt = "|".join(map(re.escape, valid))
            named = re.compile(rf"(?<![\w.])({alt})(?=\s*=|\s+must\b)")
            verbs = re.compile(rf"\b(set|drop|leave|unset) ({alt})\b")
            problem, fix = (verbs.sub(r"\1 model.\2", named.sub(r"model.\1", text)) for text in (exc.problem, exc.fix or ""))
            if not problem.startswith("model."):
                problem = f"model {name!r}: {problem}"
            raise ConfigError(problem, fix=fix or None) from None
        except TypeError as exc:  # a required option without a default
            raise ConfigError(f"model {name!r}: {exc}", fix="set every required model.* option (see `reprlab models`)") from None

    def to_dict(self) -> dict[str, Any]:
        """A plain, YAML-ready dict: core keys, then the registered sections by name."""
        out = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "sections"}
        out.update({name: _plain(sec) for name, sec in sorted(self.sections.items())})
        return out

    def to_yaml(self) -> str:
        """The config as YAML text; :meth:`from_yaml` reads it back to an equal config."""
        return dump_yaml(self.to_dict())

    def model_kwargs(self) -> dict[str, Any]:
        """The model section without ``name``: keyword arguments of ``create_model``."""
        return {k: v for k, v in self.model.items() if k != "name"}


#: The stand-in image side used by :meth:`RunConfig.check_model` when the data decides the size.
_STAND_IN_SIZE = 1024


def _plain(value: Any) -> Any:
    """Sections to dicts, tuples to lists, paths to strings (a deep copy)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return copy.deepcopy(value)


def _recheck(obj: Any, prefix: str, *, hidden: tuple[str, ...] = ()) -> None:
    """Type-check ``obj`` again (its attributes may have been assigned) and keep the repaired values."""
    fresh = build(type(obj), {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.name not in hidden},
                  prefix, hidden=hidden)
    for f in dataclasses.fields(obj):
        if f.name in hidden:
            continue
        current, new = getattr(obj, f.name), getattr(fresh, f.name)
        if is_section(type(new)) and type(current) is type(new):
            _recheck(current, f"{prefix}{f.name}.")
        else:
            setattr(obj, f.name, new)


#: Sections registered by other packages: top-level config key -> section class with ``validate()``.
_REGISTERED: dict[str, type] = {}


def register_section(name: str) -> Any:
    """Class decorator registering a config section under the top-level key ``name``.

    The class is a :func:`~reprlab.config.typed.section` (a pydantic dataclass; a plain
    dataclass is converted) with defaults for every field and a ``validate()`` method that
    raises :class:`ConfigError` naming ``name.field``; it may add ``check_run(cfg)`` for
    rules that involve other sections. Its nested section fields are built too.

    Example:
        >>> @register_section("doc_example")
        ... @section
        ... class DocExample:
        ...     size: int = 3
        ...     def validate(self):
        ...         check_int("doc_example.size", self.size, minimum=1)
        >>> RunConfig.from_dict({"doc_example": {"size": 5}}).doc_example.size
        5
        >>> _ = _REGISTERED.pop("doc_example")
    """
    def wrap(cls: type) -> type:
        cls = section(cls)
        _REGISTERED[name] = cls
        return cls

    return wrap


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` strings (values parsed as YAML) to a nested dict copy.

    Values are read with :func:`reprlab.config.yamlio.parse_value`: ``1e-3`` is a number,
    ``0_1`` and ``-1_1`` stay strings (quoted or not); the section's field types repair the
    rest when the config is built.

    Example:
        >>> apply_overrides({"train": {"lr": 0.1}}, ["train.lr=1e-3", "model.channels=[8,16]", "data.scale=-1_1"])
        {'train': {'lr': 0.001}, 'model': {'channels': [8, 16]}, 'data': {'scale': '-1_1'}}
    """
    out = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value", fix="e.g. model.latent_dim=16")
        key, _, text = item.partition("=")
        value = parse_value(text)
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return out


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in the YAML config file ``path`` (read as :mod:`reprlab.config.yamlio` reads YAML).

    A missing file, invalid YAML or a top level that is not a mapping is one :class:`ConfigError`.

    Example:
        >>> read_config_file("/nonexistent.yaml")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        reprlab.base.errors.ConfigError: config file /nonexistent.yaml does not exist. Fix: ...
    """
    path = Path(path)
    try:
        raw = load_yaml(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist", fix="pass the path of a YAML config (see configs/)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}",
                          fix="fix the YAML syntax at the reported line") from None
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must contain a mapping at top level", fix="see configs/conv_ae.yaml")
    return raw or {}
