"""Hyperparameter search with Optuna: ``reprlab tune`` and the ``search:`` config section.

A search space over any config key (float on a linear or log scale, int, categorical), an
objective (any metric of ``metrics.json``, or ``cv`` for the cross-validated mean; by
default the task's monitored value at the best checkpoint, ``best/value``), Optuna's TPE
sampler and an optional pruner (median, percentile, Hyperband, successive halving) fed per epoch by a training
:class:`~reprlab.training.callbacks.Callback`. Every trial is an ordinary run directory
under ``STUDY_DIR/trials/``. Optuna does the sampling, pruning, storage and plots; this
module only maps trials onto reprlab runs, recovers interrupted trials and writes the
outputs (``best_config.yaml``, ``trials.csv``, ``trials.md``, ``report.html``, ``study.json``).

Storages are given by URL and are Optuna's own classes (nothing hand-written in their place):

* none: ``sqlite:///STUDY_DIR/study.db`` (:class:`optuna.storages.RDBStorage`);
* ``journal:PATH``: :class:`optuna.storages.JournalStorage` on a journal file (several
  processes on one machine, or on a shared file system);
* ``postgresql://user:pass@host:port/db`` (or any SQLAlchemy URL): ``RDBStorage`` with
  heartbeats, for many machines.

``workers=N`` runs N worker processes on this machine that share the storage. A study
killed at any moment continues with the same command: finished trials are kept; a trial
left ``RUNNING`` by a dead process of this machine (or whose heartbeat stopped, on a
database storage) is marked ``FAIL`` and its parameters are enqueued to run again.

The config file holds the usual run sections plus::

    search:
      trials: 20
      objective: best/value        # or test/psnr, ..., or cv (the mean of cv.metric over cv.folds)
      direction: null              # minimize / maximize; inferred from the metric when null
      pruner: median               # none | median | percentile | hyperband | successive_halving
      space:
        train.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
        model.latent_dim: {type: int, low: 8, high: 64, step: 8}
        model.channels: [[16, 32], [32, 64]]     # a list: categorical

Example:
    >>> spec = parse_search({"trials": 4, "space": {"train.lr": {"type": "float", "low": 1e-4, "high": 1e-2,
    ...                                                            "log": True}}})
    >>> spec.trials, spec.space[0].kind, spec.space[0].log
    (4, 'float', True)
    >>> result = tune("configs/search_conv_ae.yaml", trials=2)  # doctest: +SKIP
    >>> result.best_config  # doctest: +SKIP
    PosixPath('runs/search_conv_ae/best_config.yaml')
"""

from __future__ import annotations

import base64
import copy
import csv
import dataclasses
import difflib
import html
import importlib
import io
import json
import logging
import math
import os
import socket
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from reprlab.base.errors import ConfigError, ReprlabError, TrainingError
from reprlab.base.io import read_json, write_json, write_text
from reprlab.config import RunConfig, apply_overrides, dump_yaml, read_config_file
from reprlab.experiments.train import as_config, monitor_of
from reprlab.runs import RunDir, build_model
from reprlab.tasks import Task, get_task
from reprlab.training.callbacks import Callback

logger = logging.getLogger(__name__)

#: The experiment sections read here (not by :class:`RunConfig`): stripped before a run's config is built.
SECTIONS = ("search", "cv", "sweep")

#: Metric names (the part after ``split/``) that are better when larger; the rest of the known ones are smaller.
MAXIMIZE = {"psnr", "ssim", "accuracy", "acc", "auc", "auroc", "aupr", "ap", "nmi", "ari", "f1", "precision",
            "recall", "silhouette", "purity"}
MINIMIZE = {"loss", "mse", "l1", "mae", "rmse", "elbo_nats", "kl", "error", "bpd", "nll", "recon", "fid"}

#: Pruner name -> (Optuna class, reprlab's defaults, given before ``search.pruner_options``). ``percentile``
#: keeps only trials in the best ``percentile`` per cent at each epoch (25: prunes more than the median);
#: ``successive_halving`` is asynchronous successive halving (ASHA). ``epochs`` fills ``max_resource``.
PRUNER_DEFAULTS: dict[str, tuple[str, dict]] = {
    "none": ("NopPruner", {}),
    "median": ("MedianPruner", {"n_startup_trials": 3, "n_warmup_steps": 1}),
    "percentile": ("PercentilePruner", {"percentile": 25.0, "n_startup_trials": 3, "n_warmup_steps": 1}),
    "hyperband": ("HyperbandPruner", {"min_resource": 1, "max_resource": "epochs", "reduction_factor": 3}),
    "successive_halving": ("SuccessiveHalvingPruner", {"min_resource": 1, "reduction_factor": 3}),
}
PRUNERS = tuple(PRUNER_DEFAULTS)
SAMPLERS = ("tpe", "random")
KINDS = ("float", "int", "categorical")


