"""Grid sweeps: ``reprlab sweep`` and the ``sweep:`` config section.

A grid over config keys times seeds; each grid point and seed is one run directory under
``SWEEP_DIR/trials/``. Underneath is an Optuna study (same storages, ``workers`` and resume
as :mod:`reprlab.experiments.search`): every combination is *enqueued* as a trial with fixed
parameters before the workers start, and workers take waiting trials from the storage, which
hands each to exactly one worker. (Optuna's ``GridSampler`` picks grid points itself and may
run a point twice when several workers finish the grid together; enqueuing avoids that.)
A killed sweep continues with the same command: finished combinations are kept, the
interrupted one runs again.

Combinations that cannot be built (a kernel larger than the feature map, a padding not
smaller than the kernel, ...) are rows marked ``invalid`` with the reason. Outputs:
``sweep.csv`` (one row per combination: mean and std over seeds of each metric),
``sweep.md``, ``report.html`` (best value per column highlighted, with the plots) and
``figures/METRIC_vs_KEY.png`` (each metric against each swept setting).

Config::

    sweep:
      grid:
        model.kernel_size: [3, 5, 7]
        model.stride: [1, 2]
      seeds: [0, 1]          # or a count: 2 -> [0, 1]
      metrics: null          # table columns; null: best/value and the task's headline metrics
      workers: 1
      storage: null          # as for search

Example:
    >>> spec = parse_sweep({"grid": {"model.stride": [1, 2]}}, axes=["model.kernel_size=3,5"], seeds=2)
    >>> len(combinations(spec))
    8
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import logging
import math
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from reprlab.base.errors import ConfigError, ReprlabError
from reprlab.base.io import write_json, write_text
from reprlab.base.validation import check_int
from reprlab.config import RunConfig
from reprlab.experiments.search import (_optuna, check_key, check_value, decode_choice, default_study_name,
                                        encode_choice, fmt, html_page, html_table, infer_direction,
                                        load_raw, prepare_study, recover_interrupted, redact, run_workers,
                                        section_mapping, split_sections, start_trial, with_params, write_csv,
                                        write_markdown)
from reprlab.experiments.train import as_config
from reprlab.tasks import get_task

logger = logging.getLogger(__name__)

_PRIMITIVE = (type(None), bool, int, float, str)


@dataclass
class SweepSpec:
    """The ``sweep:`` section."""

    grid: dict[str, list] = field(default_factory=dict)
    seeds: Any = None
    metrics: list[str] | None = None
    workers: int = 1
    storage: str | None = None
    name: str | None = None


def parse_axis(item: str) -> tuple[str, list]:
    """``"model.kernel_size=3,5,7"`` -> ``("model.kernel_size", [3, 5, 7])`` (values parsed as YAML).

    Example:
        >>> parse_axis("model.channels=[8,16],[16,32]")
        ('model.channels', [[8, 16], [16, 32]])
    """
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"sweep axis {item!r} is not of the form key=v1,v2,...", fix="e.g. model.kernel_size=3,5,7")
    if not text.strip():
        return key.strip(), []
    try:
        values = yaml.safe_load(f"[{text}]")
    except yaml.YAMLError:
        values = [v.strip() for v in text.split(",")]
    return key.strip(), [_float_text(v) for v in values]


def _float_text(value: Any) -> Any:
    """YAML 1.1 reads ``1e-3`` as a string; users mean a number (as in config overrides)."""
    if isinstance(value, str) and any(c.isdigit() for c in value):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def parse_sweep(raw: dict | None, *, axes: list[str] | tuple[str, ...] = (), **cli: Any) -> SweepSpec:
    """The :class:`SweepSpec` of a ``sweep:`` mapping plus ``axes`` (``key=v1,v2``) and ``cli`` values."""
    raw = section_mapping("sweep", raw, cli, {f.name for f in dataclasses.fields(SweepSpec)})
    spec = SweepSpec(**raw)
    if not isinstance(spec.grid, dict):
        raise ConfigError(f"sweep.grid must map config keys to lists of values, got {spec.grid!r}",
                          fix="e.g. sweep.grid: {model.kernel_size: [3, 5, 7]}")
    grid = {str(k): v for k, v in spec.grid.items()}
    for item in axes:
        key, values = parse_axis(item)
        grid[key] = values
    for key, values in grid.items():
        if not isinstance(values, list):
            grid[key] = values = [values]
        if not values:
            raise ConfigError(f"sweep.grid.{key} has no values, so the sweep has zero combinations",
                              fix=f"give at least one value, e.g. {key}=a,b")
        texts = [encode_choice(v) for v in values]
        if len(set(texts)) != len(texts):
            raise ConfigError(f"sweep.grid.{key} lists a value twice: {values!r}", fix="list each value once")
    if not grid:
        raise ConfigError("the sweep has zero combinations: sweep.grid is empty",
                          fix="add grid keys, e.g. `reprlab sweep CONFIG model.kernel_size=3,5,7` or sweep.grid in the config")
    if "seed" in grid:
        raise ConfigError("sweep.grid.seed: seeds are not a grid key", fix="use sweep.seeds: [0, 1, 2] (or --seeds 0,1,2)")
    spec.grid = grid
    if isinstance(spec.seeds, str):
        spec.seeds = parse_axis(f"seeds={spec.seeds}")[1]
    if isinstance(spec.seeds, int) and not isinstance(spec.seeds, bool):
        check_int("sweep.seeds", spec.seeds, minimum=1)
        spec.seeds = list(range(spec.seeds))
    if spec.seeds is not None:
        if not isinstance(spec.seeds, list) or not spec.seeds:
            raise ConfigError(f"sweep.seeds={spec.seeds!r} gives no seeds, so the sweep has zero combinations",
                              fix="e.g. sweep.seeds: [0, 1] or a count, sweep.seeds: 3")
        for s in spec.seeds:
            check_int("sweep.seeds", s, minimum=0)
        if len(set(spec.seeds)) != len(spec.seeds):
            raise ConfigError(f"sweep.seeds lists a seed twice: {spec.seeds!r}", fix="list each seed once")
    check_int("sweep.workers", spec.workers, minimum=1)
    if spec.metrics is not None and (not isinstance(spec.metrics, list) or not all(isinstance(m, str) for m in spec.metrics)):
        raise ConfigError(f"sweep.metrics must be a list of metric names, got {spec.metrics!r}", fix="e.g. sweep.metrics: [test/psnr, test/ssim]")
    return spec


def _stored(value: Any) -> Any:
    return value if isinstance(value, _PRIMITIVE) else encode_choice(value)


def combinations(spec: SweepSpec, default_seed: int = 0) -> list[dict[str, Any]]:
    """Every grid point times every seed, as stored parameters (``seed`` last)."""
    keys = list(spec.grid)
    seeds = spec.seeds if spec.seeds is not None else [default_seed]
    return [{**{k: _stored(v) for k, v in zip(keys, values)}, "seed": s}
            for values in itertools.product(*(spec.grid[k] for k in keys)) for s in seeds]


def _combo_key(params: dict[str, Any], keys: list[str]) -> tuple:
    return tuple(encode_choice(params.get(k)) for k in keys)


def _sweep_objective(job: dict) -> Callable[[Any], float]:
    from reprlab.experiments.train import train

    optuna = _optuna()
    spec = parse_sweep(job["sweep"])
    keys = list(spec.grid) + ["seed"]
    choices = {k: [_stored(v) for v in vals] for k, vals in spec.grid.items()}
    choices["seed"] = list(job["seeds"])
    study_dir = Path(job["study_dir"])
    raw = job["raw"]

    def objective(trial: Any) -> float:
        run_dir = start_trial(trial, study_dir)
        stored = {k: trial.suggest_categorical(k, choices[k]) for k in keys}
        twin = _earlier_twin(trial, stored, keys)
        if twin is not None:  # another worker already runs (or ran) this combination: never train it twice
            trial.set_user_attr("duplicate_of", twin)
            raise optuna.TrialPruned(f"duplicate of trial {twin}")
        params = {k: decode_choice(v) if isinstance(v, str) and k in spec.grid and not all(
            isinstance(x, _PRIMITIVE) for x in spec.grid[k]) else v for k, v in stored.items()}
        try:
            result = train(with_params(raw, params), run_dir=run_dir)
        except Exception as exc:
            message = str(exc) if isinstance(exc, ReprlabError) else f"{type(exc).__name__}: {exc}"
            trial.set_user_attr("error", message[:2000])
            if isinstance(exc, ReprlabError) and not run_dir.exists():  # refused before training: cannot be built
                trial.set_user_attr("invalid", True)
            logger.warning("sweep trial %d (%s): %s", trial.number, stored, message)
            raise
        numeric = {k: float(v) for k, v in result.metrics.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))}
        trial.set_user_attr("metrics", numeric)
        return numeric.get("best/value", 0.0)

    return objective


def _earlier_twin(trial: Any, stored: dict[str, Any], keys: list[str]) -> int | None:
    TrialState = _optuna().trial.TrialState
    me = _combo_key(stored, keys)
    for t in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)):
        if t.number < trial.number and _combo_key(t.params, keys) == me and "duplicate_of" not in t.user_attrs:
            return t.number
    return None


@dataclass
class SweepResult:
    """What :func:`sweep` returns: one row per combination (``KEY_mean`` / ``KEY_std`` per metric)."""

    sweep_dir: Path
    rows: list[dict[str, Any]]
    metrics: list[str]
    counts: dict[str, int]
    report: Path | None = None

    @property
    def summary(self) -> str:
        valid = sum(1 for r in self.rows if r["status"] == "ok")
        return f"{len(self.rows)} combinations: {valid} ok, {len(self.rows) - valid} invalid / failed / pending"


def sweep(config: RunConfig | dict | str | Path | None, *, overrides: list[str] | tuple[str, ...] = (),
          axes: list[str] | tuple[str, ...] = (), seeds: Any = None, workers: int | None = None,
          storage: str | None = None, name: str | None = None, output_dir: str | Path | None = None) -> SweepResult:
    """Run (or continue) the sweep of the config's ``sweep:`` section plus ``axes`` (``key=v1,v2``).

    Every key and every value is checked against the config before any run directory exists;
    combinations that only fail when their model is built become ``invalid`` rows.
    """
    raw, sections = split_sections(load_raw(config, overrides))
    spec = parse_sweep(sections.get("sweep"), axes=axes, seeds=seeds, workers=workers, storage=storage, name=name)
    cfg = as_config(raw)
    task = get_task(cfg.task)
    for key, values in spec.grid.items():
        check_key(cfg, key, f"sweep.grid.{key}")
        for value in values:
            check_value(raw, key, value, f"sweep.grid.{key}")
    seed_list = spec.seeds if spec.seeds is not None else [cfg.seed]
    combos = combinations(spec, cfg.seed)
    metrics = spec.metrics or ["best/value", *[m for m in task.headline if m.startswith("test/")]]
    study_name = spec.name or default_study_name(config, cfg, "-sweep")
    sweep_dir = Path(output_dir or cfg.output_dir) / study_name
    attrs = {"kind": "sweep", "grid": {k: [encode_choice(v) for v in vals] for k, vals in spec.grid.items()},
             "seeds": seed_list}
    setup = prepare_study(sweep_dir, study_name, spec.storage, "minimize", attrs)
    study = setup.study
    recover_interrupted(study)
    keys = list(spec.grid) + ["seed"]
    optuna = _optuna()
    TrialState = optuna.trial.TrialState
    present = {_combo_key(t.params if t.params else t.system_attrs.get("fixed_params", {}), keys)
               for t in study.get_trials(deepcopy=False)
               if t.state in (TrialState.COMPLETE, TrialState.WAITING, TrialState.RUNNING)
               or (t.state == TrialState.FAIL and "error" in t.user_attrs)}
    for combo in combos:
        if _combo_key(combo, keys) not in present:
            study.enqueue_trial(combo, skip_if_exists=False)
    waiting = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    threads = cfg.train.num_threads or (max(1, (os.cpu_count() or 1) // spec.workers) if spec.workers > 1 else None)
    job = {"objective": "reprlab.experiments.sweep:_sweep_objective", "raw": raw, "search": None,
           "sweep": {**(sections.get("sweep") or {}), "grid": spec.grid, "seeds": seed_list, "workers": spec.workers},
           "seeds": seed_list, "study_dir": str(sweep_dir.resolve()), "study_name": study_name,
           "storage": setup.storage_url, "seed": cfg.seed, "epochs": cfg.train.epochs, "total": len(combos),
           "threads": threads}
    logger.info("sweep %s in %s: %d of %d combination(s) to run on %d worker(s)", study_name,
                redact(setup.storage_url), waiting, len(combos), spec.workers)
    run_workers(job, waiting, spec.workers)
    return write_sweep_outputs(study, sweep_dir, spec, seed_list, metrics, cfg, task)


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def sweep_rows(study: Any, spec: SweepSpec, seeds: list[int], metrics: list[str]) -> list[dict[str, Any]]:
    """One row per grid point (in grid order): the settings, status, seeds done, mean/std of each metric."""
    TrialState = _optuna().trial.TrialState
    grid_keys = list(spec.grid)
    by_combo: dict[tuple, list[Any]] = {}
    for t in study.get_trials(deepcopy=False):
        params = t.params or t.system_attrs.get("fixed_params", {})
        by_combo.setdefault(_combo_key(params, grid_keys), []).append(t)
    rows = []
    for values in itertools.product(*(spec.grid[k] for k in grid_keys)):
        point = dict(zip(grid_keys, values))
        trials = by_combo.get(_combo_key({k: _stored(v) for k, v in point.items()}, grid_keys), [])
        done = [t for t in trials if t.state == TrialState.COMPLETE]
        invalid = [t for t in trials if t.user_attrs.get("invalid")]
        failed = [t for t in trials if t.state == TrialState.FAIL and "error" in t.user_attrs and not t.user_attrs.get("invalid")]
        if invalid:
            status, note = "invalid", invalid[0].user_attrs["error"]
        elif done and len({t.params.get("seed") for t in done}) >= len(seeds):
            status, note = "ok", ""
        elif failed:
            status, note = "failed", failed[0].user_attrs["error"]
        else:
            status, note = "pending", f"{len(done)} of {len(seeds)} seeds done"
        row: dict[str, Any] = {**point, "status": status, "seeds": len({t.params.get('seed') for t in done}), "note": note}
        for m in metrics:
            mean, std = _mean_std([t.user_attrs.get("metrics", {})[m] for t in done if m in t.user_attrs.get("metrics", {})])
            row[f"{m}_mean"], row[f"{m}_std"] = mean, std
        row["run_dirs"] = " ".join(Path(t.user_attrs.get("run_dir", "")).name for t in done)
        rows.append(row)
    return rows


def best_cells(rows: list[dict[str, Any]], metrics: list[str], cfg: RunConfig, task: Any) -> dict[tuple[int, str], bool]:
    """``(row index, metric) -> True`` for the best mean of each metric whose direction is known."""
    out = {}
    for m in metrics:
        direction = infer_direction(m, cfg, task)
        scored = [(r[f"{m}_mean"], i) for i, r in enumerate(rows) if r.get(f"{m}_mean") is not None]
        if direction is None or not scored:
            continue
        best = (max if direction == "maximize" else min)(scored)[0]
        out.update({(i, m): True for v, i in scored if v == best})
    return out


def plot_metric_vs_settings(rows: list[dict[str, Any]], spec: SweepSpec, metrics: list[str], folder: Path) -> list[Path]:
    """``folder/METRIC_vs_KEY.png``: each metric (mean ± std over seeds) against each swept key, one
    line per combination of the other keys."""
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    keys = list(spec.grid)
    paths = []
    for m in metrics:
        for key in keys:
            xs = [fmt(v) for v in spec.grid[key]]
            others = [k for k in keys if k != key]
            fig, ax = plt.subplots(figsize=(5.5, 3.6))
            groups: dict[tuple, dict[str, tuple[float, float]]] = {}
            for r in rows:
                if r.get(f"{m}_mean") is not None:
                    groups.setdefault(tuple(fmt(r[k]) for k in others), {})[fmt(r[key])] = (r[f"{m}_mean"], r[f"{m}_std"] or 0.0)
            if not groups:
                plt.close(fig)
                continue
            for other, points in groups.items():
                pos = [i for i, x in enumerate(xs) if x in points]
                label = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in zip(others, other)) or m
                ax.errorbar(pos, [points[xs[i]][0] for i in pos], yerr=[points[xs[i]][1] for i in pos], marker="o",
                            capsize=3, label=label)
            ax.set_xticks(range(len(xs)), xs)
            ax.set_xlabel(key)
            ax.set_ylabel(f"{m} (mean ± std over seeds)")
            if 1 < len(groups) <= 12:
                ax.legend(fontsize=7)
            fig.tight_layout()
            path = folder / f"{m.replace('/', '_')}_vs_{key.replace('.', '_')}.png"
            fig.savefig(path, dpi=90)
            plt.close(fig)
            paths.append(path)
    return paths


def write_sweep_outputs(study: Any, sweep_dir: Path, spec: SweepSpec, seeds: list[int], metrics: list[str],
                        cfg: RunConfig, task: Any) -> SweepResult:
    """``sweep.csv``, ``sweep.md``, ``report.html``, ``figures/*.png`` and ``sweep.json``."""
    TrialState = _optuna().trial.TrialState
    if spec.metrics is None:  # the default columns that some run reported
        seen = set().union(*(t.user_attrs.get("metrics", {}).keys() for t in study.get_trials(deepcopy=False)))
        metrics = [m for m in metrics if m in seen] or metrics
    rows = sweep_rows(study, spec, seeds, metrics)
    keys = list(spec.grid)
    columns_csv = [*keys, "status", "seeds", *[f"{m}_{s}" for m in metrics for s in ("mean", "std")], "note", "run_dirs"]
    best = best_cells(rows, metrics, cfg, task)
    shown = []
    for i, r in enumerate(rows):
        cells = {k: r[k] for k in keys} | {"status": r["status"], "seeds": r["seeds"], "note": r["note"]}
        for m in metrics:
            mean, std = r[f"{m}_mean"], r[f"{m}_std"]
            text = "" if mean is None else f"{mean:.4g} ± {std:.2g}"
            cells[m] = f"**{text}**" if best.get((i, m)) else text
        shown.append(cells)
    columns_md = [*keys, "status", "seeds", *metrics, "note"]
    write_csv(rows, sweep_dir / "sweep.csv", columns_csv)
    write_markdown(shown, sweep_dir / "sweep.md", columns_md)
    figures = plot_metric_vs_settings(rows, spec, metrics, sweep_dir / "figures")
    html_rows = [{**s, **{m: s[m].strip("*") for m in metrics}, "state": r["status"]} for s, r in zip(shown, rows)]
    counts = {s.name.lower(): sum(1 for t in study.get_trials(deepcopy=False) if t.state == s) for s in TrialState}
    parts = [f"<p>{len(rows)} combinations × {len(seeds)} seed(s) {seeds}; mean ± sample std over seeds; "
             f"the best mean of each metric is highlighted. Trials: "
             f"{', '.join(f'{k} {v}' for k, v in counts.items() if v)}.</p>",
             html_table(html_rows, columns_md, best)]
    for path in figures:
        parts.append(f"<h3>{path.stem}</h3><img src=\"data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}\">")
    report = write_text(sweep_dir / "report.html", html_page(f"Sweep {study.study_name}", parts))
    write_json(sweep_dir / "sweep.json", {"grid": {k: list(v) for k, v in spec.grid.items()}, "seeds": seeds,
                                          "metrics": metrics, "rows": rows, "counts": counts})
    return SweepResult(sweep_dir, rows, metrics, counts, report)


__all__ = ["SweepResult", "SweepSpec", "combinations", "parse_axis", "parse_sweep", "sweep"]
