"""The HTML run report and the comparison report (content, self-containedness, CLI, bad input)."""

from __future__ import annotations

import csv
import re
import shutil
from importlib import resources
from pathlib import Path

import pytest

from conftest import run_cli
from reprlab.base.errors import ConfigError, RunDirError
from reprlab.reporting.report import (TABLE_COLUMNS, _metric_tables, default_comparison_dir, metric_direction,
                                     write_comparison, write_report)
from test_analysis import tiny_runs  # noqa: F401  (session fixture: two tiny trained runs)

_IMG = re.compile(r"<img\b[^>]*\bsrc=\"([^\"]*)\"")


def assert_self_contained(html: str) -> int:
    """No external resource anywhere; every <img> a PNG data URI. Returns the number of images."""
    srcs = _IMG.findall(html)
    assert srcs, "no images in the report"
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", html, re.I)
    assert "@import" not in html and "url(" not in html
    assert "default-src 'none'" in html  # a CSP forbids loading anything else
    return len(srcs)


def test_training_writes_a_self_contained_report(tiny_runs):
    run = tiny_runs["ae"]
    html = (run / "report.html").read_text()
    n = assert_self_contained(html)
    assert n >= 8
    for text in ("Metrics", "test/psnr", "Learning curves", "Best reconstructions", "Worst reconstructions",
                 "Reconstructions (chosen images)", "PCA embedding (test)", "t-SNE embedding (test)",
                 "2-D latent against raw-pixel embeddings", "Latent traversals", "Interpolation",
                 "Decoder robustness", "Not applicable to this model", "latent_dim: 2"):
        assert text in html, text
    assert not (tiny_runs["vae"] / "report.html").exists()  # eval.report=false


def test_write_report_renders_the_run_index_files_and_shows_samples(tiny_runs, tmp_path):
    from reprlab.capabilities.analysis import analyze

    run = Path(shutil.copytree(tiny_runs["vae"], tmp_path / "vae-copy"))
    shutil.rmtree(run / "analysis", ignore_errors=True)
    html = write_report(run).read_text()
    assert not (run / "analysis").exists()  # the report never runs an analysis itself
    assert "Samples from the prior" not in html
    analyze(run, what=["samples"], max_points=50)
    path = write_report(run)
    assert path == run / "report.html"
    html = path.read_text()
    assert_self_contained(html)
    assert "Samples from the prior" in html and "test/elbo_nats" in html
    # a result folder of any name in the same index schema is shown too
    (run / "extra").mkdir()
    (run / "extra" / "index.json").write_text('{"items": [{"key": "x", "title": "An extra step", "files": []}]}')
    assert "An extra step" in write_report(run).read_text()
    # without metrics (an unfinished run) the report still renders and says so
    (run / "metrics.json").unlink()
    html = write_report(run).read_text()
    assert "has not finished" in html


def test_report_needs_no_data(tiny_runs, tmp_path):
    run = Path(shutil.copytree(tiny_runs["ae"], tmp_path / "ae-moved"))
    shutil.rmtree(run / "analysis")
    cfg = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(re.sub(r"path: .*tiny\.npz", "path: /nonexistent/tiny.npz", cfg))
    html = write_report(run).read_text()
    assert "Learning curves" in html


def test_report_of_a_failed_run_says_why(tiny_runs, tmp_path):
    from reprlab.runs import RunDir

    run = RunDir(Path(shutil.copytree(tiny_runs["ae"], tmp_path / "ae-failed")))
    run.set_status("failed", error="the loss became nan at epoch 2, step 3", best_checkpoint_kept=True)
    html = write_report(run.path).read_text()
    assert "This run FAILED: the loss became nan at epoch 2, step 3" in html and "best checkpoint was kept" in html


def _table(html: str) -> tuple[list[str], list[list[tuple[str, str]]]]:
    """Header texts and, per run, (class, text) of every cell of the comparison's tables, joined.

    The comparison splits its columns over several narrow tables (one row per run in each);
    the ``run`` column repeated by later tables is dropped.
    """
    headers: list[str] = []
    rows: list[list[tuple[str, str]]] = []
    for t, table in enumerate(re.findall(r"<table\b.*?</table>", html.split('id="metrics"', 1)[1], re.S)):
        head = table.split("<thead>", 1)[1].split("</thead>", 1)[0]
        hs = [re.sub(r"<[^>]+>|[↓↑]", "", h).strip() for h in re.findall(r"<th\b[^>]*>(.*?)</th>", head, re.S)]
        body = table.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
        body_rows = [[(cls or "", re.sub(r"<span.*?</span>|<[^>]+>", "", text).strip())
                      for cls, text in re.findall(r'<td(?: class="([^"]*)")?>(.*?)</td>', row, re.S)]
                     for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]
        skip = 0 if t == 0 else 1
        headers += hs[skip:]
        if t == 0:
            rows = body_rows
        else:
            assert [r[0] for r in body_rows] == [r[0] for r in rows], "every table has one row per run, same order"
            for r, extra in zip(rows, body_rows):
                r += extra[skip:]
    return headers, rows


