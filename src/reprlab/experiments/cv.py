"""k-fold cross-validation: ``reprlab cv`` and the ``cv:`` config section.

The training data of a run (train + validation, after ``data.max_train``) is cut into k folds
with scikit-learn (``StratifiedKFold`` when the images have labels, ``KFold`` otherwise,
shuffled with the run's seed); fold *i* trains on the other k-1 folds and validates on fold *i*
(best checkpoint, early stopping and the pruner see it as ``val/``). The test split is the run's
own and is never used for training or model choice. Each fold is an ordinary run directory
``CV_DIR/fold-i`` (with ``fold.json``: the fold's indices); after training, the task scores
the best checkpoint on the held-out fold (``fold/mse``, ``fold/psnr``, ``fold/ssim`` for
reconstruction) besides its usual ``test/*``. Outputs: ``folds.csv``, ``folds.md``,
``report.html`` (one row per fold, then mean and sample std) and ``cv.json``.

A killed cross-validation continues with the same command: finished folds are kept.

Config::

    cv:
      folds: 5
      stratify: auto      # auto (when labels exist) | true | false
      metric: best/value  # what a search with `search.objective: cv` averages
      seed: null          # the fold shuffle; null: the run's seed

Example:
    >>> parse_cv({"folds": 3}).folds
    3
    >>> result = cross_validate("configs/conv_ae.yaml", folds=5)  # doctest: +SKIP
    >>> result.summary["fold/psnr"]  # doctest: +SKIP
    (18.2, 0.3)
"""

from __future__ import annotations

import dataclasses
import logging
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reprlab.base.errors import ConfigError
from reprlab.base.io import read_json, write_json, write_text
from reprlab.base.validation import check_choice, check_int
from reprlab.config import RunConfig
from reprlab.experiments.search import (html_page, html_table, load_raw, section_mapping, split_sections, with_params,
                                        write_table)
from reprlab.experiments.train import as_config, train
from reprlab.runs import RunDir, Splits, resolve_device
from reprlab.tasks import Task, get_task

logger = logging.getLogger(__name__)


@dataclass
class CVSpec:
    """The ``cv:`` section."""

    folds: int = 5
    stratify: Any = "auto"
    metric: str = "best/value"
    seed: int | None = None
    name: str | None = None


def parse_cv(raw: dict | None, **cli: Any) -> CVSpec:
    """The :class:`CVSpec` of a ``cv:`` mapping; ``cli`` values (not None) override it."""
    raw = section_mapping("cv", raw, cli, {f.name for f in dataclasses.fields(CVSpec)})
    spec = CVSpec(**raw)
    check_int("cv.folds", spec.folds, minimum=2)
    check_choice("cv.stratify", spec.stratify, ("auto", True, False))
    if spec.seed is not None:
        check_int("cv.seed", spec.seed, minimum=0)
    if not isinstance(spec.metric, str) or not spec.metric:
        raise ConfigError(f"cv.metric must be a metric name, got {spec.metric!r}", fix="e.g. cv.metric: fold/psnr")
    return spec


def cv_data(cfg: RunConfig, task: Task) -> tuple[Any, Any]:
    """``(pool, test)``: every training image of the run (no validation split taken out) and its test split."""
    pool_cfg = as_config(cfg, ["data.val_fraction=0"])
    splits = task.prepare_data(pool_cfg)
    return splits.train, splits.test


def _stratified(spec: CVSpec, pool: Any) -> bool:
    if spec.stratify is True and pool.labels is None:
        raise ConfigError("cv.stratify=true but the training images have no labels",
                          fix="set cv.stratify: auto (or false), or use a labelled dataset")
    return pool.labels is not None and spec.stratify in ("auto", True)


def check_folds(cfg: RunConfig, task: Task, spec: CVSpec, pool: Any = None) -> None:
    """A :class:`ConfigError` when ``spec.folds`` cannot be cut from the training data (more folds than
    images, or than images of the smallest class when stratified)."""
    if pool is None:
        pool, _ = cv_data(cfg, task)
    if spec.folds > len(pool):
        raise ConfigError(f"cv.folds={spec.folds} is more than the {len(pool)} training images",
                          fix=f"use at most cv.folds={len(pool)} (or more data: data.max_train)")
    if _stratified(spec, pool):
        classes, counts = np.unique(pool.labels.numpy(), return_counts=True)
        smallest = int(counts.min())
        if spec.folds > smallest:
            cls = int(classes[counts.argmin()])
            raise ConfigError(f"cv.folds={spec.folds} is more than the {smallest} training images of the smallest "
                              f"class ({cls}): stratified folds need every class in every fold",
                              fix=f"use cv.folds<={smallest}, more data (data.max_train), or cv.stratify: false")


