"""Self-contained HTML reports: one run (``report.html``) and a comparison of runs (``compare.html``).

Every image is embedded as a base64 ``data:`` URI and the CSS is inline, so the file opens
anywhere without a network (a Content-Security-Policy forbids any other source). The
templates are Jinja2 files in ``reprlab/reporting/templates/``.

:func:`write_report` gathers the config, metrics, status, environment, the run's figures
(learning curves, reconstruction grids, ...) and every section listed in the run's
``*/index.json`` files (``analysis/``, ``clustering/``, and whatever later steps write in
the same schema: items with ``key``, ``kind``, ``title``, ``caption`` and ``files``). It
never runs an analysis and imports no capability: the steps that produce results write
their index, and the report only renders them. :func:`write_comparison`
puts several runs side by side: a metrics table (one row per run, the best value of each
column highlighted, differences to the first run) and the same figures in columns.

Example:
    >>> from reprlab.reporting.report import write_report, write_comparison
    >>> write_report("runs/conv_ae-fashion-mnist-20261123-101500")  # doctest: +SKIP
    PosixPath('runs/conv_ae-fashion-mnist-20261123-101500/report.html')
    >>> write_comparison(["runs/ae", "runs/vae"], "runs/ae-vs-vae")  # doctest: +SKIP
    PosixPath('runs/ae-vs-vae/compare.html')
"""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from reprlab.base.errors import ConfigError
from reprlab.runs import RunDir
from reprlab.base.io import read_json, write_text
from reprlab.reporting.figures import plot_robustness
import reprlab
from reprlab.base.io import atomic_write

logger = logging.getLogger(__name__)

__all__ = ["INDEX_ORDER", "default_comparison_dir", "index_sections", "metric_direction", "read_index", "write_comparison", "write_report"]

TEMPLATES = Path(__file__).resolve().parent / "templates"

#: Result folders whose ``index.json`` come first in the report, in this order (others follow, sorted).
INDEX_ORDER: tuple[str, ...] = ("analysis", "clustering")
#: Sections with more images than this start collapsed, per result folder.
COLLAPSE_ABOVE: dict[str, int] = {"analysis": 4}

#: Run figures written by training, in report order: (file under figures/, title, caption).
RUN_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("loss_curves.png", "Learning curves", "loss terms per epoch, train and validation"),
    ("reconstructions.png", "Reconstructions (chosen images)", "originals above their reconstructions"),
    ("best.png", "Best reconstructions", "lowest per-image MSE on the test set"),
    ("worst.png", "Worst reconstructions", "highest per-image MSE on the test set"),
    ("score_histogram.png", "Per-image reconstruction error", "distribution of test-set MSE"),
)

# Run times (train_seconds, time_s, ...) get no direction: a slower run is not a worse model.
_LOWER_BETTER = {"mse", "l1", "loss", "nll", "bce", "fd", "kid", "gen_fd", "gen_kid"}  # generation: Fréchet / kernel distances
_HIGHER_BETTER = {"psnr", "ssim", "elbo", "elbo_nats", "precision", "recall", "gen_precision", "gen_recall"}
_METRIC_ORDER = ("test/mse", "test/psnr", "test/ssim", "test/l1", "test/elbo_nats", "test/kl")


def metric_direction(key: str) -> str | None:
    """``"min"``, ``"max"`` or ``None`` (no better direction) for a metric name.

    Example:
        >>> metric_direction("test/psnr"), metric_direction("val/mse"), metric_direction("test/kl")
        ('max', 'min', None)
        >>> metric_direction("train_seconds"), metric_direction("analysis/time_s")
        (None, None)
    """
    leaf = key.rsplit("/", 1)[-1]
    if leaf in _LOWER_BETTER:
        return "min"
    if leaf in _HIGHER_BETTER:
        return "max"
    return None


# ----------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------
def _environment():
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                              autoescape=jinja2.select_autoescape(enabled_extensions=("html", "j2"), default=True),
                              trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)


