"""Step kinds of a recipe (a registry), and the kinds that run things: train, tune, cv, sweep, analyze.

A step kind is a class registered with :func:`register_step`; the runner calls, for every step
and before anything trains, ``refs(spec)`` (the steps it needs), ``check(spec, recipe)`` (raises a
:class:`ConfigError` for bad options; returns the metric names the step will report, or None when
they cannot be told) and ``fingerprint(spec, recipe)`` (what makes two runs of the step the same);
then ``run(spec, ctx)`` once per step whose finished result cannot be reused.

Example:
    >>> "train" in list_steps() and "tune" in list_steps()
    True
"""

from __future__ import annotations

import copy
import fnmatch
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from reprlab.base.errors import ConfigError
from reprlab.base.io import read_json
from reprlab.config import apply_overrides
from reprlab.experiments.recipes.spec import Recipe, StepSpec, deep_merge, step_refs, substitute

logger = logging.getLogger(__name__)

_STEPS: dict[str, StepKind] = {}


def register_step(name: str) -> Callable[[type], type]:
    """Class decorator: register a step kind under ``name`` (its instance is used for every step of that kind)."""
    def deco(cls: type) -> type:
        cls.name = name
        _STEPS[name] = cls()
        return cls
    return deco


def get_step(kind: str, *, where: str = "kind") -> StepKind:
    if kind not in _STEPS:
        import difflib

        close = difflib.get_close_matches(kind, list(_STEPS), n=1)
        raise ConfigError(f"{where}={kind!r} is not a step kind", fix=(f"did you mean {close[0]}? " if close else "")
                          + f"choose one of: {', '.join(sorted(_STEPS))}")
    return _STEPS[kind]


def list_steps() -> list[str]:
    return sorted(_STEPS)


@dataclass
class StepOutput:
    """What a step leaves: numbers, named outputs for later steps (``run_dir``, ``best_config``, ...),
    figures (title -> path relative to the step directory) and tables (title, columns, rows)."""

    metrics: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    figures: list[tuple[str, str]] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class StepContext:
    """What a running step sees: its own directory and the outputs of the steps before it."""

    recipe: Recipe
    step_dir: Path
    outputs: dict[str, dict[str, Any]]
    metrics: dict[str, dict[str, Any]]
    #: the records (``step.json``) of earlier directories of this step, finished or failed, newest first
    earlier: list[dict[str, Any]] = field(default_factory=list)
    #: this run's :meth:`StepKind.parts` (fingerprints of the parts that can be reused one by one)
    parts: dict[str, str] = field(default_factory=dict)


def matches(metric: str, names: set[str] | None) -> bool:
    """Whether ``metric`` is among ``names`` (which may hold ``prefix/*`` wildcards); None accepts all."""
    return names is None or metric in names or any(fnmatch.fnmatchcase(metric, n) for n in names if "*" in n)


class StepKind:
    """Base class: override ``check`` and ``run``; ``refs`` finds ``runs``/``run``/``from`` and ``${STEP.x}``."""

    name = ""
    ref_keys: tuple[str, ...] = ("run", "runs", "from")
    options: frozenset[str] = frozenset()

    def refs(self, spec: StepSpec) -> list[str]:
        found = step_refs(spec.options)
        for key in self.ref_keys:
            v = spec.options.get(key)
            found += [v] if isinstance(v, str) else [str(x) for x in (v or [])]
        return list(dict.fromkeys(found))

    def check_options(self, spec: StepSpec) -> None:
        unknown = set(spec.options) - set(self.options)
        if unknown:
            raise ConfigError(f"steps.{spec.name}: unknown option(s) {sorted(unknown)} for kind {self.name!r}",
                              fix=f"use only {sorted(self.options)}")

    def check(self, spec: StepSpec, recipe: Recipe) -> set[str] | None:
        self.check_options(spec)
        return None

    def fingerprint(self, spec: StepSpec, recipe: Recipe) -> Any:
        return spec.options

    def parts(self, spec: StepSpec, recipe: Recipe) -> dict[str, Any]:
        """What identifies each part of the step that a later, changed run of it may reuse on its own
        (a variants step: each variant's run config); empty when the step is one piece."""
        return {}

    def run(self, spec: StepSpec, ctx: StepContext) -> StepOutput:  # pragma: no cover - abstract
        raise NotImplementedError