def test_comparison_table_highlights_the_best_and_puts_figures_side_by_side(tiny_runs, tmp_path):
    from reprlab.capabilities.analysis import analyze

    ae = Path(shutil.copytree(tiny_runs["ae"], tmp_path / "ae"))
    vae = Path(shutil.copytree(tiny_runs["vae"], tmp_path / "vae"))
    analyze(vae, what=["robustness"], device="cpu")
    out = tmp_path / "cmp"
    path = write_comparison([ae, vae], out)
    assert path == out / "compare.html"
    html = path.read_text()
    assert_self_contained(html)
    headers, rows = _table(html)
    assert [r[0][1] for r in rows] == ["ae", "vae"] and headers[:4] == ["run", "model", "data", "latent"]
    csv_rows = list(csv.DictReader((out / "compare_metrics.csv").open()))
    for key, pick in (("test/mse", min), ("test/psnr", max)):
        col = headers.index(key)
        best = pick(range(2), key=lambda i: float(csv_rows[i][key]))
        assert "best" in rows[best][col][0] and "best" not in rows[1 - best][col][0], key
    assert "%" in html.split("<tbody>", 2)[2]  # the second run shows its difference to the first
    assert "test/<wbr>mse" in html  # long metric names may wrap
    assert 'id="robustness"' in html and (out / "robustness_compare.png").exists()
    assert "Figures side by side" in html and "Learning curves" in html and "PCA embedding (test)" in html


def test_comparison_bad_input(tiny_runs, tmp_path):
    with pytest.raises(ConfigError, match="at least two"):
        write_comparison([tiny_runs["ae"]], tmp_path / "x")
    with pytest.raises(ConfigError, match="twice"):
        write_comparison([tiny_runs["ae"], tiny_runs["ae"]], tmp_path / "x")
    with pytest.raises(RunDirError, match="does not exist"):
        write_comparison([tiny_runs["ae"], tmp_path / "nope"], tmp_path / "x")


def test_cli_report_and_compare(tiny_runs, tmp_path):
    """Through a real `python -m reprlab` process: compare two runs, then report one."""
    proc = run_cli("compare", str(tiny_runs["ae"]), str(tiny_runs["vae"]), "--out", str(tmp_path / "c"))
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip().splitlines()[-1]) == tmp_path / "c" / "compare.html"
    assert (tmp_path / "c" / "compare_metrics.csv").exists()


def test_cli_report_prints_the_path_and_errors_are_one_line(tiny_runs, tmp_path, capsys):
    from reprlab.cli import main

    run = Path(shutil.copytree(tiny_runs["ae"], tmp_path / "ae"))
    (run / "report.html").unlink()
    assert main(["report", str(run), "--no-analyze"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(run / "report.html")
    assert (run / "report.html").exists()

    assert main(["report", str(tmp_path / "missing-run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: run directory") and "Fix:" in err[0]
    assert main(["compare", str(tmp_path)]) == 2
    assert "at least two run directories" in capsys.readouterr().err


def test_metric_directions_and_templates_ship_with_the_package():
    assert metric_direction("test/mse") == "min" and metric_direction("val/ssim") == "max"
    assert metric_direction("epochs") is None
    templates = resources.files("reprlab.reporting") / "templates"
    assert (templates / "report.html.j2").is_file() and (templates / "compare.html.j2").is_file()


def test_run_times_have_no_better_direction():
    for key in ("train_seconds", "train_seconds_this_session", "analysis/time_s", "time_s"):
        assert metric_direction(key) is None, key
    assert metric_direction("gen_fd") == "min" and metric_direction("test/loss") == "min"


def test_comparison_is_not_written_inside_runs_by_default(tiny_runs, tmp_path):
    project = tmp_path / "project"
    ae = Path(shutil.copytree(tiny_runs["ae"], project / "runs" / "ae"))
    vae = Path(shutil.copytree(tiny_runs["vae"], project / "runs" / "vae"))
    path = write_comparison([ae, vae])
    assert path.parent.parent == project / "comparisons" and path.parent.name.startswith("comparison-")
    assert sorted(p.name for p in (project / "runs").iterdir()) == ["ae", "vae"]
    assert default_comparison_dir("runs/ae").parent == Path("comparisons")


def test_comparison_tables_are_narrow_and_grouped():
    keys = [f"test/m{i}" for i in range(10)] + ["val/loss", "train_seconds", "best/value"]
    tables = _metric_tables(keys)
    assert all(len(t["keys"]) <= TABLE_COLUMNS for t in tables)
    assert [k for t in tables for k in t["keys"]] == keys  # every column once, in order
    assert [t["title"] for t in tables] == ["Test set", "Test set (continued)", "Validation set", "Other", "Best"]