def fold_indices(pool: Any, spec: CVSpec, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(train indices, validation indices)]`` for each fold, from scikit-learn's splitters."""
    from sklearn.model_selection import KFold, StratifiedKFold

    n = len(pool)
    if _stratified(spec, pool):
        splitter = StratifiedKFold(n_splits=spec.folds, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(n), pool.labels.numpy()))
    return list(KFold(n_splits=spec.folds, shuffle=True, random_state=seed).split(np.zeros(n)))


def _finished_fold(cv_dir: Path, k: int) -> Path | None:
    for path in sorted(cv_dir.glob(f"fold-{k}*")):
        if path.name.split("-")[1] == str(k) and RunDir(path).status().get("state") == "finished" \
                and (path / "fold.json").exists():
            return path
    return None


def _free_fold_dir(cv_dir: Path, k: int) -> Path:
    path, n = cv_dir / f"fold-{k}", 1
    while path.exists():
        n += 1
        path = cv_dir / f"fold-{k}-{n}"
    return path


@dataclass
class CVResult:
    """What :func:`cross_validate` returns: the fold rows and ``summary[metric] = (mean, std)``."""

    cv_dir: Path
    rows: list[dict[str, Any]]
    summary: dict[str, tuple[float, float]]
    metrics: list[str]

    def line(self, metrics: list[str] | None = None) -> str:
        keys = metrics or [m for m in self.metrics if m.startswith(("fold/", "test/"))][:6]
        return "  ".join(f"{k}={self.summary[k][0]:.4f}±{self.summary[k][1]:.4f}" for k in keys if k in self.summary)


def run_folds(raw: dict, spec: CVSpec, cv_dir: Path, *, on_fold: Any = None) -> list[dict[str, Any]]:
    """Train every fold of ``raw`` (a run config dict) under ``cv_dir``; ``on_fold(k, row)`` after each."""
    cfg = as_config(raw)
    task = get_task(cfg.task)
    pool, test = cv_data(cfg, task)
    check_folds(cfg, task, spec, pool)
    seed = cfg.seed if spec.seed is None else spec.seed
    folds = fold_indices(pool, spec, seed)
    if cfg.data.val_fraction <= 0:  # the fold is the validation split: monitor val/, not train/
        raw = with_params(raw, {"data.val_fraction": round(min(0.9, 1.0 / spec.folds), 4)})
    cv_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for k, (tr, va) in enumerate(folds, start=1):
        done = _finished_fold(cv_dir, k)
        if done is not None:
            row = read_json(done / "fold.json")["row"]
            logger.info("fold %d/%d already finished in %s", k, spec.folds, done)
        else:
            run_dir = _free_fold_dir(cv_dir, k)
            splits = Splits(pool.subset(torch.as_tensor(tr)), pool.subset(torch.as_tensor(va)), test)
            result = train(raw, run_dir=run_dir, splits=splits)
            device = resolve_device(cfg.train.device)
            scores = task.score(cfg, result.model.to(device), splits.val, device, max_images=cfg.eval.max_images)
            held_out = {f"fold/{k2.split('/', 1)[-1]}": v for k2, v in scores.items()}
            metrics = {**result.metrics, **held_out}
            write_json(run_dir / "metrics.json", metrics)
            row = {"fold": k, "run_dir": str(run_dir.resolve()), "n_train": len(tr), "n_val": len(va),
                   **{m: v for m, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}}
            write_json(run_dir / "fold.json", {"fold": k, "folds": spec.folds, "seed": seed,
                                               "stratified": _stratified(spec, pool),
                                               "val_indices": [int(i) for i in va], "row": row})
        rows.append(row)
        if on_fold is not None:
            on_fold(k, row)
    return rows


def summarise(rows: list[dict[str, Any]], metrics: list[str]) -> dict[str, tuple[float, float]]:
    """``metric -> (mean, sample std)`` over the fold rows (std 0 for one fold).

    Example:
        >>> summarise([{"a": 1.0}, {"a": 3.0}], ["a"])
        {'a': (2.0, 1.4142135623730951)}
    """
    out = {}
    for m in metrics:
        values = [float(r[m]) for r in rows if isinstance(r.get(m), (int, float)) and math.isfinite(float(r[m]))]
        if values:
            out[m] = (statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0)
    return out