# -- run configs ---------------------------------------------------------------------------------
def run_raw(spec: StepSpec, recipe: Recipe, outputs: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The run config dict of a step: its ``config`` (a mapping or a YAML path) over the recipe's ``data`` and
    ``seed``, then the step's ``overrides`` and the recipe's run overrides (quick mode, ``run.KEY=V``).

    ``${STEP.x}`` references are replaced from ``outputs`` (placeholders when None: checks before training).
    """
    config = spec.options.get("config") or {}
    if isinstance(config, str):
        path = Path(config)
        for base in (recipe.base_dir.parent, recipe.base_dir, Path.cwd()):
            if (base / config).is_file():
                path = base / config
                break
        if not path.is_file():
            raise ConfigError(f"steps.{spec.name}.config: file {config!r} not found",
                              fix="give a path relative to the repository root (configs/...) or an inline mapping")
        config = yaml.safe_load(path.read_text()) or {}
    if not isinstance(config, dict):
        raise ConfigError(f"steps.{spec.name}.config must be a mapping or a YAML path", fix="see docs/recipes.md")
    raw = copy.deepcopy(config)
    raw["seed"] = recipe.seed  # the recipe's (or --seed): every run of a recipe shares it
    raw["data"] = deep_merge(recipe.data, config.get("data") or {})
    if recipe.data.get("data_dir") is not None:
        raw["data"]["data_dir"] = recipe.data["data_dir"]
    overrides = overrides_of(spec, recipe)
    raw = apply_overrides(raw, overrides) if overrides else raw
    _resolve_data_paths(raw["data"])
    if outputs is None:
        outputs = {name: _PLACEHOLDERS for name in step_refs(raw)}
    return substitute(raw, outputs)


def overrides_of(spec: StepSpec, recipe: Recipe) -> list[str]:
    """The overrides of a step's runs, in order: the step's own, quick mode's (``quick.overrides``, then
    ``quick.steps.STEP.overrides``), the command line's ``run.KEY=VALUE``."""
    return ([str(o) for o in spec.options.get("overrides") or []] + list(recipe.run_overrides)
            + list(spec.quick_overrides) + list(recipe.cli_overrides))


def _resolve_data_paths(data: dict[str, Any]) -> None:
    """A relative ``path`` / ``test_path`` / ``labels_path`` that does not exist as given is looked up under
    ``data_dir`` (or ``$REPRLAB_DATA``): ``data: {name: folder, path: att-faces}`` finds the shared faces."""
    import os

    base = data.get("data_dir") or os.environ.get("REPRLAB_DATA")
    for key in ("path", "test_path", "labels_path", "test_labels_path"):
        value = data.get(key)
        if isinstance(value, str) and base and not Path(value).is_absolute() and not Path(value).exists() \
                and (Path(base).expanduser() / value).exists():
            data[key] = str(Path(base).expanduser() / value)


class _Placeholder(dict):
    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> str:
        return f"<{key} of an earlier step>"


_PLACEHOLDERS = _Placeholder()


def _check_run_config(spec: StepSpec, recipe: Recipe, raw: dict[str, Any]) -> set[str] | None:
    """Build the config, task, data and model as :func:`train` would; the metric names it will report."""
    from reprlab.experiments.search import reported_metrics, split_sections
    from reprlab.experiments.train import _prepare, as_config

    if step_refs(spec.options):
        return None  # the config needs an earlier step's output: checked when it runs
    run_part, _ = split_sections(raw)
    cfg = as_config(run_part)
    task, _, splits, model = _prepare(cfg)
    names = reported_metrics(cfg, task, model, splits)
    if names is None:
        return None
    sections = [k for k in run_part if k not in ("data", "model", "train", "eval", "seed", "name", "output_dir", "task")]
    # a capability section (cluster:, generation:, ...) runs post-run steps that add metrics of their own,
    # under its name or as further test/ scores: those cannot be listed before the run
    extra = {f"{k}/*" for k in sections} | ({"test/*", "gan/*"} if sections else set())
    return names | extra | {"health/*", "train_seconds_this_session"}


