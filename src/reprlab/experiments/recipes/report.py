"""The recipe's HTML report (``OUT/NAME/report.html``): one self-contained page in reporting's style.

Tables, the expectations with their pass/fail column, the steps (reused, run or skipped, time, directory),
the sweep/fold tables the steps made and every figure as an embedded PNG (a missing file is
listed as missing, never a broken image). Rendered with Jinja2 (template ``templates/recipe.html.j2``,
which includes reporting's stylesheet).
"""

from __future__ import annotations

import glob
import logging
from pathlib import Path
from typing import Any

from reprlab import __version__
from reprlab.base.io import write_text
from reprlab.experiments.recipes.spec import Recipe
from reprlab.reporting.report import TEMPLATES as REPORT_TEMPLATES
from reprlab.reporting.report import format_value, png_data_uri

logger = logging.getLogger(__name__)
TEMPLATES = Path(__file__).resolve().parent / "templates"


def fmt(value: Any) -> str:
    """A number for a table cell (``–`` for a missing one).

    Example:
        >>> fmt(0.123456), fmt(None), fmt(12)
        ('0.1235', '–', '12')
    """
    return "–" if value is None else format_value(value)


def figure_pattern(file: str, record: dict[str, Any]) -> str:
    """The glob of a recipe figure: ``file`` under the step's directory, except that a first part naming one
    of the step's output directories (a variant reused from an earlier directory of the step) goes there.

    Example:
        >>> figure_pattern("dann/adaptation/*.png", {"dir": "/o/adapt-2", "outputs": {"dann": "/o/adapt/dann"}})
        '/o/adapt/dann/adaptation/*.png'
    """
    first, _, rest = file.partition("/")
    target = (record.get("outputs") or {}).get(first)
    if rest and isinstance(target, str) and Path(target).is_absolute():
        return str(Path(target) / rest)
    return str(Path(record["dir"]) / file)


def collect_figures(r: Recipe, records: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The recipe's ``figures:`` (globs in the step directories), then the figures the steps declared."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for f in r.figures:
        if records[f.step].get("state") == "skipped":
            continue  # the step's row says why it did not run
        paths = sorted(glob.glob(figure_pattern(f.file, records[f.step]), recursive=True))
        if not paths:
            logger.warning("recipe %s: figure %r (%s in step %s) is missing", r.name, f.title, f.file, f.step)
            out.append({"title": f.title, "uri": None, "caption": f"missing: {f.step}/{f.file}"})
        for p in paths:
            seen.add(str(Path(p).resolve()))
            out.append({"title": f.title + ("" if len(paths) == 1 else f" ({Path(p).stem})"), "uri": png_data_uri(Path(p)),
                        "caption": f"{f.step}: {Path(p).name}"})
    for name, rec in records.items():
        for title, rel in rec.get("figures") or []:
            p = Path(rel) if Path(rel).is_absolute() else Path(rec["dir"]) / rel
            if str(p.resolve()) in seen:
                continue
            seen.add(str(p.resolve()))
            out.append({"title": title, "uri": png_data_uri(p), "caption": f"{name}: {p.name}"})
    return out


def write_recipe_report(root: Path, r: Recipe, records: dict[str, dict[str, Any]], tables: list[dict[str, Any]],
                        expectations: list[dict[str, Any]], seconds: float) -> Path:
    """Render ``root/report.html``; returns its path."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(TEMPLATES)),
                                                         jinja2.FileSystemLoader(str(REPORT_TEMPLATES))]),
                             autoescape=jinja2.select_autoescape(enabled_extensions=("html", "j2"), default=True),
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["fmt"] = fmt
    steps = [{"name": n, "kind": rec.get("kind"), "dir": rec.get("dir"), "seconds": rec.get("seconds"),
              "state": rec["state"] if rec.get("state") == "skipped" else "reused" if rec.get("reused") else "run",
              "reason": rec.get("reason", "")} for n, rec in records.items()]
    step_tables = [t for rec in records.values() for t in rec.get("tables") or []]
    html = env.get_template("recipe.html.j2").render(
        title=f"Recipe {r.name}" + (" (quick)" if r.quick else ""), recipe=r, tables=tables, expectations=expectations,
        steps=steps, step_tables=step_tables, figures=collect_figures(r, records), seconds=seconds, version=__version__,
        budget=r.budget)
    path = root / "report.html"
    write_text(path, html)
    return path


__all__ = ["collect_figures", "figure_pattern", "fmt", "write_recipe_report"]