def png_data_uri(path: Path) -> str | None:
    """``data:image/png;base64,...`` of a PNG, or None when it is missing or not a PNG."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    if not raw.startswith(b"\x89PNG\r\n\x1a\n"):
        logger.warning("report: %s is not a PNG; left out", path)
        return None
    return "data:image/png;base64," + base64.b64encode(raw).decode("ascii")


def format_value(value: Any) -> str:
    """A number for a report table: thousands separators for ints, 4 significant digits (or
    scientific notation for very large / small values) for floats.

    Example:
        >>> format_value(0.123456), format_value(12000), format_value(1e-5)
        ('0.1235', '12,000', '1.000e-05')
    """
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3e}"
        return f"{value:.4g}"
    return str(value)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = read_json(path)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _config(run: RunDir) -> tuple[dict[str, Any], str]:
    path = run.path / "config.yaml"
    try:
        text = path.read_text()
        raw = yaml.safe_load(text) or {}
    except (OSError, yaml.YAMLError):
        return {}, ""
    return (raw if isinstance(raw, dict) else {}), text


def _ordered_metric_keys(keys: Sequence[str]) -> list[str]:
    first = [k for k in _METRIC_ORDER if k in keys]
    rest = sorted(k for k in keys if k not in first)
    groups = ([k for k in rest if k.startswith("test/")], [k for k in rest if k.startswith("val/")],
              [k for k in rest if k.startswith("train/")], [k for k in rest if "/" not in k])
    seen = set(first)
    out = list(first)
    for g in groups:
        out += [k for k in g if k not in seen]
        seen.update(g)
    return out + [k for k in rest if k not in seen]


def index_sections(items: Sequence[Any], base: Path, *, data_uri: Any = None,
                   collapse_above: int | None = None) -> list[dict[str, Any]]:
    """Report sections from the ``items`` of an ``index.json`` (``analysis/``, ``clustering/``).

    Each item's ``files`` are relative to ``base``: PNGs become embedded images (through
    ``data_uri``, default: this module's), other existing files are listed as links
    ``<base name>/<file>``. Sections with more than ``collapse_above`` images start
    collapsed. Items that are not dicts are skipped.

    Example:
        >>> index_sections([{"key": "k", "title": "T", "files": ["missing.png"]}, "junk"], Path("/nonexistent"))
        [{'key': 'k', 'kind': '', 'title': 'T', 'caption': '', 'images': [], 'files': [], 'collapsed': False}]
    """
    data_uri = data_uri or png_data_uri
    sections = []
    for item in items:
        if not isinstance(item, dict):
            continue
        images, files = [], []
        for rel in item.get("files", []):
            p = base / str(rel)
            if p.suffix.lower() == ".png":
                uri = data_uri(p)
                if uri:
                    images.append({"src": uri, "alt": f"{item.get('title', '')}: {p.stem}", "name": p.stem})
            elif p.exists():
                files.append(f"{base.name}/{rel}")
        sections.append({"key": str(item.get("key", "")), "kind": str(item.get("kind", "")),
                         "title": str(item.get("title", "")), "caption": str(item.get("caption", "")),
                         "images": images, "files": files,
                         "collapsed": collapse_above is not None and len(images) > collapse_above})
    return sections


def read_index(folder: Path) -> dict[str, Any]:
    """``FOLDER/index.json`` as ``{"items": [...], "skipped": [...]}`` (empty when absent or unreadable).

    Example:
        >>> read_index(Path("/nonexistent"))
        {'items': [], 'skipped': []}
    """
    try:
        index = read_json(folder / "index.json")
    except (OSError, ValueError):
        return {"items": [], "skipped": []}
    if not isinstance(index, dict) or not isinstance(index.get("items"), list):
        return {"items": [], "skipped": []}
    skipped = index.get("skipped", [])
    return {"items": index["items"], "skipped": [s for s in skipped if isinstance(s, dict)] if isinstance(skipped, list) else []}


def _index_sections(run: RunDir) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Sections and skipped entries of every ``RUN_DIR/*/index.json``, known folders first."""
    folders = sorted((p.parent for p in run.path.glob("*/index.json")),
                     key=lambda f: (INDEX_ORDER.index(f.name) if f.name in INDEX_ORDER else len(INDEX_ORDER), f.name))
    sections: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for folder in folders:
        index = read_index(folder)
        sections += index_sections(index["items"], folder, collapse_above=COLLAPSE_ABOVE.get(folder.name))
        skipped += [{str(k): str(v) for k, v in s.items()} for s in index["skipped"]]
    return sections, skipped


#: metrics.json entries shown in the "read this first" box rather than the metrics table.
_HEALTH_TEXT_KEYS = ("health/verdict", "health/findings")


def _table_keys(metrics: dict[str, Any]) -> list[str]:
    """Metric names with a single value (numbers, text): the health findings list is shown in its own box."""
    return [k for k, v in metrics.items() if k not in _HEALTH_TEXT_KEYS and not isinstance(v, (list, dict))]