def one_class_splits(raw: dict[str, Any], normal_class: int) -> Any:
    """The run's splits with the training and validation images reduced to ``normal_class`` (the one-class
    protocol of :mod:`reprlab.capabilities.anomaly`: train on one class, score the whole test set)."""
    from reprlab.experiments.train import as_config
    from reprlab.runs import Splits
    from reprlab.tasks import get_task

    cfg = as_config(raw)
    splits = get_task(cfg.task).prepare_data(cfg)

    def keep(d: Any) -> Any:
        if d is None:
            return None
        if d.labels is None:
            raise ConfigError("normal_class needs labelled training images", fix="drop normal_class, or use labelled data")
        idx = torch.nonzero(d.labels == int(normal_class)).flatten()
        if len(idx) == 0:
            raise ConfigError(f"normal_class={normal_class} has no training images", fix="choose a class of the data")
        return d.subset(idx)
    return Splits(keep(splits.train), keep(splits.val), splits.test, splits.target)


def run_dir_of(ctx: StepContext, ref: str) -> str:
    """The run directory named by ``STEP`` (a train step) or ``STEP:VARIANT`` (a variant of a variants step)."""
    step, _, variant = ref.partition(":")
    out = ctx.outputs[step]
    key = variant or "run_dir"
    if key not in out:
        raise ConfigError(f"{ref!r} names no run of step {step!r}",
                          fix=f"use one of {sorted(k for k in out if k not in ('step_dir', 'reused_variants'))}")
    return out[key]


@register_step("train")
class TrainStep(StepKind):
    """One run of :func:`reprlab.experiments.train.train` in ``STEP_DIR/run``; ``normal_class`` trains on one
    class only (one-class anomaly protocol). Outputs: ``run_dir``. Metrics: the run's ``metrics.json``."""

    options = frozenset({"config", "overrides", "normal_class"})

    def check(self, spec: StepSpec, recipe: Recipe) -> set[str] | None:
        self.check_options(spec)
        raw = run_raw(spec, recipe)
        names = _check_run_config(spec, recipe, raw)
        if spec.options.get("normal_class") is not None and not step_refs(spec.options):
            one_class_splits(raw, spec.options["normal_class"])
        return names

    def fingerprint(self, spec: StepSpec, recipe: Recipe) -> Any:
        from reprlab.experiments.train import as_config

        raw = run_raw(spec, recipe)
        try:
            resolved = as_config(raw).to_dict()
        except Exception:  # noqa: BLE001 - a config with references: its raw form
            resolved = raw
        return {"config": resolved, "normal_class": spec.options.get("normal_class")}

    def run(self, spec: StepSpec, ctx: StepContext) -> StepOutput:
        from reprlab.experiments.train import train

        raw = run_raw(spec, ctx.recipe, ctx.outputs)
        splits = one_class_splits(raw, spec.options["normal_class"]) if spec.options.get("normal_class") is not None else None
        result = train(raw, run_dir=ctx.step_dir / "run", splits=splits)
        return StepOutput(metrics=_numbers(result.metrics), outputs={"run_dir": str(result.run_dir.resolve())})


def _numbers(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}


@register_step("tune")
class TuneStep(StepKind):
    """An Optuna search (:func:`reprlab.experiments.search.tune`) over the config's ``search:`` section, in
    ``STEP_DIR/study``; ``trials`` overrides ``search.trials``. Outputs: ``best_config`` (a YAML for train),
    ``study_dir``. Metrics: ``best_value``, ``trials_complete``, ``param/KEY``."""

    options = frozenset({"config", "overrides", "trials", "pruner"})

    def check(self, spec: StepSpec, recipe: Recipe) -> set[str] | None:
        self.check_options(spec)
        from reprlab.experiments.search import parse_search, split_sections

        raw = run_raw(spec, recipe)
        run_part, sections = split_sections(raw)
        search = parse_search(sections.get("search"), trials=spec.options.get("trials"), pruner=spec.options.get("pruner"))
        _check_run_config(spec, recipe, run_part)
        return {"best_value", "trials_complete"} | {f"param/{d.key}" for d in search.space}

    def fingerprint(self, spec: StepSpec, recipe: Recipe) -> Any:
        return {"config": run_raw(spec, recipe), "trials": spec.options.get("trials"), "pruner": spec.options.get("pruner")}

    def run(self, spec: StepSpec, ctx: StepContext) -> StepOutput:
        from reprlab.experiments.search import tune

        raw = run_raw(spec, ctx.recipe, ctx.outputs)
        res = tune(raw, trials=spec.options.get("trials"), pruner=spec.options.get("pruner"),
                   output_dir=ctx.step_dir, study_name="study")
        metrics: dict[str, Any] = {"best_value": res.best_value, "trials_complete": res.counts.get("complete", 0)}
        metrics.update({f"param/{k}": v for k, v in res.best_params.items()})
        figures = [(f"search: {p.stem}", str(p.relative_to(ctx.step_dir))) for p in sorted((ctx.step_dir / "study").glob("*.png"))]
        return StepOutput(metrics=metrics, outputs={"best_config": str(res.best_config) if res.best_config else "",
                                                    "study_dir": str(res.study_dir)}, figures=figures)