def table_metrics(rows: list[dict[str, Any]], task: Task) -> list[str]:
    """The columns of the fold table: ``best/value``, the held-out ``fold/*`` scores, the task's test headline."""
    present = set().union(*(r.keys() for r in rows)) if rows else set()
    fold = sorted(m for m in present if m.startswith("fold/") and m != "fold/num_images")
    test = [m for m in task.headline if m in present]
    return [m for m in ("best/value", "best/epoch") if m in present] + fold + test


def cross_validate(config: RunConfig | dict | str | Path | None, *, overrides: list[str] | tuple[str, ...] = (),
                   folds: int | None = None, output_dir: str | Path | None = None, name: str | None = None) -> CVResult:
    """Cross-validate the config's run over ``folds`` folds (see the module docstring); checks before any run."""
    raw, sections = split_sections(load_raw(config, overrides))
    spec = parse_cv(sections.get("cv"), folds=folds, name=name)
    cfg = as_config(raw)
    task = get_task(cfg.task)
    check_folds(cfg, task, spec)
    stem = cfg.name or (Path(config).stem if isinstance(config, (str, Path)) else "cv")
    cv_dir = Path(output_dir or cfg.output_dir) / (spec.name or f"{stem}-cv{spec.folds}")  # --name: that folder
    rows = run_folds(raw, spec, cv_dir)
    metrics = table_metrics(rows, task)
    summary = summarise(rows, metrics)
    write_cv_outputs(cv_dir, rows, metrics, summary, spec)
    return CVResult(cv_dir, rows, summary, metrics)


def write_cv_outputs(cv_dir: Path, rows: list[dict[str, Any]], metrics: list[str],
                     summary: dict[str, tuple[float, float]], spec: CVSpec) -> None:
    """``folds.csv``, ``folds.md``, ``report.html`` (folds, mean, std) and ``cv.json``."""
    table = [dict(r) for r in rows]
    table.append({"fold": "mean", **{m: summary[m][0] for m in summary}})
    table.append({"fold": "std", **{m: summary[m][1] for m in summary}})
    columns = ["fold", "n_train", "n_val", *metrics, "run_dir"]
    write_table(table, cv_dir / "folds.csv", cv_dir / "folds.md", columns)
    shown = [{**r, "run_dir": r.get("run_dir")} for r in table]
    parts = [f"<p>{spec.folds} folds of the training data; the test split is the run's own. Mean and sample std over folds.</p>",
             "<p>" + " &nbsp; ".join(f"<b>{m}</b> {summary[m][0]:.4g} ± {summary[m][1]:.2g}" for m in summary) + "</p>",
             html_table(shown, columns)]
    write_text(cv_dir / "report.html", html_page(f"Cross-validation: {cv_dir.name}", parts))
    write_json(cv_dir / "cv.json", {"folds": spec.folds, "metrics": metrics,
                                    "summary": {m: {"mean": v[0], "std": v[1]} for m, v in summary.items()},
                                    "rows": rows})


def cv_objective(raw: dict, cv_section: dict, trial_dir: Path, *, trial: Any, direction: str) -> float:
    """A search trial's value: the mean of ``cv.metric`` over the folds (each fold reported to the
    trial as an intermediate value, so a pruner can stop a trial after any fold)."""
    import optuna

    spec = parse_cv(cv_section)
    values: list[float] = []

    def on_fold(k: int, row: dict[str, Any]) -> None:
        value = row.get(spec.metric)
        if value is None or not math.isfinite(float(value)):
            raise ConfigError(f"fold {k} has no finite {spec.metric} (got {value!r})",
                              fix="choose a cv.metric the folds report (best/value, fold/..., test/...)")
        values.append(float(value))
        trial.report(statistics.fmean(values), k - 1)
        if k < spec.folds and trial.should_prune():
            raise optuna.TrialPruned(f"pruned after fold {k} (mean {spec.metric}={statistics.fmean(values):.5g})")

    run_folds(raw, spec, Path(trial_dir), on_fold=on_fold)
    return statistics.fmean(values)


__all__ = ["CVResult", "CVSpec", "check_folds", "cross_validate", "cv_objective", "fold_indices", "parse_cv"]