# -- config files and keys ----------------------------------------------------------------
def load_raw(config: RunConfig | dict | str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """The config as a plain dict (a YAML path, a dict or a :class:`RunConfig`) with ``overrides`` applied.

    Example:
        >>> load_raw({"train": {"lr": 0.1}}, ["search.trials=3"])
        {'train': {'lr': 0.1}, 'search': {'trials': 3}}
    """
    if isinstance(config, RunConfig):
        raw = config.to_dict()
    elif isinstance(config, (str, Path)):
        raw = read_config_file(config)
    else:
        raw = copy.deepcopy(config or {})
    return apply_overrides(raw or {}, list(overrides))


def split_sections(raw: dict) -> tuple[dict, dict[str, Any]]:
    """``(run config without the experiment sections, {section: its mapping})``.

    Example:
        >>> split_sections({"seed": 1, "sweep": {"seeds": [0, 1]}})
        ({'seed': 1}, {'sweep': {'seeds': [0, 1]}})
    """
    rest = {k: v for k, v in raw.items() if k not in SECTIONS}
    sections = {k: raw[k] for k in SECTIONS if k in raw}
    for name, value in sections.items():
        if value is not None and not isinstance(value, dict):
            raise ConfigError(f"the {name}: section must be a mapping, got {value!r}", fix="see docs/search.md")
    return copy.deepcopy(rest), {k: dict(v or {}) for k, v in sections.items()}


def set_key(raw: dict, key: str, value: Any) -> dict:
    """Set the dotted ``key`` of ``raw`` in place (creating mappings on the way); returns ``raw``.

    Example:
        >>> set_key({"model": {"name": "conv_ae"}}, "model.latent_dim", 8)
        {'model': {'name': 'conv_ae', 'latent_dim': 8}}
    """
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = copy.deepcopy(value)
    return raw


def with_params(raw: dict, params: dict[str, Any]) -> dict:
    """A copy of ``raw`` with every ``key: value`` of ``params`` set."""
    out = copy.deepcopy(raw)
    for key, value in params.items():
        set_key(out, key, value)
    return out


def check_key(cfg: RunConfig, key: str, where: str) -> None:
    """A :class:`ConfigError` unless the dotted ``key`` names a setting of ``cfg`` (model keys: the
    chosen model's options, see ``reprlab models``)."""
    from reprlab.models.registry import get_model_entry

    parts = str(key).split(".")
    if parts[0] == "model" and len(parts) == 2:
        if parts[1] == "name":
            return
        _, config_cls = get_model_entry(cfg.model["name"])
        known = sorted(f.name for f in dataclasses.fields(config_cls) if f.name not in ("input_shape",))
        if parts[1] not in known:
            close = difflib.get_close_matches(parts[1], known, n=1)
            hint = f"did you mean model.{close[0]}? " if close else ""
            raise ConfigError(f"{where}: model {cfg.model['name']!r} has no option {parts[1]!r} (key {key})",
                              fix=f"{hint}use one of: {', '.join('model.' + k for k in known)}")
        return
    node: Any = cfg.to_dict()
    for i, part in enumerate(parts):
        if isinstance(node, dict) and part in node:
            node = node[part]
            continue
        if isinstance(node, dict) and i > 0 and parts[i - 1] == "groups":  # train.groups.NAME.*: free-form
            return
        known = sorted(node) if isinstance(node, dict) else []
        prefix = ".".join(parts[:i])
        close = difflib.get_close_matches(part, known, n=1)
        hint = f"did you mean {'.'.join(parts[:i] + [close[0]])}? " if close else ""
        valid = ", ".join(f"{prefix + '.' if prefix else ''}{k}" for k in known) or "(none)"
        raise ConfigError(f"{where}: the config has no key {key}", fix=f"{hint}valid keys here: {valid}")


def check_value(raw: dict, key: str, value: Any, where: str) -> None:
    """A :class:`ConfigError` naming ``where`` when the config with ``key=value`` is refused
    (model options are checked when a trial builds its model: a misfit there fails only that trial)."""
    try:
        as_config(with_params(raw, {key: value}))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {key}={value!r} is refused: {exc.problem}", fix=exc.fix) from None


# -- metrics and directions ---------------------------------------------------------------
def reported_metrics(cfg: RunConfig, task: Task, model: Any, splits: Any) -> set[str] | None:
    """The metric names a run of ``cfg`` writes to ``metrics.json`` (its task's test scores, the
    per-epoch ``train/``/``val/`` loss terms, ``best/*``), found by scoring the untrained model on a
    few test images; None when they cannot be told in advance."""
    import torch

    names = {"best/value", "best/epoch", "epochs", "train_seconds"}
    try:
        small = splits.test.subset(torch.arange(min(4, len(splits.test))))
        names |= set(task.score(cfg, model, small, torch.device("cpu"), max_images=4))
    except Exception as exc:  # noqa: BLE001 - a task without score(): every name is accepted
        logger.debug("cannot list the metrics of task %s in advance (%s)", task.name, exc)
        return None
    names |= set(task.headline)
    try:
        x = splits.train.float01(slice(0, 2))
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            terms = getattr(copy.deepcopy(model).eval()(x), "terms", None) or {}
        prefixes = ["train"] + (["val"] if splits.val is not None else [])
        names |= {f"{p}/{t}" for p in prefixes for t in terms}
    except Exception:  # noqa: BLE001 - models whose forward needs more than images: accept any loss term
        names |= {"train/*", "val/*"}
    return names


def check_metric(metric: str, reported: set[str] | None, where: str, task: Task) -> None:
    """A :class:`ConfigError` when ``metric`` is not among ``reported``."""
    if reported is None or metric in reported:
        return
    if metric.split("/", 1)[0] in ("train", "val") and f"{metric.split('/', 1)[0]}/*" in reported:
        return
    shown = sorted(m for m in reported if not m.endswith("*"))
    close = difflib.get_close_matches(metric, shown, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise ConfigError(f"{where}={metric!r} is not a metric that task {task.name!r} reports",
                      fix=f"{hint}choose one of: {', '.join(shown)}")


def infer_direction(metric: str, cfg: RunConfig, task: Task) -> str | None:
    """``minimize`` / ``maximize`` for ``metric`` (``best/value``: the task's mode), or None when unknown.

    Example:
        >>> from reprlab.config import RunConfig
        >>> infer_direction("test/psnr", RunConfig(), get_task("reconstruct"))
        'maximize'
    """
    if metric == "best/value":
        return "minimize" if monitor_of(cfg, task)[1] == "min" else "maximize"
    name = metric.split("/")[-1]
    if name == task.monitor.split("/")[-1]:
        return "minimize" if task.mode == "min" else "maximize"
    if name in MAXIMIZE:
        return "maximize"
    if name in MINIMIZE:
        return "minimize"
    return None


# -- the search space ---------------------------------------------------------------------
_PRIMITIVE = (type(None), bool, int, float, str)


@dataclass
class Dimension:
    """One searched config key: ``float`` / ``int`` (``low``..``high``, ``log``, ``step``) or ``categorical``.

    Categorical choices that Optuna cannot store (lists, mappings) are stored as their YAML text.
    """

    key: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list = field(default_factory=list)

    @property
    def encoded(self) -> bool:
        return self.kind == "categorical" and not all(isinstance(c, _PRIMITIVE) for c in self.choices)

    def stored_choices(self) -> list:
        return [encode_choice(c) for c in self.choices] if self.encoded else list(self.choices)

    def suggest(self, trial: Any) -> Any:
        """The value Optuna suggests for ``trial`` (decoded)."""
        if self.kind == "float":
            return trial.suggest_float(self.key, self.low, self.high, log=self.log, step=self.step)
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        value = trial.suggest_categorical(self.key, self.stored_choices())
        return decode_choice(value) if self.encoded else value

    def decode(self, stored: Any) -> Any:
        return decode_choice(stored) if self.encoded else stored

    def probe_values(self) -> list:
        """The values checked before the search starts: both ends, or every choice."""
        if self.kind == "categorical":
            return list(self.choices)
        cast = int if self.kind == "int" else float
        return [cast(self.low), cast(self.high)]

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "categorical":
            return {"type": "categorical", "choices": self.choices}
        out = {"type": self.kind, "low": self.low, "high": self.high, "log": self.log}
        if self.step is not None:
            out["step"] = self.step
        return out


def encode_choice(value: Any) -> str:
    """A non-primitive categorical choice as flow YAML (what the storage keeps).

    Example:
        >>> encode_choice([16, 32]), decode_choice("[16, 32]")
        ('[16, 32]', [16, 32])
    """
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def decode_choice(text: Any) -> Any:
    return yaml.safe_load(text) if isinstance(text, str) else text


def _number(where: str, value: Any) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where} must be a finite number, got {value!r}", fix=f"set {where} to a number")
    return value


def parse_dimension(key: str, raw: Any) -> Dimension:
    """A :class:`Dimension` from its config entry (a mapping, or a list of categorical choices)."""
    where = f"search.space.{key}"
    if isinstance(raw, list):
        raw = {"type": "categorical", "choices": raw}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping like {{type: float, low: 0.0001, high: 0.01, log: true}} "
                          f"or a list of choices, got {raw!r}", fix="see docs/search.md")
    raw = dict(raw)
    kind = raw.pop("type", "categorical" if "choices" in raw else None)
    if kind is None:
        low, high = raw.get("low"), raw.get("high")
        kind = "int" if isinstance(low, int) and isinstance(high, int) and not isinstance(low, bool) else "float"
    if kind not in KINDS:
        raise ConfigError(f"{where}.type={kind!r} is not a kind of search dimension", fix=f"use one of: {', '.join(KINDS)}")
    allowed = {"choices"} if kind == "categorical" else {"low", "high", "log", "step"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"{where} has unknown entries {', '.join(unknown)} for type {kind}",
                          fix=f"a {kind} dimension takes: type, {', '.join(sorted(allowed))}")
    if kind == "categorical":
        choices = raw.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where} has no choices", fix=f"give at least one value, e.g. {where}: [a, b]")
        texts = [encode_choice(c) for c in choices]
        if len(set(texts)) != len(texts):
            raise ConfigError(f"{where} lists a choice twice: {choices!r}", fix="list each choice once")
        return Dimension(key, kind, choices=list(choices))
    if "low" not in raw or "high" not in raw:
        raise ConfigError(f"{where} needs low and high", fix=f"e.g. {where}: {{type: {kind}, low: 1, high: 10}}")
    low, high = _number(f"{where}.low", raw["low"]), _number(f"{where}.high", raw["high"])
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}.log must be true or false, got {log!r}", fix=f"set {where}.log: true")
    step = raw.get("step")
    if step is not None:
        step = _number(f"{where}.step", step)
        if step <= 0:
            raise ConfigError(f"{where}.step must be > 0, got {step}", fix=f"drop {where}.step or make it positive")
        if log:
            raise ConfigError(f"{where} sets both log: true and step: {step} (Optuna cannot sample a stepped log scale)",
                              fix=f"drop {where}.step or {where}.log")
    if kind == "int":
        for name, v in (("low", low), ("high", high)) + ((("step", step),) if step is not None else ()):
            if float(v) != int(v):
                raise ConfigError(f"{where}.{name} must be an integer for type int, got {v}",
                                  fix=f"use type: float, or an integer {name}")
        low, high = int(low), int(high)
        step = int(step) if step is not None else None
    if low > high:
        raise ConfigError(f"{where} is empty: low={low} > high={high}", fix=f"swap them: low: {high}, high: {low}")
    if log and low <= 0:
        raise ConfigError(f"{where} is on a log scale but low={low} is not > 0", fix=f"set {where}.low > 0, or log: false")
    return Dimension(key, kind, low=low, high=high, log=log, step=step)