@register_step("cv")
class CVStep(StepKind):
    """k-fold cross-validation (:func:`reprlab.experiments.cv.cross_validate`) of ``config``, or of the best
    config of a ``tune`` step (``from: STEP``), in ``STEP_DIR/cv``. Metrics: ``mean/M`` and ``std/M`` for every
    fold-table column M (``best/value``, ``fold/psnr``, ...)."""

    options = frozenset({"config", "overrides", "folds", "from"})

    def check(self, spec: StepSpec, recipe: Recipe) -> set[str] | None:
        self.check_options(spec)
        from reprlab.base.validation import check_int

        if spec.options.get("folds") is not None:
            check_int(f"steps.{spec.name}.folds", spec.options["folds"], minimum=2)
        if spec.options.get("from") is None:
            raw = run_raw(spec, recipe)
            from reprlab.experiments.search import split_sections

            names = _check_run_config(spec, recipe, split_sections(raw)[0])
            if names is None:
                return None
        return {"mean/*", "std/*"}

    def fingerprint(self, spec: StepSpec, recipe: Recipe) -> Any:
        return {"config": run_raw(spec, recipe), "folds": spec.options.get("folds"), "from": spec.options.get("from")}

    def run(self, spec: StepSpec, ctx: StepContext) -> StepOutput:
        from reprlab.experiments.cv import cross_validate

        if spec.options.get("from"):
            best = ctx.outputs[spec.options["from"]].get("best_config")
            if not best:
                raise ConfigError(f"steps.{spec.name}.from={spec.options['from']!r}: that step has no best config",
                                  fix="let the search finish at least one trial")
            raw = yaml.safe_load(Path(best).read_text())
            raw = apply_overrides(raw, overrides_of(spec, ctx.recipe))
            raw.pop("search", None)
        else:
            raw = run_raw(spec, ctx.recipe, ctx.outputs)
        res = cross_validate(raw, folds=spec.options.get("folds"), output_dir=ctx.step_dir, name="cv")
        metrics: dict[str, Any] = {}
        for m, (mean, std) in res.summary.items():
            metrics[f"mean/{m}"], metrics[f"std/{m}"] = mean, std
        rows = [{"fold": r.get("fold"), **{m: r.get(m) for m in res.metrics}} for r in res.rows]
        return StepOutput(metrics=metrics, outputs={"cv_dir": str(res.cv_dir)},
                          tables=[{"title": f"{spec.name}: folds", "columns": ["fold", *res.metrics], "rows": rows}])


def combo_label(point: dict[str, Any]) -> str:
    """A sweep row's name from its settings: ``kernel_size=3,stride=1``.

    Example:
        >>> combo_label({"model.kernel_size": 3, "model.loss": "l1"})
        'kernel_size=3,loss=l1'
    """
    return ",".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in point.items())


