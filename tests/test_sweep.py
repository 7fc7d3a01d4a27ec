"""``reprlab sweep``: a grid x seeds, invalid combinations as rows, the table, plots, workers, resume, bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from reprlab.base.errors import ConfigError
from reprlab.cli.main import main
from reprlab.experiments.sweep import parse_axis, sweep

pytestmark = pytest.mark.usefixtures("single_thread")


def tiny_config(root: Path, **section) -> dict:
    return {"seed": 0, "output_dir": str(root / "runs"), "name": "tiny",
            "data": {"name": "fashion-mnist-sample", "max_train": 60, "max_test": 20},
            "model": {"name": "conv_ae", "latent_dim": 4, "channels": [4, 8]},
            "train": {"epochs": 1, "batch_size": 30, "progress": "off", "num_threads": 1},
            "eval": {"figures": False, "report": False}, **({"sweep": section} if section else {})}


def test_sweep_cli_grid_times_seeds_with_an_invalid_row(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(tiny_config(tmp_path, grid={"model.stride": [1, 2]})))
    # kernel 29 only fits the 28x28 input at stride 1: at stride 2 the second layer sees 14x14
    assert main(["sweep", str(config), "model.kernel_size=3,29", "--seeds", "2"]) == 0
    sweep_dir = tmp_path / "runs" / "tiny-sweep"
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(sweep_dir)
    rows = list(csv.DictReader(open(sweep_dir / "sweep.csv")))
    assert [(r["model.stride"], r["model.kernel_size"], r["status"]) for r in rows] == [
        ("1", "3", "ok"), ("1", "29", "ok"), ("2", "3", "ok"), ("2", "29", "invalid")]
    assert "kernel_size=29 is too large" in rows[3]["note"] and rows[3]["seeds"] == "0"
    runs = sorted((sweep_dir / "trials").iterdir())
    assert len(runs) == 6  # 3 valid combinations x 2 seeds; the invalid one never got a run directory
    by_combo: dict[tuple, list[float]] = {}
    for run in runs:
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        assert json.loads((run / "status.json").read_text())["state"] == "finished"
        key = (str(cfg["model"]["stride"]), str(cfg["model"]["kernel_size"]))
        by_combo.setdefault(key, []).append(json.loads((run / "metrics.json").read_text())["test/psnr"])
    for r in rows[:3]:
        values = by_combo[(r["model.stride"], r["model.kernel_size"])]
        assert len(values) == 2
        assert float(r["test/psnr_mean"]) == pytest.approx(np.mean(values), rel=1e-4)
        assert float(r["test/psnr_std"]) == pytest.approx(np.std(values, ddof=1), rel=1e-3, abs=1e-6)
    best = max(rows[:3], key=lambda r: float(r["test/psnr_mean"]))
    md = (sweep_dir / "sweep.md").read_text().splitlines()
    line = next(l for l in md[2:] if l.startswith(f"| {best['model.stride']} | {best['model.kernel_size']} |"))
    assert f"**{float(best['test/psnr_mean']):.4g} ±" in line  # the best mean of the column is highlighted
    assert (sweep_dir / "report.html").read_text().count('class="best"') >= 3
    for name in ("test_psnr_vs_model_kernel_size.png", "test_ssim_vs_model_stride.png", "best_value_vs_model_stride.png"):
        assert (sweep_dir / "figures" / name).stat().st_size > 1000
    # the same command again: every combination is done; nothing runs twice
    again = sweep(config, axes=["model.kernel_size=3,29"], seeds=2)
    assert len(list((sweep_dir / "trials").iterdir())) == 6 and again.rows[3]["status"] == "invalid"


@pytest.mark.slow
def test_two_workers_run_each_combination_once(tmp_path):
    url = f"journal:{tmp_path / 'sweep.log'}"
    result = sweep(tiny_config(tmp_path, grid={"model.latent_dim": [2, 4, 8]}), workers=2, storage=url)
    assert [r["status"] for r in result.rows] == ["ok"] * 3
    seen = [yaml.safe_load((run / "config.yaml").read_text())["model"]["latent_dim"]
            for run in (result.sweep_dir / "trials").iterdir()]
    assert sorted(seen) == [2, 4, 8]
    assert (result.sweep_dir / "logs" / "worker-1.log").exists()


@pytest.mark.parametrize("section, axes, message", [
    ({}, [], "zero combinations: sweep.grid is empty"),
    ({"grid": {"model.stride": []}}, [], "sweep.grid.model.stride has no values, so the sweep has zero combinations"),
    ({}, ["model.stride="], "has no values"),
    ({"grid": {"model.stride": [1]}, "seeds": []}, [], "gives no seeds"),
    ({}, ["model.kernel_sise=3,5"], "did you mean model.kernel_size?"),
    ({}, ["train.epochs=1,0"], "train.epochs=0 is refused"),
    ({"grid": {"seed": [1, 2]}}, [], "seeds are not a grid key"),
])
def test_bad_sweeps_are_refused_before_anything_exists(tmp_path, section, axes, message):
    with pytest.raises(ConfigError) as info:
        sweep(tiny_config(tmp_path, **section), axes=axes)
    assert message in str(info.value)
    assert not (tmp_path / "runs").exists()


def test_parse_axis():
    assert parse_axis("model.loss=mse,l1") == ("model.loss", ["mse", "l1"])
    assert parse_axis("train.lr=1e-3,0.01") == ("train.lr", [0.001, 0.01])