@dataclass
class SearchSpec:
    """The ``search:`` section: the space, the objective and how the study runs."""

    space: list[Dimension]
    trials: int = 20
    objective: str = "best/value"
    direction: str | None = None
    sampler: str = "tpe"
    sampler_options: dict = field(default_factory=dict)
    pruner: str = "none"
    pruner_options: dict = field(default_factory=dict)
    seed: int | None = None
    storage: str | None = None
    study_name: str | None = None
    workers: int = 1

    @property
    def keys(self) -> list[str]:
        return [d.key for d in self.space]


_SPEC_FIELDS = {f.name for f in dataclasses.fields(SearchSpec)}


def section_mapping(section: str, raw: dict | None, cli: dict[str, Any], known: set[str] | frozenset[str]) -> dict:
    """The ``section:`` mapping of an experiment with the ``cli`` values (not None) on top; an unknown key is
    one :class:`ConfigError` with a "did you mean" hint (shared by ``search:``, ``cv:`` and ``sweep:``).

    Example:
        >>> section_mapping("cv", {"folds": 5}, {"seed": None}, {"folds", "seed"})
        {'folds': 5}
    """
    out = {**dict(raw or {}), **{k: v for k, v in cli.items() if v is not None}}
    unknown = sorted(set(out) - set(known))
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(known), n=1)
        hint = f"did you mean {section}.{close[0]}? " if close else ""
        raise ConfigError(f"unknown config key {section}.{unknown[0]}",
                          fix=f"{hint}valid keys: {', '.join(f'{section}.{k}' for k in sorted(known))}")
    return out


