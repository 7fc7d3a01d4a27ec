"""Run configuration: nested dataclasses loaded from YAML, with dotted overrides.

A config has five sections (``data``, ``model``, ``train``, ``eval``, ``cluster``) plus
``seed``, ``name`` and ``output_dir``. ``model`` is free-form: its keys are the fields of the
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

from reprlab.errors import ConfigError
from reprlab.models.base import check_choice, check_float, check_int


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
    monitor: str = "val/loss"
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
    momentum: float = 0.9
    weight_decay: float = 0.0
    l1_penalty: float = 0.0
    scheduler: str = "none"
    step_size: int = 10
    gamma: float = 0.1
    plateau_patience: int = 3
    grad_clip: float | None = None
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
class ClusterConfig:
    """Cluster the learned embeddings at the end of training (off unless ``enabled``).

    The options are those of :func:`reprlab.clustering.cluster_run`: the ``split`` to
    encode (``train``, ``val``, ``test`` or ``all``), ``features`` (``codes``, ``codes+hog``,
    ``pixels+hog`` or ``codes+pixels+hog``: blocks of codes, pixels and HOG descriptors of the
    images, weighted equally; or ``scattering``: the images' compressed wavelet-scattering
    coefficients), ``scaling`` (none/standard/l2),
    ``reducer`` (none/pca/kpca/tsne/umap with ``n_components``, ``n_neighbors``,
    ``min_dist``), ``clusterer`` (kmeans/gmm/agglomerative/scan, ``covariance_type``,
    ``clusterer_options``: keyword arguments of the clusterer, e.g. ``{epochs: 10}`` or
    ``{init: spectral, n_restarts: 3}`` for scan),
    ``n_clusters`` (a number or ``auto`` with ``criterion`` silhouette/bic over
    ``k_range``), ``max_points`` (a seeded subset), and ``checkpoint_curve`` (also plot
    training MSE against validation accuracy over the ``epoch_NNNN`` checkpoints).
    ``random_state`` defaults to the run's seed. Results go to ``RUN_DIR/clustering/``,
    ``cluster/*`` keys of ``metrics.json`` and the report. The options are validated when
    ``enabled`` (or ``checkpoint_curve``) is true.

    Example:
        >>> ClusterConfig(enabled=True, n_clusters="auto", criterion="bic").validate()
    """

    enabled: bool = False
    split: str = "test"
    features: str = "codes"
    scaling: str = "none"
    reducer: str = "umap"
    n_components: int = 10
    n_neighbors: int = 20
    min_dist: float = 0.0
    clusterer: str = "gmm"
    clusterer_options: dict[str, Any] = field(default_factory=dict)
    covariance_type: str = "full"
    n_clusters: int | str = 10
    criterion: str = "silhouette"
    k_range: list[int] = field(default_factory=lambda: [2, 15])
    max_points: int | None = None
    checkpoint_curve: bool = False
    random_state: int | None = None

    def validate(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ConfigError(f"cluster.enabled must be true or false, got {self.enabled!r}", fix="set cluster.enabled=true")
        if not isinstance(self.checkpoint_curve, bool):
            raise ConfigError(f"cluster.checkpoint_curve must be true or false, got {self.checkpoint_curve!r}",
                              fix="set cluster.checkpoint_curve=true or false")
        if isinstance(self.k_range, tuple):
            self.k_range = list(self.k_range)
        if not (self.enabled or self.checkpoint_curve):
            return  # the options are checked when clustering is switched on (this keeps scikit-learn unloaded)
        from reprlab.clustering.estimator import EmbeddingClusterer
        from reprlab.clustering.pipeline import FEATURES, SPLITS

        check_choice("cluster.split", self.split, SPLITS)
        check_choice("cluster.features", self.features, FEATURES)
        if self.max_points is not None:
            check_int("cluster.max_points", self.max_points, minimum=2)
        if self.random_state is not None:
            check_int("cluster.random_state", self.random_state, minimum=0)
        if self.checkpoint_curve and self.n_clusters == "auto":
            raise ConfigError("cluster.checkpoint_curve needs a fixed cluster.n_clusters (accuracy is compared "
                              "across checkpoints)", fix="set cluster.n_clusters to the number of classes, e.g. 10")
        try:
            EmbeddingClusterer(**self.estimator_options()).check_params()
        except ConfigError as exc:  # name the config key
            raise ConfigError(f"cluster.{exc.problem}",
                              fix=re.sub(r"\bset (\w+)", r"set cluster.\1", exc.fix or "")) from None

    def estimator_options(self) -> dict[str, Any]:
        """The keyword arguments of :class:`~reprlab.clustering.EmbeddingClusterer` (without ``random_state``)."""
        return {"scaling": self.scaling, "reducer": self.reducer, "n_components": self.n_components,
                "n_neighbors": self.n_neighbors, "min_dist": self.min_dist, "clusterer": self.clusterer,
                "covariance_type": self.covariance_type, "n_clusters": self.n_clusters, "criterion": self.criterion,
                "k_range": tuple(self.k_range) if isinstance(self.k_range, (list, tuple)) else self.k_range,
                "clusterer_options": self.clusterer_options}


@dataclass
class RunConfig:
    """A whole run: what to train on, which model, how to train and evaluate."""

    seed: int = 0
    name: str | None = None
    output_dir: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    model: dict[str, Any] = field(default_factory=lambda: {"name": "conv_ae", "latent_dim": 16})
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> "RunConfig":
        """Build and validate from a plain dict (unknown keys are errors with suggestions)."""
        cfg = _build(cls, raw or {}, "")
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
        self.data.validate()
        self.train.validate()
        self.eval.validate()
        self.cluster.validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

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
             "AugmentConfig": AugmentConfig, "EarlyStoppingConfig": EarlyStoppingConfig, "ClusterConfig": ClusterConfig}


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
