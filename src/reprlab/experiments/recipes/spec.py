"""A recipe file: parsing, quick mode, command-line overrides and every check made before anything trains.

A recipe is a YAML mapping (see docs/recipes.md)::

    name: anomaly-autoencoders
    description: ...
    budget: {cpu_minutes: 40, machine: "2-core CPU"}
    seed: 0
    data: {name: fashion-mnist}           # merged into the data section of every run step
    steps:                                # run in order; each has a registered kind
      conv: {kind: train, config: {model: {name: conv_ae}}, overrides: [train.epochs=10]}
      scores: {kind: anomaly, runs: [conv], normal_class: 0}
      imagenet: {kind: train, optional: true, config: {model: {pretrained: "${env:MY_WEIGHTS}"}}}  # skipped when unset
    quick: {data: {...}, overrides: [...], steps: {STEP: {...}}, expect: [...]}
    tables: [{title: ..., columns: {LABEL: METRIC}, rows: {LABEL: STEP or {step: STEP, prefix: P}}}]
    figures: [{title: ..., step: STEP, file: GLOB}]
    expect: [{step: STEP, metric: METRIC, value: V, tolerance: T} | {..., at_least: V} | {..., at_most: V}]

Example:
    >>> r = parse_recipe({"name": "x", "budget": {"cpu_minutes": 1},
    ...                   "steps": {"a": {"kind": "train", "config": {"model": {"name": "fc_ae"}}}}})
    >>> r.name, list(r.steps), r.steps["a"].kind
    ('x', ['a'], 'train')
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reprlab.base.errors import ConfigError
from reprlab.config import apply_overrides

#: Where the recipes of this checkout live (``experiments/`` at the repository root).
RECIPE_DIR = Path(__file__).resolve().parents[4] / "experiments"
TOP_KEYS = frozenset({"name", "description", "budget", "seed", "data", "steps", "quick", "tables", "figures", "expect"})
QUICK_KEYS = frozenset({"data", "overrides", "steps", "expect"})
STEP_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
REF = re.compile(r"\$\{([A-Za-z][A-Za-z0-9_]*)\.([A-Za-z_]+)\}")
ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class StepSpec:
    """One named step: its kind and options (``overrides`` apply to the run configs it trains)."""

    name: str
    kind: str
    options: dict[str, Any]
    quick_overrides: list[str] = field(default_factory=list)  # quick.steps.NAME.overrides: after quick.overrides
    skipped: str = ""  # why an ``optional`` step does not run (an environment variable it names is not set)


@dataclass
class Expectation:
    """A headline number: ``value ± tolerance``, or a bound (``at_least`` / ``at_most``)."""

    step: str
    metric: str
    value: float | None = None
    tolerance: float | None = None
    at_least: float | None = None
    at_most: float | None = None
    label: str = ""

    def expected_text(self) -> str:
        if self.value is not None:
            return f"{self.value:g} ± {self.tolerance:g}"
        parts = ([f"≥ {self.at_least:g}"] if self.at_least is not None else []) + \
                ([f"≤ {self.at_most:g}"] if self.at_most is not None else [])
        return " and ".join(parts)

    def check(self, actual: Any) -> str:
        """``pass``, ``fail`` or ``missing`` (no finite number)."""
        try:
            x = float(actual)
        except (TypeError, ValueError):
            return "missing"
        if not math.isfinite(x):
            return "missing"
        ok = True
        if self.value is not None:
            ok = abs(x - self.value) <= self.tolerance  # type: ignore[operator]
        if self.at_least is not None:
            ok = ok and x >= self.at_least
        if self.at_most is not None:
            ok = ok and x <= self.at_most
        return "pass" if ok else "fail"


@dataclass
class TableSpec:
    title: str
    columns: dict[str, str]
    rows: list[tuple[str, str, str]]  # (label, step, prefix)
    note: str = ""


@dataclass
class FigureSpec:
    title: str
    step: str
    file: str


@dataclass
class Recipe:
    """A parsed, resolved recipe (quick mode and overrides already applied)."""

    name: str
    description: str
    budget: dict[str, Any]
    seed: int
    data: dict[str, Any]
    steps: dict[str, StepSpec]
    tables: list[TableSpec]
    figures: list[FigureSpec]
    expect: list[Expectation]
    run_overrides: list[str] = field(default_factory=list)  # quick.overrides, on every run
    cli_overrides: list[str] = field(default_factory=list)  # run.KEY=VALUE from the command line: last
    quick: bool = False
    path: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path is not None else Path.cwd()


def deep_merge(base: dict, extra: dict) -> dict:
    """``base`` updated recursively by ``extra`` (new dict; lists are replaced).

    Example:
        >>> deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}})
        {'a': {'b': 1, 'c': 3}}
    """
    out = copy.deepcopy(base)
    for k, v in (extra or {}).items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def find_recipe(name_or_path: str | Path) -> Path:
    """A recipe path: the file itself, or ``NAME`` / ``NAME.yaml`` under ``experiments/`` (this checkout's,
    else the packaged copies)."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    stem = p.name.removesuffix(".yaml")
    for folder in (RECIPE_DIR, Path(__file__).resolve().parent / "yaml"):
        if (folder / f"{stem}.yaml").is_file() and p.parent == Path("."):
            return folder / f"{stem}.yaml"
    known = ", ".join(sorted(x.stem for x in list_recipe_files())) or "none found"
    raise ConfigError(f"recipe {str(name_or_path)!r} is not a file and not a known recipe name",
                      fix=f"give a path to a recipe YAML, or one of: {known}")


