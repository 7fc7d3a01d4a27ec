"""Run a recipe: check everything, run (or reuse) each step, then tables, figures, expectations and the report.

Every step runs in ``OUT/NAME/STEP`` (quick mode: ``OUT/NAME-quick/STEP``). A step records its
fingerprint (a hash of its kind, resolved options and run config, and the fingerprints of the
steps it reads) in ``step.json``; a later run of the recipe reuses a finished step with the same
fingerprint, and runs a changed or failed one again in a new directory (``STEP-2``, ``STEP-3``,
...), never overwriting. An ``optional`` step whose ``${env:NAME}`` is unset is skipped, with the
steps that read it: their table cells say why, and their expectations are ``skipped``, not failed.

Example:
    >>> result = run_recipe("experiments/ae-clustering.yaml", quick=True)  # doctest: +SKIP
    >>> result.report  # doctest: +SKIP
    PosixPath('runs/ae-clustering-quick/report.html')
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reprlab.base.errors import ConfigError, ReprlabError
from reprlab.base.io import read_json, write_json
from reprlab.experiments.recipes import analyses as _analyses  # noqa: F401  (registers the analysis step kinds)
from reprlab.experiments.recipes.spec import Recipe, find_recipe, parse_recipe, read_recipe
from reprlab.experiments.recipes.steps import StepContext, StepOutput, get_step, matches

logger = logging.getLogger(__name__)


@dataclass
class RecipeResult:
    """What :func:`run_recipe` returns."""

    recipe: Recipe
    out_dir: Path
    steps: dict[str, dict[str, Any]]
    tables: list[dict[str, Any]]
    expectations: list[dict[str, Any]]
    report: Path
    seconds: float
    trained: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)

    @property
    def failed_expectations(self) -> list[dict[str, Any]]:
        """Expectations that failed or have no value (those of skipped optional steps do not count)."""
        return [e for e in self.expectations if e["result"] not in ("pass", "skipped")]

    @property
    def skipped(self) -> dict[str, str]:
        """Steps that did not run, with why (an optional step's input is not given)."""
        return {n: rec["reason"] for n, rec in self.steps.items() if rec.get("state") == "skipped"}

    def expectation_lines(self) -> str:
        """The expectations as a fixed-width table with a pass/fail column."""
        if not self.expectations:
            return "no expectations" + (" in quick mode" if self.recipe.quick else "")
        head = f"{'expectation':<44} {'value':>10}  {'expected':<22} result"
        lines = [head, "-" * len(head)]
        for e in self.expectations:
            v = e["value"]
            shown = f"{v:.4g}" if isinstance(v, (int, float)) else str(v)
            lines.append(f"{e['name'][:44]:<44} {shown:>10}  {e['expected']:<22} {e['result'].upper()}")
        return "\n".join(lines)


def fingerprint(data: Any) -> str:
    """sha256 of the canonical JSON of ``data``.

    Example:
        >>> fingerprint({"b": 1, "a": [2]}) == fingerprint({"a": [2], "b": 1})
        True
    """
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def load(recipe: str | Path | dict, *, quick: bool = False, overrides: list[str] | tuple[str, ...] = (),
         seed: int | None = None, data_dir: str | None = None) -> Recipe:
    """Read and parse a recipe (a path, a name under ``experiments/``, or a dict)."""
    if isinstance(recipe, dict):
        return parse_recipe(recipe, quick=quick, overrides=overrides, seed=seed, data_dir=data_dir)
    path = find_recipe(recipe)
    return parse_recipe(read_recipe(path), quick=quick, overrides=overrides, seed=seed, data_dir=data_dir, path=path)


def check_recipe(recipe: Recipe) -> dict[str, set[str] | None]:
    """Every check that can be made before training: step kinds and options, references between steps
    (to earlier steps only), the run configs (data, model, task), the metrics named in tables and
    expectations, the steps named by figures. Returns the metric names each step will report."""
    order = list(recipe.steps)
    reported: dict[str, set[str] | None] = {}
    for i, (name, spec) in enumerate(recipe.steps.items()):
        kind = get_step(spec.kind, where=f"steps.{name}.kind")
        for ref in kind.refs(spec):
            if ref not in recipe.steps:
                raise ConfigError(f"steps.{name} refers to step {ref!r}, which the recipe does not have",
                                  fix=f"use one of {order[:i] or 'the steps before it'}")
            if order.index(ref) >= i:
                raise ConfigError(f"steps.{name} refers to step {ref!r}, which comes after it",
                                  fix=f"move {ref!r} before {name!r} (steps run in the order written)")
            if recipe.steps[ref].skipped and not spec.skipped:
                spec.skipped = f"it reads step {ref!r}, which is skipped: {recipe.steps[ref].skipped}"
        if spec.skipped:
            reported[name] = None  # its config names an input that is not given: nothing more can be checked
            continue
        try:
            reported[name] = kind.check(spec, recipe)
        except ReprlabError as exc:
            if f"steps.{name}" in str(exc):
                raise
            raise type(exc)(f"steps.{name}: {exc.problem}", fix=exc.fix) from None

    def need(step: str, metric: str, where: str) -> None:
        if step not in recipe.steps:
            raise ConfigError(f"{where} names step {step!r}, which the recipe does not have", fix=f"use one of {order}")
        if not matches(metric, reported[step]):
            import difflib

            shown = sorted(reported[step] or [])
            close = difflib.get_close_matches(metric, shown, n=1)
            raise ConfigError(f"{where}: step {step!r} does not report metric {metric!r}",
                              fix=(f"did you mean {close[0]}? " if close else "") + f"it reports: {', '.join(shown[:30])}")

    for t in recipe.tables:
        for label, step, prefix in t.rows:
            for col, metric in t.columns.items():
                need(step, prefix + metric, f"table {t.title!r}, row {label!r}, column {col!r}")
    for e in recipe.expect:
        need(e.step, e.metric, f"expectation {e.step}:{e.metric}")
    for f in recipe.figures:
        if f.step not in recipe.steps:
            raise ConfigError(f"figure {f.title!r} names step {f.step!r}, which the recipe does not have", fix=f"use one of {order}")
    return reported


def _earlier_records(root: Path, name: str) -> list[dict[str, Any]]:
    """The records of the step's directories (``STEP``, ``STEP-2``, ...), newest first, each with its ``dir``."""
    pattern = re.compile(rf"^{re.escape(name)}(-(\d+))?$")
    found = []
    for d in root.glob(f"{name}*"):
        m = pattern.match(d.name)
        if m and (d / "step.json").is_file():
            found.append((int(m.group(2) or 1), dict(read_json(d / "step.json"), dir=str(d))))
    return [rec for _, rec in sorted(found, key=lambda x: -x[0])]


def _step_dir(root: Path, name: str, fp: str) -> tuple[Path, dict[str, Any] | None]:
    """The finished directory of this fingerprint (and its record), else the first free ``STEP[-k]``."""
    for rec in reversed(_earlier_records(root, name)):
        if rec.get("fingerprint") == fp and rec.get("state") == "finished":
            return Path(rec.pop("dir")), rec
    d, k = root / name, 2
    while d.exists():
        d, k = root / f"{name}-{k}", k + 1
    return d, None


def run_recipe(recipe: str | Path | dict | Recipe, *, quick: bool = False, overrides: list[str] | tuple[str, ...] = (),
               seed: int | None = None, data_dir: str | None = None, output_dir: str | Path = "runs") -> RecipeResult:
    """Run ``recipe`` (see the module docstring); every check happens before the first step runs."""
    from reprlab.experiments.recipes.report import write_recipe_report

    started = time.perf_counter()
    r = recipe if isinstance(recipe, Recipe) else load(recipe, quick=quick, overrides=overrides, seed=seed, data_dir=data_dir)
    check_recipe(r)
    root = Path(output_dir) / (r.name + ("-quick" if r.quick else ""))
    root.mkdir(parents=True, exist_ok=True)
    outputs: dict[str, dict[str, Any]] = {}
    metrics: dict[str, dict[str, Any]] = {}
    records: dict[str, dict[str, Any]] = {}
    fps: dict[str, str] = {}
    trained, reused = [], []
    for name, spec in r.steps.items():
        if spec.skipped:
            logger.warning("recipe %s: step %s skipped: %s", r.name, name, spec.skipped)
            records[name] = {"step": name, "kind": spec.kind, "state": "skipped", "reason": spec.skipped}
            outputs[name], metrics[name] = {}, {}
            continue
        kind = get_step(spec.kind)
        deps = {ref: fps[ref] for ref in kind.refs(spec)}
        fp = fingerprint({"kind": spec.kind, "spec": kind.fingerprint(spec, r), "deps": deps})
        parts = {part: fingerprint({"part": v, "deps": deps}) for part, v in kind.parts(spec, r).items()}
        fps[name] = fp
        step_dir, rec = _step_dir(root, name, fp)
        if rec is not None:
            logger.info("recipe %s: step %s reused from %s", r.name, name, step_dir)
            reused.append(name)
            if parts and rec.get("parts") != parts:  # a record from before parts were kept: same fingerprint, same parts
                write_json(step_dir / "step.json", dict(rec, parts=parts))
            rec = dict(rec, reused=True)
        else:
            logger.info("recipe %s: step %s (%s) in %s", r.name, name, spec.kind, step_dir)
            earlier = _earlier_records(root, name)
            step_dir.mkdir(parents=True)
            rec = {"step": name, "kind": spec.kind, "fingerprint": fp, "state": "running", **({"parts": parts} if parts else {})}
            write_json(step_dir / "step.json", rec)
            t0 = time.perf_counter()
            try:
                out: StepOutput = kind.run(spec, StepContext(r, step_dir, outputs, metrics, earlier, parts))
            except BaseException as exc:
                rec.update(state="failed", error=str(exc) or type(exc).__name__)
                write_json(step_dir / "step.json", rec)
                raise
            rec.update(state="finished", seconds=round(time.perf_counter() - t0, 3), metrics=out.metrics,
                       outputs=out.outputs, figures=[list(f) for f in out.figures], tables=out.tables)
            write_json(step_dir / "step.json", rec)
            trained.append(name)
        rec["dir"] = str(step_dir)
        outputs[name] = dict(rec.get("outputs") or {}, step_dir=str(step_dir))
        metrics[name] = dict(rec.get("metrics") or {})
        records[name] = rec
    tables = build_tables(r, metrics)
    expectations = check_expectations(r, metrics)
    seconds = time.perf_counter() - started
    summary = {"name": r.name, "quick": r.quick, "budget": r.budget, "seconds": round(seconds, 3),
               "trained": trained, "reused": reused,
               "steps": {n: {k: rec.get(k) for k in ("kind", "state", "reason", "dir", "fingerprint", "seconds", "metrics",
                                                     "outputs") if k in rec} for n, rec in records.items()},
               "tables": tables, "expectations": expectations}
    write_json(root / "recipe.json", summary)
    report = write_recipe_report(root, r, records, tables, expectations, seconds)
    return RecipeResult(r, root, records, tables, expectations, report, seconds, trained, reused)


def build_tables(r: Recipe, metrics: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The recipe's tables as ``{title, columns, rows: [{label, cells}]}`` filled from the steps' metrics."""
    out = []
    for t in r.tables:
        rows = [{"label": label, "cells": [metrics.get(step, {}).get(prefix + m) for m in t.columns.values()],
                 "skipped": r.steps[step].skipped if step in r.steps else ""}
                for label, step, prefix in t.rows]
        out.append({"title": t.title, "columns": list(t.columns), "metrics": list(t.columns.values()), "rows": rows,
                    "note": t.note})
    return out


def check_expectations(r: Recipe, metrics: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per expectation: name, value, expected text and ``pass`` / ``fail`` / ``missing`` (``skipped``
    for a step that did not run)."""
    rows = []
    for e in r.expect:
        value = metrics.get(e.step, {}).get(e.metric)
        skipped = r.steps[e.step].skipped
        rows.append({"name": e.label or f"{e.step}: {e.metric}", "step": e.step, "metric": e.metric, "value": value,
                     "expected": e.expected_text() + (f" (step skipped: {skipped})" if skipped else ""),
                     "result": "skipped" if skipped else e.check(value)})
    return rows


__all__ = ["RecipeResult", "check_expectations", "check_recipe", "fingerprint", "load", "run_recipe"]