@register_step("sweep")
class SweepStep(StepKind):
    """A grid sweep (:func:`reprlab.experiments.sweep.sweep`) of the config's ``sweep:`` section, in
    ``STEP_DIR/sweep``. Metrics: ``LABEL/M_mean`` and ``LABEL/M_std`` per grid point (LABEL from
    :func:`combo_label`) and ``LABEL/status``; the sweep table goes into the report."""

    options = frozenset({"config", "overrides", "seeds"})

    def check(self, spec: StepSpec, recipe: Recipe) -> set[str] | None:
        self.check_options(spec)
        import itertools

        from reprlab.experiments.search import split_sections
        from reprlab.experiments.sweep import parse_sweep

        raw = run_raw(spec, recipe)
        run_part, sections = split_sections(raw)
        sw = parse_sweep(sections.get("sweep"), seeds=spec.options.get("seeds"))
        _check_run_config(spec, recipe, run_part)
        labels = [combo_label(dict(zip(sw.grid, v))) for v in itertools.product(*sw.grid.values())]
        return {f"{label}/*" for label in labels}

    def fingerprint(self, spec: StepSpec, recipe: Recipe) -> Any:
        return {"config": run_raw(spec, recipe), "seeds": spec.options.get("seeds")}

    def run(self, spec: StepSpec, ctx: StepContext) -> StepOutput:
        from reprlab.experiments.sweep import sweep

        raw = run_raw(spec, ctx.recipe, ctx.outputs)
        res = sweep(raw, seeds=spec.options.get("seeds"), output_dir=ctx.step_dir, name="sweep")
        metrics: dict[str, Any] = {}
        rows = []
        grid_keys = [k for k in res.rows[0] if "." in k] if res.rows else []
        for r in res.rows:
            label = combo_label({k: r[k] for k in grid_keys})
            metrics[f"{label}/status"] = r["status"]
            for m in res.metrics:
                for suffix in ("mean", "std"):
                    if r.get(f"{m}_{suffix}") is not None:
                        metrics[f"{label}/{m}_{suffix}"] = r[f"{m}_{suffix}"]
            rows.append({"setting": label, "status": r["status"], **{m: r.get(f"{m}_mean") for m in res.metrics}})
        figures = [(f"sweep: {p.stem}", str(p.relative_to(ctx.step_dir))) for p in sorted((ctx.step_dir / "sweep").glob("*.png"))]
        return StepOutput(metrics=metrics, outputs={"sweep_dir": str(res.sweep_dir)}, figures=figures,
                          tables=[{"title": f"{spec.name}: sweep", "columns": ["setting", "status", *res.metrics], "rows": rows}])