def parse_search(raw: dict | None, **cli: Any) -> SearchSpec:
    """The :class:`SearchSpec` of a ``search:`` mapping; ``cli`` values (not None) override it."""
    raw = section_mapping("search", raw, cli, _SPEC_FIELDS)
    space = raw.pop("space", None)
    if not isinstance(space, dict) or not space:
        raise ConfigError("the search space is empty (search.space has no keys)",
                          fix="add search.space entries, e.g. search.space: {train.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}}")
    spec = SearchSpec(space=[parse_dimension(str(k), v) for k, v in space.items()], **raw)
    from reprlab.base.validation import check_choice, check_int

    check_int("search.trials", spec.trials, minimum=1)
    check_int("search.workers", spec.workers, minimum=1)
    check_choice("search.pruner", spec.pruner, PRUNERS)
    check_choice("search.sampler", spec.sampler, SAMPLERS)
    if spec.direction is not None:
        check_choice("search.direction", spec.direction, ("minimize", "maximize"))
    if spec.seed is not None:
        check_int("search.seed", spec.seed, minimum=0)
    if not isinstance(spec.objective, str) or not spec.objective:
        raise ConfigError(f"search.objective must be a metric name or cv, got {spec.objective!r}", fix="e.g. search.objective: test/psnr")
    for name in ("sampler_options", "pruner_options"):
        if not isinstance(getattr(spec, name), dict):
            raise ConfigError(f"search.{name} must be a mapping, got {getattr(spec, name)!r}", fix=f"e.g. search.{name}: {{}}")
    if "seed" in spec.keys:
        raise ConfigError("search.space.seed: the seed is not a hyperparameter", fix="drop it from the space (sweeps take sweep.seeds)")
    return spec


# -- Optuna: storages, samplers, pruners --------------------------------------------------
def _optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failed trials are logged by reprlab, in one line
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def redact(url: str) -> str:
    """``url`` without its password.

    Example:
        >>> redact("postgresql://me:secret@db:5432/x")
        'postgresql://me:***@db:5432/x'
    """
    if "://" in url and "@" in url.split("://", 1)[1]:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" in creds:
            creds = creds.split(":", 1)[0] + ":***"
        return f"{scheme}://{creds}@{host}"
    return url


def default_storage(study_dir: Path) -> str:
    return f"sqlite:///{Path(study_dir).resolve() / 'study.db'}"


def open_storage(url: str) -> Any:
    """Optuna's storage for ``url`` (``sqlite:///``, ``postgresql://``, any SQLAlchemy URL, or ``journal:PATH``),
    checked by connecting: a :class:`ConfigError` naming the URL when it cannot be reached."""
    optuna = _optuna()
    shown = redact(url)
    fix = "check the URL, that the server is running and reachable from here, and the user / password / database"
    try:
        if url.startswith("journal:"):
            path = Path(url[len("journal:"):].removeprefix("//"))
            path.parent.mkdir(parents=True, exist_ok=True)
            from optuna.storages.journal import JournalFileBackend, JournalStorage

            return JournalStorage(JournalFileBackend(str(path)))
        if "://" not in url:
            raise ConfigError(f"storage {shown!r} is not a storage URL",
                              fix="use sqlite:///PATH.db, journal:PATH.log or postgresql://USER:PASS@HOST:PORT/DB")
        scheme = url.split("://", 1)[0].split("+", 1)[0]
        if scheme == "sqlite":
            db = url.split(":///", 1)[-1]
            if db and db != ":memory:":
                Path(db).parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
        engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if scheme in ("postgresql", "postgres"):
            engine_kwargs["connect_args"] = {"connect_timeout": 10}
        # heartbeats: a trial whose process died on any machine is failed and re-queued by the next worker
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=30, grace_period=120,
                                          heartbeat_stale_trial_callback=requeue_stale_trial)
    except ReprlabError:
        raise
    except ImportError as exc:  # SQLAlchemy found no driver for the scheme
        raise ConfigError(f"storage {shown} needs a database driver that is not installed ({exc})",
                          fix="pip install 'psycopg[binary]' for postgresql:// (SQLAlchemy's default PostgreSQL driver)") from None
    except Exception as exc:  # noqa: BLE001 - driver errors of every kind: one line naming the storage
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"storage {shown} cannot be reached ({type(exc).__name__}: {first[:300]})", fix=fix) from None


def make_sampler(spec: SearchSpec, seed: int) -> Any:
    optuna = _optuna()
    cls = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}[spec.sampler]
    try:
        return cls(seed=seed, **spec.sampler_options)
    except TypeError as exc:
        raise ConfigError(f"search.sampler_options {spec.sampler_options!r} are refused by {cls.__name__}: {exc}",
                          fix=f"see the options of optuna.samplers.{cls.__name__}") from None


def make_pruner(spec: SearchSpec, epochs: int) -> Any:
    """The pruner named by ``search.pruner`` (see :data:`PRUNER_DEFAULTS`: median with 3 startup trials
    and 1 warm-up epoch, percentile 25 likewise, Hyperband over 1..``epochs`` epochs with factor 3, ASHA,
    or none); ``search.pruner_options`` override the defaults.

    Example:
        >>> make_pruner(parse_search({"pruner": "percentile", "space": {"train.lr": [1e-3, 1e-2]}}), 8)._percentile
        25.0
    """
    optuna = _optuna()
    class_name, defaults = PRUNER_DEFAULTS[spec.pruner]
    cls = getattr(optuna.pruners, class_name)
    options = {key: max(1, epochs) if value == "epochs" else value for key, value in defaults.items()}
    try:
        return cls(**{**options, **spec.pruner_options})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"search.pruner_options {spec.pruner_options!r} are refused by {cls.__name__}: {exc}",
                          fix=f"see the options of optuna.pruners.{cls.__name__}") from None


