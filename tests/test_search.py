"""``reprlab tune``: SQLite and journal storages, workers, pruning, a killed study resumed, and bad input."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from reprlab.base.errors import ConfigError
from reprlab.cli.main import main
from reprlab.config import RunConfig
from reprlab.experiments.search import PRUNERS, make_pruner, parse_dimension, parse_search, split_quota, tune

pytestmark = pytest.mark.usefixtures("single_thread")

STORAGES = ["sqlite", "journal"]


def tiny_config(root: Path, **search) -> dict:
    return {"seed": 0, "output_dir": str(root / "runs"), "name": "study",
            "data": {"name": "fashion-mnist-sample", "max_train": 100, "max_test": 40},
            "model": {"name": "conv_ae", "latent_dim": 4, "channels": [4, 8]},
            "train": {"epochs": 1, "batch_size": 50, "progress": "off", "num_threads": 1},
            "eval": {"figures": False, "report": False},
            "search": {"trials": 3, "space": {"train.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
                                              "model.channels": [[4, 8], [8, 8]]}, **search}}


def storage_url(kind: str, root: Path) -> str | None:
    return None if kind == "sqlite" else f"journal:{root / 'journal.log'}"


def load_study(study_dir: Path, url: str | None, name: str = "study"):
    import optuna

    from reprlab.experiments.search import default_storage, open_storage

    return optuna.load_study(study_name=name, storage=open_storage(url or default_storage(study_dir)))


def read_rows(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("kind", STORAGES)
def test_tune_writes_trial_runs_table_report_and_best_config(tmp_path, kind):
    import matplotlib

    url = storage_url(kind, tmp_path)
    facecolor = matplotlib.rcParams["axes.facecolor"]
    result = tune(tiny_config(tmp_path), storage=url)
    assert matplotlib.rcParams["axes.facecolor"] == facecolor  # Optuna's ggplot style did not leak out
    study_dir = tmp_path / "runs" / "study"
    assert result.study_dir == study_dir
    rows = read_rows(study_dir / "trials.csv")
    assert [r["state"] for r in rows] == ["complete"] * 3
    for row in rows:  # every trial is an ordinary finished run directory whose config has the trial's parameters
        run = Path(row["run_dir"])
        assert run.parent == study_dir / "trials"
        assert json.loads((run / "status.json").read_text())["state"] == "finished"
        metrics = json.loads((run / "metrics.json").read_text())
        assert float(row["value"]) == pytest.approx(metrics["best/value"], rel=1e-4)
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        assert cfg["train"]["lr"] == pytest.approx(float(row["train.lr"]), rel=1e-4)
        assert cfg["model"]["channels"] == yaml.safe_load(row["model.channels"])
    best = min(rows, key=lambda r: float(r["value"]))
    assert result.best_value == pytest.approx(float(best["value"]), rel=1e-4)
    best_cfg = yaml.safe_load((study_dir / "best_config.yaml").read_text())
    assert "search" not in best_cfg and "name" not in best_cfg
    assert best_cfg["train"]["lr"] == pytest.approx(float(best["train.lr"]), rel=1e-4)
    RunConfig.from_dict(best_cfg)  # ready for `reprlab train`
    report = (study_dir / "report.html").read_text()
    for title in ("Optimisation history", "Parameter importances", "Parallel coordinates", "Slices"):
        assert f"<h2>{title}</h2><img src=\"data:image/png;base64," in report, title
    assert (study_dir / "trials.md").read_text().count("| complete |") == 3
    study = load_study(study_dir, url)
    assert len(study.trials) == 3
    # the same command again: the study is complete, nothing runs twice
    again = tune(tiny_config(tmp_path), storage=url)
    assert again.counts["complete"] == 3 and len(load_study(study_dir, url).trials) == 3


@pytest.mark.slow
def test_two_workers_share_the_journal(tmp_path):
    # (two workers on a database storage: tests/test_search_postgres.py)
    url = storage_url("journal", tmp_path)
    result = tune(tiny_config(tmp_path, trials=3), storage=url, workers=2)
    study_dir = tmp_path / "runs" / "study"
    study = load_study(study_dir, url)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    pids = {t.user_attrs["pid"] for t in study.trials}
    assert len(pids) == 2 and os.getpid() not in pids  # two worker processes, each ran trials
    run_dirs = sorted(t.user_attrs["run_dir"] for t in study.trials)
    assert len(set(run_dirs)) == 3 and sorted(str(p) for p in (study_dir / "trials").iterdir()) == run_dirs
    assert (study_dir / "logs" / "worker-1.log").exists() and result.counts["complete"] == 3


def test_median_pruner_prunes_and_the_run_dir_ends_failed_pruned(tmp_path):
    # random sampler seed 6 draws lr 0.01, 0.01, then 1e-7: the third trial is far worse after its first epoch
    cfg = tiny_config(tmp_path, sampler="random", seed=6, pruner="median",
                      pruner_options={"n_startup_trials": 1, "n_warmup_steps": 0},
                      space={"train.lr": [0.01, 1e-7]})
    cfg["train"]["epochs"] = 3
    result = tune(cfg)
    rows = read_rows(tmp_path / "runs" / "study" / "trials.csv")
    assert [r["state"] for r in rows] == ["complete", "complete", "pruned"]
    assert result.counts["pruned"] == 1 and rows[2]["note"] == "pruned after epoch 1"
    run = Path(rows[2]["run_dir"])
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed" and status["pruned"] is True and "pruned by the search" in status["error"]
    assert not (run / "metrics.json").exists()
    assert len((run / "metrics.csv").read_text().strip().splitlines()) == 2  # header + the one epoch it ran


@pytest.mark.parametrize("name", PRUNERS)
def test_every_pruner_is_built_with_its_defaults_and_takes_options(name):
    import optuna

    expected = {"none": optuna.pruners.NopPruner, "median": optuna.pruners.MedianPruner,
                "percentile": optuna.pruners.PercentilePruner, "hyperband": optuna.pruners.HyperbandPruner,
                "successive_halving": optuna.pruners.SuccessiveHalvingPruner}[name]
    space = {"train.lr": [1e-3, 1e-2]}
    assert type(make_pruner(parse_search({"pruner": name, "space": space}), 8)) is expected
    if name in ("median", "percentile"):
        pruner = make_pruner(parse_search({"pruner": name, "space": space,
                                           "pruner_options": {"n_warmup_steps": 4}}), 8)
        assert pruner._n_warmup_steps == 4 and pruner._n_startup_trials == 3  # option over default, default kept
        assert pruner._percentile == (50.0 if name == "median" else 25.0)
    if name == "hyperband":
        assert make_pruner(parse_search({"pruner": name, "space": space}), 8)._max_resource == 8  # the run's epochs
    if name != "none":
        with pytest.raises(ConfigError, match="refused by"):
            make_pruner(parse_search({"pruner": name, "space": space, "pruner_options": {"no_such_option": 1}}), 8)
    if name == "percentile":  # an impossible value is Optuna's ValueError, turned into the same clear error
        with pytest.raises(ConfigError, match="refused by PercentilePruner"):
            make_pruner(parse_search({"pruner": name, "space": space, "pruner_options": {"percentile": 150}}), 8)


def test_an_unknown_pruner_is_one_clear_error():
    with pytest.raises(ConfigError, match="search.pruner"):
        parse_search({"pruner": "mediam", "space": {"train.lr": [1e-3, 1e-2]}})


def test_hyperband_pruner_is_fed_every_epoch(tmp_path):
    cfg = tiny_config(tmp_path, trials=3, pruner="hyperband")
    cfg["train"]["epochs"] = 3
    tune(cfg)
    study = load_study(tmp_path / "runs" / "study", None)
    assert {t.state.name for t in study.trials} <= {"COMPLETE", "PRUNED"}
    for t in study.trials:  # one value per epoch run, the monitor (val/loss) of metrics.csv
        run = Path(t.user_attrs["run_dir"])
        rows = list(csv.DictReader(open(run / "metrics.csv")))
        assert sorted(t.intermediate_values) == list(range(len(rows)))
        assert [t.intermediate_values[i] for i in range(len(rows))] == pytest.approx([float(r["val/loss"]) for r in rows])


@pytest.mark.slow
def test_study_killed_mid_trial_continues_with_the_same_command(tmp_path):
    cfg = tiny_config(tmp_path, trials=2)
    cfg["train"]["epochs"] = 12
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "reprlab", "--quiet", "tune", str(config)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    second = tmp_path / "runs" / "study" / "trials" / "trial-0001"
    deadline = time.time() + 120
    def epochs_done() -> int:
        try:
            return max(0, len((second / "metrics.csv").read_text().strip().splitlines()) - 1)
        except OSError:
            return 0

    while epochs_done() < 2:  # in the middle of the second trial
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail("the study ended (or hung) before it could be killed mid-trial; make the trials longer")
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    study_dir = tmp_path / "runs" / "study"
    before = load_study(study_dir, None)
    assert [t.state.name for t in before.trials] == ["COMPLETE", "RUNNING"]
    killed_params = before.trials[1].params

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    after = load_study(study_dir, None)
    assert [t.state.name for t in after.trials] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert after.trials[0].datetime_complete == before.trials[0].datetime_complete  # kept, not re-run
    assert after.trials[2].params == killed_params and after.trials[2].user_attrs["retry_of"] == 1
    status = json.loads((second / "status.json").read_text())
    assert status["state"] == "failed" and status.get("interrupted") is True
    rows = read_rows(study_dir / "trials.csv")
    assert rows[1]["note"].startswith("interrupted") and rows[2]["note"].startswith("re-run of interrupted trial 1")


# -- bad input: one clear error, nothing created ---------------------------------------------------
@pytest.mark.parametrize("search, message", [
    ({"space": {}}, "the search space is empty"),
    ({"space": {"train.lr": {"type": "float", "low": 0.1, "high": 0.01}}}, "is empty: low=0.1 > high=0.01"),
    ({"space": {"train.lr": {"type": "float", "low": 0.0, "high": 0.1, "log": True}}}, "log scale but low=0.0"),
    ({"space": {"train.lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True, "step": 0.01}}}, "both log: true and step"),
    ({"space": {"train.lr": {"type": "categorical", "choices": []}}}, "has no choices"),
    ({"space": {"train.lrr": {"low": 1e-4, "high": 0.1}}}, "did you mean train.lr?"),
    ({"space": {"model.kernel_sze": [3, 5]}}, "did you mean model.kernel_size?"),
    ({"space": {"train.epochs": [1, 0]}}, "train.epochs=0 is refused"),
    ({"space": {"train.lr": [0.1]}, "objective": "test/accuracy"}, "is not a metric that task 'reconstruct' reports"),
    ({"space": {"train.lr": [0.1]}, "trails": 3}, "did you mean search.trials?"),
])
def test_bad_search_is_refused_before_anything_exists(tmp_path, search, message):
    cfg = tiny_config(tmp_path)
    cfg["search"] = search
    with pytest.raises(ConfigError, match=None) as info:
        tune(cfg)
    assert message in str(info.value)
    assert not (tmp_path / "runs").exists()


def test_unreachable_storage_is_one_line_naming_it(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(tiny_config(tmp_path)))
    rc = main(["tune", str(config), "--storage", "postgresql://me:secret@127.0.0.1:9/nodb"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("error: storage postgresql://me:***@127.0.0.1:9/nodb cannot be reached")
    assert "Traceback" not in err and len(err.splitlines()) == 1 and "secret" not in err
    assert not (tmp_path / "runs").exists()


def test_space_parsing_and_quotas():
    assert parse_dimension("a", [[8, 16], [16, 32]]).encoded
    assert parse_dimension("a", {"low": 1, "high": 4}).kind == "int"
    assert parse_search({"space": {"a.b": [1]}}, trials=7).trials == 7
    assert split_quota(5, 2) == [3, 2] and split_quota(1, 3) == [1, 0, 0]


def test_the_example_config_sections_parse():
    from reprlab.experiments.cv import parse_cv
    from reprlab.experiments.search import load_raw, split_sections
    from reprlab.experiments.sweep import combinations, parse_sweep

    raw, sections = split_sections(load_raw(Path(__file__).resolve().parents[1] / "configs" / "search_conv_ae.yaml"))
    spec = parse_search(sections["search"])
    assert spec.keys == ["model.latent_dim", "train.batch_size", "model.dropout", "train.lr", "train.weight_decay"]
    assert parse_cv(sections["cv"]).folds == 5
    assert len(combinations(parse_sweep(sections["sweep"]))) == 3 * 2 * 2 * 2 * 2
    RunConfig.from_dict(raw)