def _health_box(metrics: dict[str, Any], status: dict[str, Any]) -> dict[str, Any] | None:
    """The "read this first" box from the verdict written by the run (metrics.json, else status.json).

    Only formats what the run wrote: the headline MSE against the mean-image and PCA baselines,
    and each finding with its evidence and advice.

    Example:
        >>> box = _health_box({"health/verdict": "healthy", "test/mse": 0.01, "health/baseline_mean_mse": 0.05}, {})
        >>> box["verdict"], [r["value"] for r in box["rows"]]
        ('healthy', ['0.01', '0.05'])
    """
    saved = status.get("health") if isinstance(status.get("health"), dict) else {}
    verdict = metrics.get("health/verdict", saved.get("verdict"))
    if not isinstance(verdict, str):
        return None
    findings = metrics.get("health/findings", saved.get("findings", []))
    findings = [{k: str(f.get(k, "")) for k in ("check", "evidence", "advice")}
                for f in (findings if isinstance(findings, list) else []) if isinstance(f, dict)]
    rows = []
    k = metrics.get("health/baseline_pca_components")
    for key, label in (("test/mse", "this model (test MSE)"), ("health/baseline_mean_mse", "predicting the mean training image"),
                       ("health/baseline_pca_mse", f"PCA with {format_value(k)} components (as many as the latent)")):
        if isinstance(metrics.get(key), (int, float)):
            rows.append({"label": label, "value": format_value(metrics[key])})
    return {"verdict": verdict, "findings": findings, "rows": rows}


def _run_summary(run: RunDir) -> dict[str, Any]:
    cfg, cfg_text = _config(run)
    metrics = _read_json(run.path / "metrics.json")
    status = run.status()
    model = cfg.get("model", {}) if isinstance(cfg.get("model"), dict) else {}
    data = cfg.get("data", {}) if isinstance(cfg.get("data"), dict) else {}
    return {"name": run.path.name, "path": str(run.path), "config": cfg, "config_text": cfg_text, "metrics": metrics,
            "status": status.get("state", "unknown"), "model": model.get("name", "?"),
            "latent_dim": model.get("latent_dim", "?"), "data": data.get("name", "?")}


# ----------------------------------------------------------------------------------------
# one run
# ----------------------------------------------------------------------------------------
def write_report(run_dir: str | Path) -> Path:
    """Write ``RUN_DIR/report.html`` (self-contained) from the run's files and return its path.

    Example:
        >>> write_report("/nonexistent")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        reprlab.base.errors.RunDirError: run directory /nonexistent does not exist. Fix: ...
    """
    started = time.perf_counter()
    run = RunDir.open(run_dir)
    notes: list[str] = []
    summary = _run_summary(run)
    metrics = summary["metrics"]
    metric_rows = [{"key": k, "value": format_value(metrics[k]), "direction": metric_direction(k) or ""}
                   for k in _ordered_metric_keys(_table_keys(metrics))]
    if not metrics:
        notes.append("metrics.json is missing: the run has not finished (status: "
                     f"{summary['status']}).")
    figures = []
    shown = set()
    for name, title, caption in RUN_FIGURES:
        uri = png_data_uri(run.figures / name)
        if uri:
            figures.append({"title": title, "caption": caption, "src": uri, "alt": title})
            shown.add(name)
    for extra in sorted(run.figures.glob("*.png")) if run.figures.is_dir() else []:
        if extra.name not in shown:
            uri = png_data_uri(extra)
            if uri:
                figures.append({"title": extra.stem.replace("_", " "), "caption": "", "src": uri, "alt": extra.stem})
    status = run.status()
    if status.get("state") == "failed":
        kept = status.get("best_checkpoint_kept")
        notes.insert(0, f"This run FAILED: {status.get('error', 'no reason recorded')}"
                        + {True: " The best checkpoint was kept.", False: " No checkpoint was kept."}.get(kept, ""))
    health = _health_box(metrics, status)
    sections, skipped = _index_sections(run)
    env = _read_json(run.path / "env.json")
    html = _environment().get_template("report.html.j2").render(
        title=f"reprlab report: {summary['name']}", run=summary, metric_rows=metric_rows, figures=figures,
        sections=sections, skipped=skipped, notes=notes, health=health,
        env_rows=[(k, format_value(v)) for k, v in sorted(env.items())],
        generated=_dt.datetime.now().isoformat(timespec="seconds"), version=_version())
    path = write_text(run.path / "report.html", html)
    logger.info("report written to %s (%.1f s, %.1f MB)", path, time.perf_counter() - started,
                path.stat().st_size / 1e6)
    return path


def _version() -> str:

    return getattr(reprlab, "__version__", "?")