# -- interrupted trials -------------------------------------------------------------------
def _pid_alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, TypeError):
        return False
    except PermissionError:
        return True
    return True


def _mark_run_interrupted(trial: Any, new_number: str) -> None:
    path = trial.user_attrs.get("run_dir")
    if path and Path(path, "status.json").exists():
        run = RunDir(path)
        if run.status().get("state") == "running":
            run.set_status("failed", error=f"interrupted: the search runs these parameters again ({new_number})",
                           interrupted=True)


def _requeue(study: Any, trial: Any) -> bool:
    """Enqueue the parameters of the interrupted ``trial`` once (recorded in the study's ``requeued``)."""
    requeued = set(study.user_attrs.get("requeued", []))
    if trial.number in requeued:
        return False
    if trial.params:
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number}, skip_if_exists=False)
    requeued.add(trial.number)
    study.set_user_attr("requeued", sorted(requeued))
    _mark_run_interrupted(trial, "enqueued as a new trial")
    logger.warning("trial %d was interrupted; its parameters run again as a new trial", trial.number)
    return True


def requeue_stale_trial(study: Any, trial: Any) -> None:
    """Optuna's heartbeat callback: a trial whose process stopped beating is failed; run its parameters again."""
    _requeue(study, trial)


def recover_interrupted(study: Any) -> list[int]:
    """Fail the trials left ``RUNNING`` by a dead process of this machine, and enqueue (once) the
    parameters of every interrupted trial (killed, Ctrl-C, heartbeat lost). Trials that failed with an
    error of their own (``user_attrs['error']``) stay failed. Returns the numbers requeued."""
    optuna = _optuna()
    TrialState = optuna.trial.TrialState
    host = socket.gethostname()
    storage = study._storage  # noqa: SLF001 - Optuna exposes no public handle; the methods used are public
    study_id = storage.get_study_id_from_name(study.study_name)
    done: list[int] = []
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.RUNNING:
            mine = t.user_attrs.get("host", host) == host
            if not mine or _pid_alive(t.user_attrs.get("pid")):
                continue
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
            try:
                storage.set_trial_state_values(trial_id, TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue
        elif not (t.state == TrialState.FAIL and "error" not in t.user_attrs):
            continue
        if _requeue(study, t):
            done.append(t.number)
    return done


def count_done(study: Any) -> int:
    """Finished trials that count towards ``trials``: complete, pruned, or failed with an error of their own."""
    TrialState = _optuna().trial.TrialState
    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
               or (t.state == TrialState.FAIL and "error" in t.user_attrs))


# -- trials: run directories, pruning -----------------------------------------------------
class PruningCallback(Callback):
    """Report the monitored value to the Optuna trial after each epoch; raise ``TrialPruned`` when
    the pruner says so. ``sign`` is -1 when the monitor's mode is opposite to the study's direction
    (the pruner compares intermediate values in the study's direction)."""

    def __init__(self, trial: Any, monitor: str, sign: float = 1.0) -> None:
        self.trial, self.monitor, self.sign = trial, monitor, sign
        self.pruned_at: int | None = None

    def on_epoch_end(self, trainer, epoch: int, row: dict[str, float]) -> None:
        value = row.get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return
        self.trial.report(self.sign * float(value), epoch)
        if self.trial.should_prune():
            self.pruned_at = epoch + 1
            raise _optuna().TrialPruned(f"pruned after epoch {epoch + 1} ({self.monitor}={value:.5g})")


def mark_pruned(run_dir: Path, message: str) -> None:
    """End a pruned trial's run directory ``failed`` with ``pruned: true`` and the reason."""
    if Path(run_dir, "status.json").exists():
        st = RunDir(run_dir).status()
        RunDir(run_dir).set_status("failed", error=message, pruned=True, epochs=st.get("epochs"),
                                   best_checkpoint_kept=st.get("best_checkpoint_kept"))


def start_trial(trial: Any, study_dir: Path) -> Path:
    """Record who runs ``trial`` (host, pid) and return its run directory ``STUDY_DIR/trials/trial-NNNN``."""
    run_dir = Path(study_dir) / "trials" / f"trial-{trial.number:04d}"
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid())
    trial.set_user_attr("run_dir", str(run_dir.resolve()))
    return run_dir


def _tune_objective(job: dict) -> Callable[[Any], float]:
    from reprlab.experiments.train import train

    optuna = _optuna()
    spec = job_spec(job)
    study_dir = Path(job["study_dir"])
    raw = job["raw"]
    cfg = as_config(raw)
    task = get_task(cfg.task)
    monitor, mode = monitor_of(cfg, task)
    direction = job["direction"]
    sign = 1.0 if (mode == "min") == (direction == "minimize") else -1.0

    def objective(trial: Any) -> float:
        run_dir = start_trial(trial, study_dir)
        params = {d.key: d.suggest(trial) for d in spec.space}
        config = with_params(raw, params)
        try:
            if spec.objective == "cv":
                from reprlab.experiments.cv import cv_objective

                return cv_objective(config, job["cv"], run_dir, trial=trial, direction=direction)
            pruning = PruningCallback(trial, monitor, sign)
            try:
                result = train(config, run_dir=run_dir, callbacks=[pruning])
            except optuna.TrialPruned as exc:
                mark_pruned(run_dir, f"pruned by the search ({spec.pruner} pruner): {exc}")
                trial.set_user_attr("pruned_at_epoch", pruning.pruned_at)
                raise
            value = result.metrics.get(spec.objective)
            if value is None or not math.isfinite(float(value)):
                raise TrainingError(f"run {run_dir} has no finite {spec.objective} (got {value!r})",
                                    fix="choose a search.objective that the run writes to metrics.json")
            return float(value)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            message = str(exc) if isinstance(exc, ReprlabError) else f"{type(exc).__name__}: {exc}"
            trial.set_user_attr("error", message[:2000])
            logger.warning("trial %d failed: %s", trial.number, message)
            raise

    return objective


