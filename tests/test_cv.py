"""``reprlab cv``: folds from scikit-learn's splitters, each fold the validation split of its run, the
test split untouched, mean ± std, resume, the cross-validated objective of a search, and bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from reprlab.base.errors import ConfigError
from reprlab.cli.main import main
from reprlab.data.dataset import ImageData
from reprlab.experiments.cv import CVSpec, cross_validate, fold_indices
from reprlab.experiments.search import tune

pytestmark = pytest.mark.usefixtures("single_thread")


def tiny_config(root: Path) -> dict:
    return {"seed": 0, "output_dir": str(root / "runs"), "name": "tiny",
            "data": {"name": "fashion-mnist-sample", "max_train": 90, "max_test": 30},
            "model": {"name": "conv_ae", "latent_dim": 4, "channels": [4, 8]},
            "train": {"epochs": 1, "batch_size": 30, "progress": "off", "num_threads": 1},
            "eval": {"figures": False, "report": False}}


def test_cv_cli_folds_are_the_validation_splits_and_the_test_split_is_untouched(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(tiny_config(tmp_path)))
    assert main(["cv", str(config), "--folds", "3", "train.batch_size=30"]) == 0  # an override after the options
    out = capsys.readouterr().out.strip().splitlines()
    cv_dir = tmp_path / "runs" / "tiny-cv3"
    assert out[-1] == str(cv_dir) and "fold/psnr=" in out[0]
    val_sets = []
    for k in (1, 2, 3):
        run = cv_dir / f"fold-{k}"
        assert json.loads((run / "status.json").read_text())["state"] == "finished"
        info = json.loads((run / "fold.json").read_text())
        metrics = json.loads((run / "metrics.json").read_text())
        val_sets.append(set(info["val_indices"]))
        # the run validated on its fold: the best val/loss (an MSE) is the held-out fold's MSE at the best checkpoint
        assert metrics["fold/mse"] == pytest.approx(metrics["best/value"], rel=2e-3)
        assert metrics["test/num_images"] == 30 and info["stratified"] is True
    assert sum(map(len, val_sets)) == 90 and set().union(*val_sets) == set(range(90))  # a partition of the pool
    rows = list(csv.DictReader(open(cv_dir / "folds.csv")))
    assert [r["fold"] for r in rows] == ["1", "2", "3", "mean", "std"]
    psnr = [float(r["fold/psnr"]) for r in rows[:3]]
    assert float(rows[3]["fold/psnr"]) == pytest.approx(np.mean(psnr), rel=1e-4)
    assert float(rows[4]["fold/psnr"]) == pytest.approx(np.std(psnr, ddof=1), rel=1e-3)
    assert "| mean |" in (cv_dir / "folds.md").read_text() and (cv_dir / "report.html").exists()
    # the same command again: finished folds are kept, nothing is trained again
    before = (cv_dir / "fold-1" / "metrics.json").stat().st_mtime_ns
    result = cross_validate(config, folds=3)
    assert (cv_dir / "fold-1" / "metrics.json").stat().st_mtime_ns == before
    assert sorted(p.name for p in cv_dir.iterdir() if p.is_dir()) == ["fold-1", "fold-2", "fold-3"]
    assert result.cv_dir == cv_dir
    # --name names the folder itself (no -cvK suffix added)
    named = cross_validate(config, folds=3, name="chosen", overrides=["train.epochs=1"])
    assert named.cv_dir == tmp_path / "runs" / "chosen" and (named.cv_dir / "folds.csv").exists()
    assert result.summary["fold/psnr"][0] == pytest.approx(np.mean(psnr), rel=1e-4)


def test_stratified_with_labels_plain_kfold_without():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 255, (60, 1, 4, 4), dtype=torch.uint8, generator=g)
    labels = torch.tensor([0] * 30 + [1] * 20 + [2] * 10)
    folds = fold_indices(ImageData(images, labels), CVSpec(folds=5), seed=0)
    for _, val in folds:  # every fold holds each class in proportion
        assert np.bincount(labels[val].numpy(), minlength=3).tolist() == [6, 4, 2]
    plain = fold_indices(ImageData(images, None), CVSpec(folds=4), seed=0)
    assert [len(v) for _, v in plain] == [15] * 4
    assert sorted(np.concatenate([v for _, v in plain]).tolist()) == list(range(60))


def test_more_folds_than_the_smallest_class_is_refused_before_any_run(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (64, 12, 12, 1), dtype=np.uint8)
    y = np.array([0] * 31 + [1] * 31 + [2] * 2)
    np.savez(tmp_path / "a.npz", x=x, y=y)
    cfg = tiny_config(tmp_path)
    cfg["data"] = {"name": "arrays", "path": str(tmp_path / "a.npz"), "val_fraction": 0.0, "test_fraction": 0.1}
    with pytest.raises(ConfigError, match=r"smallest class \(2\)"):
        cross_validate(cfg, folds=3)
    with pytest.raises(ConfigError, match="cv.folds"):
        cross_validate(cfg, folds=1)
    assert not (tmp_path / "runs").exists()


def test_search_with_the_cross_validated_objective(tmp_path):
    cfg = tiny_config(tmp_path)
    cfg["search"] = {"trials": 2, "objective": "cv", "space": {"train.lr": [0.01, 0.003]}}
    cfg["cv"] = {"folds": 2, "metric": "fold/psnr"}
    result = tune(cfg)
    assert result.direction == "maximize"  # PSNR: larger is better
    rows = list(csv.DictReader(open(tmp_path / "runs" / "tiny" / "trials.csv")))
    for row in rows:
        folds = [json.loads((Path(row["run_dir"]) / f"fold-{k}" / "metrics.json").read_text()) for k in (1, 2)]
        assert float(row["value"]) == pytest.approx(np.mean([f["fold/psnr"] for f in folds]), rel=1e-4)
    bad = dict(cfg, cv={"folds": 2, "metric": "fold/accuracy"})
    with pytest.raises(ConfigError, match="cv.metric='fold/accuracy' is not a metric"):
        tune(bad, study_name="other")