@register_step("variants")
class VariantsStep(StepKind):
    """Named variants of one run config, each a :func:`train` run in ``STEP_DIR/VARIANT`` (``variants: {NAME:
    [key=value, ...]}``): settings that go together, such as (kernel, stride, padding) triples, which a grid
    sweep would multiply out. Metrics ``VARIANT/M`` for every metric of each run; the table of ``columns``
    (default: the task's headline test metrics) goes into the report. Outputs ``VARIANT`` -> its run directory.
    When the step changes, a variant whose config and inputs did not change reuses its finished run from an
    earlier directory of the step (listed in the output ``reused_variants``)."""

    options = frozenset({"config", "overrides", "variants", "columns"})

    def _variants(self, spec: StepSpec) -> dict[str, list[str]]:
        v = spec.options.get("variants")
        if not isinstance(v, dict) or not v:
            raise ConfigError(f"steps.{spec.name}.variants must map names to lists of key=value",
                              fix="e.g. variants: {k3: [model.kernel_size=3], k5: [model.kernel_size=5]}")
        return {str(k): [str(o) for o in (x or [])] for k, x in v.items()}

    def _spec_for(self, spec: StepSpec, extra: list[str]) -> StepSpec:
        opts = {k: v for k, v in spec.options.items() if k in ("config", "overrides")}
        opts["overrides"] = [*(opts.get("overrides") or []), *extra]
        return StepSpec(spec.name, "train", opts, spec.quick_overrides)

    def check(self, spec: StepSpec, recipe: Recipe) -> set[str] | None:
        self.check_options(spec)
        names: set[str] = set()
        for variant, extra in self._variants(spec).items():
            reported = _check_run_config(spec, recipe, run_raw(self._spec_for(spec, extra), recipe))
            names |= {f"{variant}/*"} if reported is None else {f"{variant}/{m}" for m in reported}
        return names

    def fingerprint(self, spec: StepSpec, recipe: Recipe) -> Any:
        return {v: run_raw(self._spec_for(spec, extra), recipe) for v, extra in self._variants(spec).items()}

    def parts(self, spec: StepSpec, recipe: Recipe) -> dict[str, Any]:
        return self.fingerprint(spec, recipe)

    @staticmethod
    def finished_variant(ctx: StepContext, variant: str) -> Path | None:
        """A finished run of ``variant`` with this run's config in an earlier directory of the step, if any:
        changing one variant of a recipe then trains that variant only."""
        want = ctx.parts.get(variant)
        for rec in ctx.earlier:
            if want is None or (rec.get("parts") or {}).get(variant) != want:
                continue
            run_dir = Path((rec.get("outputs") or {}).get(variant) or Path(rec["dir"]) / variant)
            status = run_dir / "status.json"
            if status.is_file() and read_json(status).get("state") == "finished" and (run_dir / "metrics.json").is_file():
                return run_dir
        return None

    def run(self, spec: StepSpec, ctx: StepContext) -> StepOutput:
        from reprlab.experiments.train import train
        from reprlab.tasks import get_task

        out = StepOutput()
        rows = []
        columns = spec.options.get("columns")
        for variant, extra in self._variants(spec).items():
            raw = run_raw(self._spec_for(spec, extra), ctx.recipe, ctx.outputs)
            run_dir = self.finished_variant(ctx, variant)
            if run_dir is not None:
                logger.info("recipe step %s: variant %s reused from %s", spec.name, variant, run_dir)
                metrics = read_json(run_dir / "metrics.json")
                out.outputs.setdefault("reused_variants", []).append(variant)
            else:
                result = train(raw, run_dir=ctx.step_dir / variant)
                run_dir, metrics = result.run_dir, result.metrics
            out.metrics.update({f"{variant}/{k}": v for k, v in _numbers(metrics).items()})
            out.outputs[variant] = str(Path(run_dir).resolve())
            cols = columns or [m for m in get_task(raw.get("task", "reconstruct")).headline if m.startswith("test/")]
            rows.append({"variant": variant, "settings": " ".join(extra), **{c: metrics.get(c) for c in cols}})
        out.tables.append({"title": f"{spec.name}: variants", "columns": ["variant", "settings", *cols], "rows": rows})
        return out


@register_step("analyze")
class AnalyzeStep(StepKind):
    """:func:`reprlab.capabilities.analysis.analyze` on a train step's run (``run: STEP``): ``what``
    (embeddings, traversal, interpolation, samples, robustness, kernels, activations), ``method``,
    ``split``, ``max_points``, ``dims``, ``color_by``. Figures: the PNGs it writes."""

    options = frozenset({"run", "what", "method", "split", "max_points", "dims", "color_by", "noise_scales", "n_samples",
                         "binary_classes", "attribute"})

    def check(self, spec: StepSpec, recipe: Recipe) -> set[str] | None:
        self.check_options(spec)
        from reprlab.capabilities.analysis import ANALYSES

        what = spec.options.get("what") or []
        for w in [what] if isinstance(what, str) else what:
            if w not in ANALYSES:
                raise ConfigError(f"steps.{spec.name}.what: {w!r} is not an analysis", fix=f"choose from {list(ANALYSES)}")
        if not isinstance(spec.options.get("run"), str):
            raise ConfigError(f"steps.{spec.name} needs run: STEP (a train step) or STEP:VARIANT", fix="e.g. run: vae")
        return set()

    def refs(self, spec: StepSpec) -> list[str]:
        run = spec.options.get("run")
        return [run.partition(":")[0]] if isinstance(run, str) else []

    def run(self, spec: StepSpec, ctx: StepContext) -> StepOutput:
        from reprlab.capabilities.analysis import analyze

        run_dir = Path(run_dir_of(ctx, spec.options["run"]))
        opts = {k: v for k, v in spec.options.items() if k != "run"}
        analyze(run_dir, **opts)
        figs = [(f"{spec.options['run']}: {p.stem}", str(p)) for p in sorted((run_dir / "analysis").glob("**/*.png"))]
        return StepOutput(figures=figs, outputs={"run_dir": str(run_dir)})


__all__ = ["StepContext", "StepKind", "StepOutput", "combo_label", "get_step", "list_steps", "matches",
           "one_class_splits", "register_step", "run_raw"]