def job_spec(job: dict) -> SearchSpec:
    return parse_search(job["search"])


# -- workers ------------------------------------------------------------------------------
class _StopWhenDone:
    """Stop a worker's optimisation once the study holds ``total`` counted trials (see :func:`count_done`)."""

    def __init__(self, total: int) -> None:
        self.total = total

    def __call__(self, study: Any, trial: Any) -> None:
        if count_done(study) >= self.total:
            study.stop()


def run_worker(job: dict, index: int, quota: int) -> None:
    """Run up to ``quota`` trials of ``job``'s study in this process (worker ``index``)."""
    import torch

    optuna = _optuna()
    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))
    storage = open_storage(job["storage"])
    # seeded per worker and per study state: a continued study does not draw its first trials again
    existing = len(optuna.load_study(study_name=job["study_name"], storage=storage).get_trials(deepcopy=False))
    seed = int(job["seed"]) + index + 1000 * existing
    if job.get("search") is not None:  # a search: its sampler and pruner
        spec = job_spec(job)
        sampler, pruner = make_sampler(spec, seed), make_pruner(spec, int(job["epochs"]))
    else:  # a sweep: every trial is enqueued with its parameters; the sampler is never asked
        sampler, pruner = optuna.samplers.RandomSampler(seed=seed), optuna.pruners.NopPruner()
    study = optuna.load_study(study_name=job["study_name"], storage=storage, sampler=sampler, pruner=pruner)
    module, _, name = job["objective"].partition(":")
    objective = getattr(importlib.import_module(module), name)(job)
    if quota > 0:
        study.optimize(objective, n_trials=quota, catch=(Exception,), callbacks=[_StopWhenDone(job["total"])],
                       gc_after_trial=True)


def worker_main(job_path: str, index: int, quota: int) -> int:
    """Entry point of a worker process (``python -c`` from :func:`run_workers`)."""
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s worker{index} %(levelname)s %(name)s: %(message)s")
    run_worker(read_json(job_path), index, quota)
    return 0