# ----------------------------------------------------------------------------------------
# comparison
# ----------------------------------------------------------------------------------------
def _labels(runs: list[RunDir]) -> list[str]:
    names = [r.path.name for r in runs]
    if len(set(names)) == len(names):
        return names
    return [f"{r.path.parent.name}/{r.path.name}" if names.count(r.path.name) > 1 else r.path.name for r in runs]


def default_comparison_dir(first_run: str | Path, *, now: _dt.datetime | None = None) -> Path:
    """Default output folder of a comparison: ``<runs' parent>/comparisons/comparison-<time>``.

    The folder sits beside the folder that holds the runs (e.g. ``comparisons/`` next to
    ``runs/``), not inside it, so listing ``runs/`` shows only runs.

    Example:
        >>> default_comparison_dir("proj/runs/ae", now=_dt.datetime(2026, 1, 2, 3, 4, 5)).as_posix()
        'proj/comparisons/comparison-20260102-030405'
    """
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    return Path(first_run).parent.parent / "comparisons" / f"comparison-{stamp}"


def write_comparison(run_dirs: Sequence[str | Path], out_dir: str | Path | None = None) -> Path:
    """Write ``OUT_DIR/compare.html`` comparing runs side by side; returns its path.

    The metrics table has one row per run (model, data, latent size, then every metric);
    the best value of each column with a known direction (lower MSE, higher PSNR...) is
    highlighted, and later runs show their relative difference to the first (the baseline).
    Figures (learning curves, reconstructions, best/worst, every analysis) appear in one
    column per run; runs with ``analysis/robustness.json`` also get one joint robustness
    plot (e.g. autoencoder against VAE). ``out_dir`` defaults to
    ``comparisons/comparison-<time>`` beside the folder holding the first run (for runs in
    ``runs/``: ``comparisons/`` next to ``runs/``, never inside it, so ``runs/`` only holds
    runs); see :func:`default_comparison_dir`. It also receives ``compare_metrics.csv``.

    Example:
        >>> write_comparison(["only-one"])  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        reprlab.base.errors.ConfigError: compare needs at least two run directories, got 1. Fix: ...
    """
    started = time.perf_counter()
    dirs = [Path(d) for d in run_dirs]
    if len(dirs) < 2:
        raise ConfigError(f"compare needs at least two run directories, got {len(dirs)}",
                          fix="pass two or more run directories, e.g. `reprlab compare runs/ae runs/vae`")
    resolved = [d.resolve() for d in dirs]
    if len(set(resolved)) != len(resolved):
        raise ConfigError("the same run directory is given twice", fix="pass each run once")
    runs = [RunDir.open(d) for d in dirs]
    labels = _labels(runs)
    summaries = [_run_summary(r) for r in runs]
    out = Path(out_dir) if out_dir is not None else default_comparison_dir(runs[0].path)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a directory", fix="choose another --out DIR")
    out.mkdir(parents=True, exist_ok=True)

    # metrics table
    keys = _ordered_metric_keys(sorted({k for s in summaries for k in _table_keys(s["metrics"])} | (
        {"health/verdict"} if any("health/verdict" in s["metrics"] for s in summaries) else set())))
    best: dict[str, set[int]] = {}
    for k in keys:
        d = metric_direction(k)
        vals = [(i, s["metrics"].get(k)) for i, s in enumerate(summaries)]
        vals = [(i, float(v)) for i, v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)
                and math.isfinite(float(v))]
        if d and len(vals) >= 2 and len({v for _, v in vals}) > 1:
            target = min(v for _, v in vals) if d == "min" else max(v for _, v in vals)
            best[k] = {i for i, v in vals if v == target}
    rows = []
    for i, (label, s) in enumerate(zip(labels, summaries)):
        cells = []
        for k in keys:
            v = s["metrics"].get(k)
            cell = {"text": "—" if v is None else format_value(v), "best": i in best.get(k, set()), "delta": "", "better": None}
            base = summaries[0]["metrics"].get(k)
            if (i > 0 and isinstance(v, (int, float)) and isinstance(base, (int, float)) and not isinstance(v, bool)
                    and base not in (0, 0.0) and math.isfinite(float(v)) and math.isfinite(float(base))):
                rel = (float(v) - float(base)) / abs(float(base))
                if abs(rel) >= 5e-4:
                    cell["delta"] = f"{rel:+.1%}"
                    d = metric_direction(k)
                    if d:
                        cell["better"] = (rel < 0) if d == "min" else (rel > 0)
            cells.append(cell)
        rows.append({"label": label, "model": s["model"], "data": s["data"], "latent_dim": s["latent_dim"],
                     "status": s["status"], "cells": cells, "path": s["path"],
                     "by_key": dict(zip(keys, cells))})
    _write_metrics_csv(out / "compare_metrics.csv", labels, summaries, keys)

    # figures side by side
    figure_rows = []
    for name, title, caption in RUN_FIGURES:
        cells = [png_data_uri(r.figures / name) for r in runs]
        if any(cells):
            figure_rows.append({"title": title, "caption": caption, "cells": [[c] if c else [] for c in cells],
                                "collapsed": False})
    per_run = [{sec["key"]: sec for sec in _index_sections(r)[0]} for r in runs]
    order: list[str] = []
    for sections in per_run:
        order += [k for k in sections if k not in order]
    for key in order:
        first = next(s[key] for s in per_run if key in s)
        cells = [[img["src"] for img in s[key]["images"]] if key in s else [] for s in per_run]
        if any(cells):
            figure_rows.append({"title": first["title"], "caption": first["caption"], "cells": cells,
                                "collapsed": max(len(c) for c in cells) > 4})

    joint = None
    curves = {}
    for label, r in zip(labels, runs):
        rob = _read_json(r.path / "analysis" / "robustness.json")
        if rob.get("rows"):
            rows_r = rob["rows"]
            name = str(rob.get("label") or label)
            curves[name if name.startswith(label) else f"{label}: {name}"] = {"scales": [x["noise_scale"] for x in rows_r],
                                                          "mse": [x["mse"] for x in rows_r],
                                                          "mse_std": [x["mse_std"] for x in rows_r]}
    if len(curves) >= 2:
        joint = png_data_uri(plot_robustness(curves, out / "robustness_compare.png",
                                          title="Decoder robustness to latent noise, all runs"))
    html = _environment().get_template("compare.html.j2").render(
        title=f"reprlab comparison: {' vs '.join(labels)}", labels=labels, keys=keys, rows=rows,
        tables=_metric_tables(keys), headers={k: _breakable(k) for k in keys},
        directions={k: metric_direction(k) or "" for k in keys}, figure_rows=figure_rows, joint_robustness=joint,
        generated=_dt.datetime.now().isoformat(timespec="seconds"), version=_version())
    path = write_text(out / "compare.html", html)
    logger.info("comparison of %d runs written to %s (%.1f s)", len(runs), path, time.perf_counter() - started)
    return path


