"""Run configuration: nested dataclasses loaded from YAML, with dotted overrides.

A config has the core sections ``data``, ``model``, ``train`` and ``eval``, plus ``seed``,
``name``, ``output_dir`` and ``task`` (``reconstruct`` by default; see :mod:`reprlab.tasks`),
and the sections that other packages register with :func:`register_section` (the
clustering capability registers ``cluster``). They are found through the plugin entry
points (:func:`reprlab.base.plugins.load_plugins`): this module imports no capability. ``model`` is free-form: its keys are the fields of the
chosen model's config dataclass (see ``reprlab models``) and are validated there.

Example:
    >>> cfg = RunConfig.from_dict({"model": {"name": "conv_ae", "latent_dim": 8}})
    >>> cfg = cfg.with_overrides(["train.epochs=3", "model.latent_dim=16"])
    >>> cfg.train.epochs, cfg.model["latent_dim"]
    (3, 16)
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reprlab.base.errors import ConfigError
from reprlab.base.validation import check_choice, check_float, check_int


@dataclass
class AugmentConfig:
    """Random training-time augmentation (applied per batch, seeded)."""

    flip: bool = False
    rotation: float = 0.0
    crop_padding: int = 0

    def validate(self) -> None:
        check_float("data.augment.rotation", self.rotation, minimum=0, maximum=180)
        check_int("data.augment.crop_padding", self.crop_padding, minimum=0)


@dataclass
class DataConfig:
    """Which images to use and how to prepare them."""

    name: str = "fashion-mnist-sample"
    data_dir: str | None = None
    path: str | None = None
    labels_path: str | None = None
    test_path: str | None = None
    test_labels_path: str | None = None
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
        check_choice("data.scale", self.scale, ("0_1", "-1_1"))
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
            self.resize = [int(v) for v in self.resize]
        if self.channels is not None and self.channels not in (1, 3):
            raise ConfigError(f"data.channels must be 1 or 3, got {self.channels!r}", fix="set data.channels=1 or 3")
        self.augment.validate()


@dataclass
class EarlyStoppingConfig:
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    patience: int | None = None
    monitor: str | None = None  # None: the task's (val/loss for reconstruct); also picks the best checkpoint
    min_delta: float = 0.0

    def validate(self) -> None:
        if self.patience is not None:
            check_int("train.early_stopping.patience", self.patience, minimum=1)
        check_float("train.early_stopping.min_delta", self.min_delta, minimum=0)


@dataclass
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
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # per parameter group: lr, betas, weight_decay, ...
    paired_epoch: str = "larger"  # two-domain tasks: an epoch runs over the larger or the smaller domain
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    checkpoint_every: int = 1
    device: str = "auto"
    progress: str = "auto"
    tensorboard: bool = False
    num_threads: int | None = None
    sanity_check: bool = True

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
        if not isinstance(self.groups, dict) or not all(isinstance(v, dict) for v in self.groups.values()):
            raise ConfigError(f"train.groups must map group names to settings, got {self.groups!r}",
                              fix="e.g. train.groups.encoder.lr=1e-4")
        check_choice("train.paired_epoch", self.paired_epoch, ("larger", "smaller"))
        check_float("train.momentum", self.momentum, minimum=0, maximum=1)
        check_float("train.weight_decay", self.weight_decay, minimum=0)
        check_float("train.l1_penalty", self.l1_penalty, minimum=0)
        check_choice("train.scheduler", self.scheduler, ("none", "step", "cosine", "plateau"))
        check_int("train.step_size", self.step_size, minimum=1)
        check_float("train.gamma", self.gamma, minimum=0, maximum=1, exclusive_min=True)
        check_int("train.plateau_patience", self.plateau_patience, minimum=0)
        if self.grad_clip is not None:
            check_float("train.grad_clip", self.grad_clip, minimum=0, exclusive_min=True)
        check_int("train.checkpoint_every", self.checkpoint_every, minimum=1)
        if self.device not in ("auto", "cpu") and not str(self.device).startswith(("cuda", "mps")):
            raise ConfigError(f"train.device must be auto, cpu, cuda[:N] or mps, got {self.device!r}",
                              fix="set train.device=auto")
        if isinstance(self.progress, bool):  # YAML 1.1 reads a bare on/off as true/false
            self.progress = "on" if self.progress else "off"
        check_choice("train.progress", self.progress, ("auto", "on", "off"))
        if self.num_threads is not None:
            check_int("train.num_threads", self.num_threads, minimum=1)
        self.early_stopping.validate()


@dataclass
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


@dataclass
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
        """Build and validate from a plain dict (unknown keys are errors with suggestions)."""
        raw = dict(raw or {})
        if not isinstance(raw, dict):
            raise ConfigError(f"config must be a mapping, got {raw!r}", fix="see configs/ for examples")
        core = {f.name for f in dataclasses.fields(cls)} - {"sections"}
        extra = {k: raw.pop(k) for k in list(raw) if k not in core}
        if extra and set(extra) - set(_REGISTERED):
            from reprlab.base.plugins import load_plugins

            load_plugins()  # sections of the capability packages register on import
        sections = {}
        for key, value in extra.items():
            if key not in _REGISTERED:
                known = sorted(core | set(_REGISTERED))
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"did you mean {close[0]}? " if close else ""
                raise ConfigError(f"unknown config key {key}", fix=f"{hint}valid keys: {', '.join(known)}")
            sections[key] = _build(_REGISTERED[key], value or {}, f"{key}.")
        cfg = _build(cls, raw, "")
        cfg.sections.update(sections)
        cfg.validate()
        return cfg

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> "RunConfig":
        """Load ``path`` and apply ``key=value`` overrides."""
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist", fix="pass the path of a YAML config (see configs/)") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}",
                              fix="fix the YAML syntax at the reported line") from None
        if raw is not None and not isinstance(raw, dict):
            raise ConfigError(f"config file {path} must contain a mapping at top level", fix="see configs/conv_ae.yaml")
        return cls.from_dict(apply_overrides(raw or {}, overrides))

    def with_overrides(self, overrides: list[str] | tuple[str, ...]) -> "RunConfig":
        """A new config with dotted ``key=value`` overrides applied."""
        return RunConfig.from_dict(apply_overrides(self.to_dict(), overrides))

    def validate(self) -> None:
        check_int("seed", self.seed, minimum=0)
        if not isinstance(self.model, dict) or not isinstance(self.model.get("name"), str):
            raise ConfigError("model.name is missing", fix="set model.name, e.g. model.name=conv_ae (see `reprlab models`)")
        if self.name is not None and (not str(self.name) or "/" in str(self.name) or str(self.name).startswith(".")):
            raise ConfigError(f"name {self.name!r} is not a valid run directory name", fix="use letters, digits, - and _")
        if not isinstance(self.task, str) or not self.task:
            raise ConfigError(f"task must be a task name, got {self.task!r}", fix="e.g. task=reconstruct")
        self.data.validate()
        self.train.validate()
        self.eval.validate()
        for section in self.sections.values():
            section.validate()

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: dataclasses.asdict(getattr(self, f.name)) if dataclasses.is_dataclass(getattr(self, f.name))
               else getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "sections"}
        out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in out.items()}
        import copy as _copy

        out = _copy.deepcopy(out)
        out.update({name: dataclasses.asdict(section) for name, section in sorted(self.sections.items())})
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def model_kwargs(self) -> dict[str, Any]:
        """The model section without ``name``: keyword arguments of ``create_model``."""
        return {k: v for k, v in self.model.items() if k != "name"}


def _build(cls: type, raw: Any, prefix: str):
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a mapping, got {raw!r}", fix="see configs/ for examples")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in raw.items():
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f"did you mean {prefix}{close[0]}? " if close else ""
            raise ConfigError(f"unknown config key {prefix}{key}", fix=f"{hint}valid keys: {', '.join(prefix + f for f in fields)}")
        ftype = fields[key].type
        sub = _SECTIONS.get(ftype if isinstance(ftype, str) else getattr(ftype, "__name__", ""))
        if sub:
            value = _build(sub, value or {}, f"{prefix}{key}.")
        elif isinstance(value, str) and "float" in str(ftype) and _looks_float(value):
            value = float(value)  # YAML 1.1 reads "1e-3" as a string
        kwargs[key] = value
    return cls(**kwargs)


_SECTIONS = {"DataConfig": DataConfig, "TrainConfig": TrainConfig, "EvalConfig": EvalConfig,
             "AugmentConfig": AugmentConfig, "EarlyStoppingConfig": EarlyStoppingConfig}

#: Sections registered by other packages: top-level config key -> dataclass with ``validate()``.
_REGISTERED: dict[str, type] = {}


def register_section(name: str) -> Any:
    """Class decorator registering a dataclass as the top-level config section ``name``.

    The dataclass has defaults for every field and a ``validate()`` method that raises
    :class:`ConfigError` naming ``name.field``. Its nested dataclass fields are built too.

    Example:
        >>> @register_section("doc_example")
        ... @dataclass
        ... class DocExample:
        ...     size: int = 3
        ...     def validate(self):
        ...         check_int("doc_example.size", self.size, minimum=1)
        >>> RunConfig.from_dict({"doc_example": {"size": 5}}).doc_example.size
        5
        >>> _ = _REGISTERED.pop("doc_example")
    """
    def wrap(cls: type) -> type:
        _REGISTERED[name] = cls
        _SECTIONS[cls.__name__] = cls
        return cls

    return wrap


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` strings (values parsed as YAML) to a nested dict copy.

    Example:
        >>> apply_overrides({"train": {"lr": 0.1}}, ["train.lr=1e-3", "model.channels=[8,16]"])
        {'train': {'lr': 0.001}, 'model': {'channels': [8, 16]}}
    """
    import copy

    out = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value", fix="e.g. model.latent_dim=16")
        key, _, text = item.partition("=")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        if isinstance(value, str) and _looks_float(value):
            value = float(value)
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return out


def _looks_float(text: str) -> bool:
    # YAML 1.1 reads "1e-3" as a string; users mean a number.
    try:
        float(text)
    except ValueError:
        return False
    return any(c.isdigit() for c in text)