def split_quota(total: int, workers: int) -> list[int]:
    """``total`` trials over ``workers`` as evenly as possible.

    Example:
        >>> split_quota(7, 3)
        [3, 2, 2]
    """
    return [total // workers + (1 if i < total % workers else 0) for i in range(workers)]


def _die_with_parent() -> None:
    """In a worker, before exec: on Linux, end the worker when the ``tune`` process dies (even by SIGKILL),
    so a killed study leaves no orphan running trials; its trials are then recovered by the next command."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
        except OSError:
            pass


def run_workers(job: dict, remaining: int, workers: int) -> None:
    """Run ``remaining`` trials with ``workers`` processes (one: in this process); each its own
    process sharing the storage; logs under ``STUDY_DIR/logs/``."""
    study_dir = Path(job["study_dir"])
    quotas = [q for q in split_quota(remaining, workers) if q > 0]
    if not quotas:
        return
    if len(quotas) == 1:
        run_worker(job, 0, quotas[0])
        return
    logs = study_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    job_path = write_json(study_dir / "job.json", job)
    code = "import sys; from reprlab.experiments.search import worker_main; sys.exit(worker_main(*sys.argv[1:2], *map(int, sys.argv[2:])))"
    procs = []
    for i, quota in enumerate(quotas):
        log = open(logs / f"worker-{i}.log", "a")  # noqa: SIM115 - closed below
        procs.append((subprocess.Popen([sys.executable, "-c", code, str(job_path), str(i), str(quota)],
                                       stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent), log, i))
    try:
        failed = []
        for proc, log, i in procs:
            rc = proc.wait()
            log.close()
            if rc != 0:
                failed.append(f"worker {i} exited with {rc} (see {logs / f'worker-{i}.log'})")
    except BaseException:
        for proc, log, _ in procs:
            proc.terminate()
        raise
    if failed:
        raise TrainingError("; ".join(failed), fix="read the worker logs; run the same command again to continue the study")


# -- the study ----------------------------------------------------------------------------
@dataclass
class StudySetup:
    """What :func:`prepare_study` checked and opened."""

    study: Any
    study_dir: Path
    storage_url: str
    direction: str | list[str]


def prepare_study(study_dir: Path, study_name: str, storage_url: str | None, direction: str | list[str],
                  attrs: dict[str, Any]) -> StudySetup:
    """Open (or create) the study; a :class:`ConfigError` when an existing study of that name was
    created for another search (``attrs``: space / objective / direction)."""
    optuna = _optuna()
    url = storage_url or default_storage(study_dir)
    storage = open_storage(url)
    directions = direction if isinstance(direction, list) else [direction]
    try:
        study = optuna.create_study(study_name=study_name, storage=storage, load_if_exists=True, directions=directions)
    except Exception as exc:  # noqa: BLE001 - storage trouble while creating the tables
        raise ConfigError(f"storage {redact(url)} cannot be used ({type(exc).__name__}: {str(exc).splitlines()[0][:300]})",
                          fix="check the URL and that the database accepts writes") from None
    stored = study.user_attrs.get("reprlab")
    if stored is None:
        study.set_user_attr("reprlab", attrs)
    elif stored != json.loads(json.dumps(attrs)):
        raise ConfigError(f"study {study_name!r} in {redact(url)} was created for another search "
                          f"({json.dumps(stored, sort_keys=True)[:300]})",
                          fix="use another --study-name (or --storage), or the config that created it")
    study_dir.mkdir(parents=True, exist_ok=True)
    return StudySetup(study, study_dir, url, direction)


def default_study_name(config: Any, cfg: RunConfig, suffix: str = "") -> str:
    if cfg.name:
        return f"{cfg.name}{suffix}"
    if isinstance(config, (str, Path)):
        return f"{Path(config).stem}{suffix}"
    return f"study{suffix}"


@dataclass
class SearchResult:
    """What :func:`tune` returns."""

    study_dir: Path
    study_name: str
    storage: str
    direction: str
    best_value: float | None
    best_params: dict[str, Any]
    best_config: Path | None
    counts: dict[str, int]
    report: Path | None = None

    @property
    def summary(self) -> str:
        counts = " ".join(f"{k}={v}" for k, v in self.counts.items() if v)
        if self.best_value is None:
            return f"no trial completed ({counts})"
        return f"best value {self.best_value:.5g} ({self.direction}) with {json.dumps(self.best_params)}  [{counts}]"


def tune(config: RunConfig | dict | str | Path | None, *, overrides: list[str] | tuple[str, ...] = (),
         storage: str | None = None, study_name: str | None = None, trials: int | None = None,
         workers: int | None = None, pruner: str | None = None, output_dir: str | Path | None = None) -> SearchResult:
    """Run (or continue) the search described by the config's ``search:`` section.

    Keyword arguments override the section; everything is checked (space, keys, objective, storage)
    before any run directory exists. See the module docstring for the outputs.
    """
    raw, sections = split_sections(load_raw(config, overrides))
    spec = parse_search(sections.get("search"), storage=storage, study_name=study_name, trials=trials,
                        workers=workers, pruner=pruner)
    cfg = as_config(raw)
    task = get_task(cfg.task)
    for dim in spec.space:
        check_key(cfg, dim.key, f"search.space.{dim.key}")
        for value in dim.probe_values():
            check_value(raw, dim.key, value, f"search.space.{dim.key}")
    splits = task.prepare_data(cfg)
    model = build_model(cfg, splits.train.shape)
    cv_spec = None
    reported = reported_metrics(cfg, task, model, splits)
    if spec.objective == "cv":
        from reprlab.experiments.cv import check_folds, parse_cv

        cv_spec = parse_cv(sections.get("cv"))
        check_folds(cfg, task, cv_spec)
        metric = cv_spec.metric
        held_out = None if reported is None else reported | {f"fold/{m.split('/', 1)[1]}" for m in reported if m.startswith("test/")}
        check_metric(metric, held_out, "cv.metric", task)
    else:
        metric = spec.objective
        check_metric(metric, reported, "search.objective", task)
    direction = spec.direction or infer_direction(metric, cfg, task)
    if direction is None:
        raise ConfigError(f"cannot tell whether {metric} is better larger or smaller",
                          fix="set search.direction: minimize (or maximize)")
    name = spec.study_name or default_study_name(config, cfg)
    study_dir = Path(output_dir or cfg.output_dir) / name
    attrs = {"kind": "search", "space": [d.to_dict() | {"key": d.key} for d in spec.space],
             "objective": spec.objective if cv_spec is None else f"cv:{cv_spec.metric}", "direction": direction}
    setup = prepare_study(study_dir, name, spec.storage, direction, attrs)
    study = setup.study
    recover_interrupted(study)
    remaining = max(0, spec.trials - count_done(study))
    threads = cfg.train.num_threads or (max(1, (os.cpu_count() or 1) // spec.workers) if spec.workers > 1 else None)
    job = {"objective": "reprlab.experiments.search:_tune_objective", "raw": raw,
           "search": {**(sections.get("search") or {}), **{k: v for k, v in
                      {"storage": spec.storage, "trials": spec.trials, "pruner": spec.pruner, "workers": spec.workers,
                       "study_name": spec.study_name}.items() if v is not None}},
           "cv": sections.get("cv") or {}, "study_dir": str(study_dir.resolve()), "study_name": name,
           "storage": setup.storage_url, "direction": direction, "seed": spec.seed if spec.seed is not None else cfg.seed,
           "epochs": cfg.train.epochs, "total": spec.trials, "threads": threads}
    logger.info("study %s in %s: %d trial(s) to run on %d worker(s)", name, redact(setup.storage_url), remaining, spec.workers)
    run_workers(job, remaining, spec.workers)
    return write_search_outputs(study, study_dir, raw, spec, direction, setup.storage_url)


# -- outputs ------------------------------------------------------------------------------
def trial_rows(study: Any, spec: SearchSpec) -> list[dict[str, Any]]:
    """One row per trial: number, state, value, the parameters, seconds, epochs, run directory, note."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        dims = {d.key: d for d in spec.space}
        params = {k: (dims[k].decode(v) if k in dims else v) for k, v in t.params.items()}
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else None
        note = t.user_attrs.get("error") or ""
        if t.state.name == "PRUNED":
            note = f"pruned after epoch {t.user_attrs.get('pruned_at_epoch', t.last_step + 1 if t.last_step is not None else '?')}"
        if "retry_of" in t.user_attrs:
            note = f"re-run of interrupted trial {t.user_attrs['retry_of']}" + (f"; {note}" if note else "")
        if t.number in study.user_attrs.get("requeued", []):
            note = "interrupted (re-run as a new trial)" + (f"; {note}" if note else "")
        rows.append({"trial": t.number, "state": t.state.name.lower(), "value": t.value if t.values and t.state.name == "COMPLETE" else None,
                     **{k: params.get(k) for k in spec.keys}, "seconds": round(seconds, 2) if seconds is not None else None,
                     "run_dir": t.user_attrs.get("run_dir", ""), "note": note})
    return rows


def fmt(value: Any) -> str:
    """A table cell: floats to 5 significant digits, lists as YAML, None empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.5g}"
    if isinstance(value, (list, dict)):
        return encode_choice(value)
    return str(value)


def write_csv(rows: list[dict[str, Any]], path: Path, columns: list[str]) -> Path:
    """``rows`` (the ``columns`` of each) as CSV."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: fmt(row.get(k)) for k in columns})
    return write_text(path, buf.getvalue())


def write_markdown(rows: list[dict[str, Any]], path: Path, columns: list[str]) -> Path:
    """``rows`` (the ``columns`` of each) as a Markdown table."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(row.get(k)).replace("|", "\\|") for k in columns) + " |" for row in rows]
    return write_text(path, "\n".join(lines) + "\n")


def write_table(rows: list[dict[str, Any]], path_csv: Path, path_md: Path, columns: list[str]) -> None:
    """``rows`` as CSV and as a Markdown table."""
    write_csv(rows, path_csv, columns)
    write_markdown(rows, path_md, columns)


def figure_png(fig: Any) -> str:
    """A matplotlib figure as a base64 PNG ``data:`` URI (closed afterwards)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def study_plots(study: Any) -> list[tuple[str, str | None, str]]:
    """Optuna's matplotlib plots of ``study``: ``(title, data URI or None, note)``."""
    import matplotlib
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    out = []
    with matplotlib.rc_context():  # Optuna's plots switch the global style to ggplot: restore it afterwards
        out = _study_plots(study, ovm, plt)
    return out


def _study_plots(study: Any, ovm: Any, plt: Any) -> list[tuple[str, str | None, str]]:
    out = []
    for title, fn in (("Optimisation history", ovm.plot_optimization_history),
                      ("Parameter importances", ovm.plot_param_importances),
                      ("Parallel coordinates", ovm.plot_parallel_coordinate),
                      ("Slices", ovm.plot_slice),
                      ("Intermediate values (per epoch, as the pruner saw them)", ovm.plot_intermediate_values)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ax = fn(study)
            first = ax.flat[0] if hasattr(ax, "flat") else ax
            out.append((title, figure_png(first.figure), ""))
        except Exception as exc:  # noqa: BLE001 - too few trials for a plot: say so in the report
            plt.close("all")
            out.append((title, None, f"not available: {type(exc).__name__}: {str(exc)[:200]}"))
    return out


def html_table(rows: list[dict[str, Any]], columns: list[str], highlight: dict[tuple[int, str], bool] | None = None) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for i, row in enumerate(rows):
        cells = []
        for c in columns:
            text = html.escape(fmt(row.get(c)))
            if c == "run_dir" and row.get(c):
                text = f'<a href="{html.escape(Path(str(row[c])).as_uri())}">{html.escape(Path(str(row[c])).name)}</a>'
            cls = ' class="best"' if highlight and highlight.get((i, c)) else ""
            cells.append(f"<td{cls}>{text}</td>")
        body.append(f"<tr class=\"{html.escape(str(row.get('state', '')))}\">{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


PAGE_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f0f0f0}td.best{background:#c8f0c8;font-weight:bold}
tr.pruned td{color:#777}tr.fail td,tr.invalid td{color:#a00}img{max-width:100%;border:1px solid #eee}.note{color:#666}"""


def html_page(title: str, parts: list[str]) -> str:
    """A self-contained HTML page (inline style, images as data URIs)."""
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{PAGE_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{''.join(parts)}</body></html>\n")


def write_search_outputs(study: Any, study_dir: Path, raw: dict, spec: SearchSpec, direction: str,
                         storage_url: str) -> SearchResult:
    """``best_config.yaml``, ``trials.csv``/``.md``, ``report.html`` and ``study.json`` of the study."""
    optuna = _optuna()
    TrialState = optuna.trial.TrialState
    rows = trial_rows(study, spec)
    columns = ["trial", "state", "value", *spec.keys, "seconds", "run_dir", "note"]
    write_table(rows, study_dir / "trials.csv", study_dir / "trials.md", columns)
    counts = {s.name.lower(): sum(1 for t in study.get_trials(deepcopy=False) if t.state == s) for s in TrialState}
    best_value, best_params, best_path = None, {}, None
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if complete:
        best = study.best_trial
        dims = {d.key: d for d in spec.space}
        best_value = float(best.value)
        best_params = {k: dims[k].decode(v) if k in dims else v for k, v in best.params.items()}
        best_raw = with_params(raw, best_params)
        best_raw.pop("name", None)
        as_config(best_raw)  # ready for `reprlab train`: it must load
        header = (f"# best trial {best.number} of study {study.study_name}: {spec.objective}={best_value:.6g} ({direction})\n"
                  f"# run it with: reprlab train {study_dir / 'best_config.yaml'}\n")
        best_path = write_text(study_dir / "best_config.yaml", header + dump_yaml(best_raw))
    summary = {"study_name": study.study_name, "storage": redact(storage_url), "direction": direction,
               "objective": spec.objective, "trials": spec.trials, "counts": counts, "best_value": best_value,
               "best_params": best_params, "best_trial": study.best_trial.number if complete else None}
    write_json(study_dir / "study.json", summary)
    plots = study_plots(study) if complete else []
    parts = [f"<p>Storage <code>{html.escape(redact(storage_url))}</code>; objective <b>{html.escape(spec.objective)}</b> "
             f"({direction}); sampler {spec.sampler}, pruner {spec.pruner}; trials: "
             f"{html.escape(', '.join(f'{k} {v}' for k, v in counts.items() if v))}.</p>"]
    if complete:
        parts.append(f"<p>Best: trial {study.best_trial.number}, value <b>{best_value:.6g}</b>, "
                     f"<code>{html.escape(json.dumps(best_params))}</code> &rarr; <code>best_config.yaml</code></p>")
    for title, uri, note in plots:
        parts.append(f"<h2>{html.escape(title)}</h2>" + (f'<img src="{uri}" alt="{html.escape(title)}">' if uri
                                                          else f'<p class="note">{html.escape(note)}</p>'))
    best_row = {(i, "value"): True for i, r in enumerate(rows) if complete and r["trial"] == study.best_trial.number}
    parts.append("<h2>Trials</h2>" + html_table(rows, columns, best_row))
    report = write_text(study_dir / "report.html", html_page(f"Study {study.study_name}", parts))
    return SearchResult(study_dir, study.study_name, redact(storage_url), direction, best_value, best_params, best_path,
                        counts, report)


__all__ = ["Dimension", "PruningCallback", "SearchResult", "SearchSpec", "check_key", "check_metric", "infer_direction",
           "load_raw", "open_storage", "parse_dimension", "parse_search", "recover_interrupted", "split_sections", "tune"]