#: Metric columns per comparison table: with the run column, a table fits a 1280-px window.
TABLE_COLUMNS: int = 7
_GROUP_TITLES = {"test": "Test set", "val": "Validation set", "train": "Training set"}


def _metric_tables(keys: Sequence[str], *, per_table: int = TABLE_COLUMNS) -> list[dict[str, Any]]:
    """Split the comparison's metric columns into narrow tables: one group per split, ``per_table`` columns each.

    Many metrics in one row per run make a table far wider than a window; several narrow
    tables (test metrics first) keep one row per run and fit 1280 px without scrolling.

    Example:
        >>> [(t["title"], t["keys"]) for t in _metric_tables(["test/mse", "test/psnr", "val/mse", "epochs"], per_table=1)]
        [('Test set', ['test/mse']), ('Test set (continued)', ['test/psnr']), ('Validation set', ['val/mse']), ('Other', ['epochs'])]
    """
    groups: dict[str, list[str]] = {}
    for k in keys:
        prefix = k.split("/", 1)[0] if "/" in k else ""
        groups.setdefault(_GROUP_TITLES.get(prefix, prefix.replace("_", " ").capitalize() if prefix else "Other"),
                          []).append(k)
    tables = []
    for title, members in groups.items():
        for start in range(0, len(members), per_table):
            tables.append({"title": title + (" (continued)" if start else ""),
                           "keys": members[start:start + per_table]})
    return tables


def _breakable(key: str) -> Any:
    """HTML of a metric name that may wrap after ``/`` and ``_`` (``<wbr>``), so wide tables fit a window.

    Example:
        >>> str(_breakable("test/elbo_nats"))
        'test/<wbr>elbo_<wbr>nats'
    """
    from markupsafe import Markup, escape

    return Markup(str(escape(key)).replace("/", "/<wbr>").replace("_", "_<wbr>"))


def _write_metrics_csv(path: Path, labels: list[str], summaries: list[dict[str, Any]], keys: list[str]) -> Path:

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["run", "model", "data", "latent_dim", *keys])
            for label, s in zip(labels, summaries):
                w.writerow([label, s["model"], s["data"], s["latent_dim"], *[s["metrics"].get(k, "") for k in keys]])
    return atomic_write(path, write)