def list_recipe_files() -> list[Path]:
    """The recipe YAMLs shipped with this checkout (``experiments/*.yaml``)."""
    for folder in (RECIPE_DIR, Path(__file__).resolve().parent / "yaml"):
        if folder.is_dir() and list(folder.glob("*.yaml")):
            return sorted(folder.glob("*.yaml"))
    return []


def read_recipe(path: str | Path) -> dict[str, Any]:
    path = find_recipe(path)
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"recipe {path} is not valid YAML ({exc})", fix="fix the YAML syntax") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"recipe {path} must be a mapping, got {type(raw).__name__}", fix="see docs/recipes.md")
    return raw


def _mapping(where: str, value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping, got {value!r}", fix=f"write {where} as key: value lines")
    return value


def _number(where: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where} must be a number, got {value!r}", fix=f"set {where} to a number")
    return float(value)


def parse_recipe(raw: dict[str, Any], *, quick: bool = False, overrides: list[str] | tuple[str, ...] = (),
                 seed: int | None = None, data_dir: str | None = None, path: Path | None = None) -> Recipe:
    """Validate the recipe's structure and resolve quick mode and overrides (step kinds are checked by the runner).

    ``overrides`` are ``key=value`` on the recipe itself (``data.name=arrays``, ``steps.conv.overrides=[...]``);
    ``run.KEY=VALUE`` applies ``KEY=VALUE`` to every run config.
    """
    raw = copy.deepcopy(raw)
    unknown = set(raw) - TOP_KEYS
    if unknown:
        raise ConfigError(f"unknown recipe key(s) {sorted(unknown)}", fix=f"use only {sorted(TOP_KEYS)}")
    recipe_overrides = [o for o in overrides if not o.startswith("run.")]
    run_overrides = [o[len("run."):] for o in overrides if o.startswith("run.")]
    for o in overrides:
        if "=" not in o:
            raise ConfigError(f"override {o!r} is not key=value", fix="e.g. data.name=arrays or run.train.epochs=2")
    raw = apply_overrides(raw, recipe_overrides) if recipe_overrides else raw
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError("the recipe has no name", fix="add `name: my-recipe` at the top")
    budget = _mapping("budget", raw.get("budget"))
    if not isinstance(budget.get("cpu_minutes"), (int, float)):
        raise ConfigError(f"recipe {name!r} states no budget.cpu_minutes", fix="add budget: {cpu_minutes: N} (the full-size CPU time)")
    q = _mapping("quick", raw.get("quick"))
    if set(q) - QUICK_KEYS:
        raise ConfigError(f"unknown quick key(s) {sorted(set(q) - QUICK_KEYS)}", fix=f"use only {sorted(QUICK_KEYS)}")
    data = _mapping("data", raw.get("data"))
    steps_raw = _mapping("steps", raw.get("steps"))
    if not steps_raw:
        raise ConfigError(f"recipe {name!r} has no steps", fix="add a steps: mapping (see docs/recipes.md)")
    expect_raw = raw.get("expect") or []
    cli_overrides, run_overrides = run_overrides, []
    late: dict[str, list[str]] = {}
    if quick:
        data = deep_merge(data, _mapping("quick.data", q.get("data")))
        run_overrides = [str(o) for o in q.get("overrides") or []]
        for sname, extra in _mapping("quick.steps", q.get("steps")).items():
            if sname not in steps_raw:
                raise ConfigError(f"quick.steps.{sname} names no step", fix=f"use one of {list(steps_raw)}")
            extra = dict(_mapping(f"quick.steps.{sname}", extra))
            late[sname] = [str(o) for o in extra.pop("overrides", None) or []]
            steps_raw[sname] = deep_merge(_mapping(f"steps.{sname}", steps_raw[sname]), extra)
        expect_raw = q.get("expect") or []
    if data_dir is not None:
        data["data_dir"] = str(data_dir)
    run_seed = int(raw.get("seed", 0)) if seed is None else int(seed)
    steps: dict[str, StepSpec] = {}
    for sname, opts in steps_raw.items():
        opts = dict(_mapping(f"steps.{sname}", opts))
        if not STEP_NAME.match(str(sname)):
            raise ConfigError(f"step name {sname!r} is not a plain identifier", fix="use letters, digits and _")
        kind = opts.pop("kind", None)
        if not isinstance(kind, str):
            raise ConfigError(f"step {sname!r} has no kind", fix="add kind: train (or tune, cv, sweep, an analysis)")
        optional = opts.pop("optional", False)
        opts, skipped = expand_env(opts, step=str(sname), optional=optional)
        steps[str(sname)] = StepSpec(str(sname), kind, opts, late.get(str(sname), []), skipped)
    tables = [_table(i, t) for i, t in enumerate(raw.get("tables") or [])]
    figures = []
    for i, f in enumerate(raw.get("figures") or []):
        f = _mapping(f"figures[{i}]", f)
        if not f.get("step") or not f.get("file"):
            raise ConfigError(f"figures[{i}] needs step and file", fix="e.g. {title: ..., step: conv, file: run/figures/*.png}")
        figures.append(FigureSpec(str(f.get("title", f["file"])), str(f["step"]), str(f["file"])))
    expect = [_expectation(i, e) for i, e in enumerate(expect_raw)]
    return Recipe(name=name, description=str(raw.get("description", "")), budget=budget, seed=run_seed, data=data,
                  steps=steps, tables=tables, figures=figures, expect=expect, run_overrides=run_overrides,
                  cli_overrides=cli_overrides,
                  quick=quick, path=path, raw=raw)


def _table(i: int, t: Any) -> TableSpec:
    t = _mapping(f"tables[{i}]", t)
    cols = _mapping(f"tables[{i}].columns", t.get("columns"))
    rows_raw = _mapping(f"tables[{i}].rows", t.get("rows"))
    if not cols or not rows_raw:
        raise ConfigError(f"tables[{i}] needs columns and rows", fix="columns: {LABEL: METRIC}, rows: {LABEL: STEP}")
    rows = []
    for label, r in rows_raw.items():
        if isinstance(r, str):
            rows.append((str(label), r, ""))
        else:
            r = _mapping(f"tables[{i}].rows.{label}", r)
            rows.append((str(label), str(r.get("step")), str(r.get("prefix", ""))))
    return TableSpec(str(t.get("title", f"Table {i + 1}")), {str(k): str(v) for k, v in cols.items()}, rows,
                     str(t.get("note", "")))


def _expectation(i: int, e: Any) -> Expectation:
    e = _mapping(f"expect[{i}]", e)
    where = f"expect[{i}]"
    if not e.get("step") or not e.get("metric"):
        raise ConfigError(f"{where} needs step and metric", fix="e.g. {step: scores, metric: conv/auroc_recon, value: 0.8, tolerance: 0.05}")
    x = Expectation(str(e["step"]), str(e["metric"]), _number(f"{where}.value", e.get("value")),
                    _number(f"{where}.tolerance", e.get("tolerance")), _number(f"{where}.at_least", e.get("at_least")),
                    _number(f"{where}.at_most", e.get("at_most")), str(e.get("label", "")))
    if x.value is None and x.at_least is None and x.at_most is None:
        raise ConfigError(f"{where} states no expected value", fix="give value + tolerance, or at_least / at_most")
    if x.value is not None and (x.tolerance is None or x.tolerance < 0):
        raise ConfigError(f"{where} has a value but no tolerance >= 0", fix="add tolerance: T (what three seeds stay within)")
    return x


def expand_env(options: Any, *, step: str, optional: Any = False) -> tuple[Any, str]:
    """Replace ``${env:NAME}`` in a step's options by the environment variable ``NAME``.

    Returns the options and, for an ``optional`` step (``optional: true`` or a sentence saying what to
    set) that names an unset variable, why it is skipped; a step that is not optional and names an
    unset variable is a :class:`ConfigError`. Inputs that cannot be shipped (weights files, private
    data) enter a recipe this way.

    Example:
        >>> import os; os.environ["DOC_WEIGHTS"] = "/w.pth"
        >>> expand_env({"config": {"model": {"pretrained": "${env:DOC_WEIGHTS}"}}}, step="s")
        ({'config': {'model': {'pretrained': '/w.pth'}}}, '')
        >>> expand_env({"x": "${env:DOC_UNSET_VAR}"}, step="s", optional="the weights")[1]
        'DOC_UNSET_VAR is not set (the weights)'
    """
    import os

    if not isinstance(optional, (bool, str)):
        raise ConfigError(f"steps.{step}.optional must be true or a sentence, got {optional!r}",
                          fix="write optional: true, or optional: \"what to set, and why\"")
    missing: list[str] = []

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            missing.extend(m.group(1) for m in ENV_REF.finditer(v) if m.group(1) not in os.environ)
            return ENV_REF.sub(lambda m: os.environ.get(m.group(1), m.group(0)), v)
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v
    options = walk(options)
    if not missing:
        return options, ""
    names = " and ".join(dict.fromkeys(missing))
    if not optional:
        raise ConfigError(f"steps.{step} uses ${{env:{missing[0]}}}, but {names} is not set",
                          fix=f"set {missing[0]}=... in the environment, or mark the step optional: true to skip it")
    return options, f"{names} is not set" + (f" ({optional})" if isinstance(optional, str) and optional else "")


def step_refs(options: Any) -> list[str]:
    """Step names referenced as ``${STEP.output}`` anywhere in ``options``.

    Example:
        >>> step_refs({"model": {"encoder_run": "${ae.run_dir}"}})
        ['ae']
    """
    found: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, str):
            found.extend(m.group(1) for m in REF.finditer(v))
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)
    walk(options)
    return found


def substitute(options: Any, outputs: dict[str, dict[str, Any]]) -> Any:
    """Replace ``${STEP.key}`` by the finished step's output ``key`` (e.g. ``run_dir``)."""
    if isinstance(options, str):
        def one(m: re.Match) -> str:
            out = outputs.get(m.group(1), {})
            if m.group(2) not in out:
                raise ConfigError(f"${{{m.group(1)}.{m.group(2)}}}: step {m.group(1)!r} has no output {m.group(2)!r}",
                                  fix=f"use one of {sorted(out)}")
            return str(out[m.group(2)])
        return REF.sub(one, options)
    if isinstance(options, dict):
        return {k: substitute(v, outputs) for k, v in options.items()}
    if isinstance(options, list):
        return [substitute(v, outputs) for v in options]
    return options


__all__ = [
    "RECIPE_DIR",
    "Expectation",
    "FigureSpec",
    "Recipe",
    "StepSpec",
    "TableSpec",
    "deep_merge",
    "expand_env",
    "find_recipe",
    "list_recipe_files",
    "parse_recipe",
    "read_recipe",
    "step_refs",
    "substitute",
]
