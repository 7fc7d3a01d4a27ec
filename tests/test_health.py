"""Training health: every check fires on a sabotaged model or config and stays quiet on a healthy tiny run;
the verdict reaches metrics.json, status.json, the closing lines, the report, and `--strict` exits 3."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

from conftest import run_cli, write_tiny_npz
from reprlab.data.dataset import ImageData
from reprlab.evaluation import evaluate_reconstruction
from reprlab.models import create_model
from reprlab.reporting.report import write_report
from reprlab.runs import RunDir
from reprlab.tasks.health import diagnose, health_lines, list_health_checks
from reprlab.training.engine import Trainer

pytestmark = pytest.mark.usefixtures("single_thread")

CHECKS = ("no_better_than_mean", "constant_output", "posterior_collapse", "kl_explodes", "loss_explodes",
          "val_rises", "lr_out_of_range", "accuracy_at_chance")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[ImageData, ImageData]:
    """The conftest blob images (1x12x12, 3 classes), split 90 train / 30 test."""
    data = np.load(write_tiny_npz(tmp_path_factory.mktemp("health") / "tiny.npz"))
    x = torch.from_numpy(data["x"]).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(data["y"]).long()
    return ImageData(x[:90], y[:90]), ImageData(x[90:], y[90:])


def _fit(name: str, train: ImageData, **kw) -> tuple[torch.nn.Module, list[dict]]:
    torch.manual_seed(0)
    model = create_model(name, input_shape=(1, 12, 12), latent_dim=4, hidden_sizes=(32,), **kw)
    trainer = Trainer(epochs=10, batch_size=16, lr=1e-2, seed=0).fit(model, train)
    return model, trainer.history


@pytest.fixture(scope="module")
def healthy_ae(tiny):
    return _fit("fc_ae", tiny[0])


@pytest.fixture(scope="module")
def healthy_vae(tiny):
    return _fit("vae", tiny[0], arch="fc")


def _metrics(model, test: ImageData) -> dict:
    return evaluate_reconstruction(model, test).prefixed("test")


def _train_cfg(**kw):
    return SimpleNamespace(optimizer=kw.pop("optimizer", "adam"), lr=kw.pop("lr", 1e-3), groups=kw.pop("groups", {}))


def _checks(report) -> set[str]:
    return {f.check for f in report.findings}


def test_every_check_is_registered():
    assert set(CHECKS) <= set(list_health_checks())


# -- healthy tiny runs: no check fires ----------------------------------------------------
def test_healthy_autoencoder_is_healthy(tiny, healthy_ae):
    model, history = healthy_ae
    metrics = {**_metrics(model, tiny[1]), "best/epoch": 10, "best/monitor": "train/loss"}
    report = diagnose(model, train=tiny[0], test=tiny[1], history=history, metrics=metrics, train_cfg=_train_cfg(lr=1e-2))
    assert report.verdict == "healthy", report.findings
    assert report.baselines["baseline_mean_mse"] > metrics["test/mse"]
    assert report.baselines["baseline_pca_components"] == 4 and 0 < report.baselines["baseline_pca_mse"]


def test_healthy_vae_is_healthy(tiny, healthy_vae):
    model, history = healthy_vae
    report = diagnose(model, train=tiny[0], test=tiny[1], history=history, metrics=_metrics(model, tiny[1]),
                      train_cfg=_train_cfg(lr=1e-2))
    assert report.verdict == "healthy", report.findings


# -- each check fires on its sabotage -----------------------------------------------------
def test_a_constant_decoder_is_no_better_than_the_mean_and_constant(tiny, healthy_ae):
    model = create_model("fc_ae", input_shape=(1, 12, 12), latent_dim=4, hidden_sizes=(32,))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()  # sabotage: every output pixel is sigmoid(0) = 0.5
    report = diagnose(model, train=tiny[0], test=tiny[1], metrics=_metrics(model, tiny[1]))
    assert {"no_better_than_mean", "constant_output"} <= _checks(report)
    assert report.verdict == "suspect"
    finding = next(f for f in report.findings if f.check == "no_better_than_mean")
    assert "mean training image" in finding.evidence and "train.lr" in finding.advice


def test_an_untrained_decoder_that_ignores_its_input_is_constant(tiny, healthy_ae):
    model, _ = healthy_ae
    sabotaged = create_model("fc_ae", input_shape=(1, 12, 12), latent_dim=4, hidden_sizes=(32,))
    sabotaged.load_state_dict(model.state_dict())
    with torch.no_grad():
        sabotaged.encoder[-1].weight.zero_()  # the code no longer depends on the image
    report = diagnose(sabotaged, train=tiny[0], test=tiny[1])
    assert "constant_output" in _checks(report)


def _copy_with_last_encoder_layer(model):
    """A copy of the tiny fc VAE ``model`` and the last linear layer of its encoder (to sabotage)."""
    copy = create_model("vae", input_shape=(1, 12, 12), latent_dim=4, hidden_sizes=(32,), arch="fc")
    copy.load_state_dict(model.state_dict())
    return copy, [m for m in copy.encoder.modules() if isinstance(m, torch.nn.Linear)][-1]


def test_posterior_collapse_fires_when_no_latent_dimension_carries_kl(tiny, healthy_vae):
    model, _ = healthy_vae
    collapsed, last = _copy_with_last_encoder_layer(model)
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()  # sabotage: q(z|x) = N(0, I) for every image
    report = diagnose(collapsed, train=tiny[0], test=tiny[1])
    finding = next(f for f in report.findings if f.check == "posterior_collapse")
    assert "0 of 4 latent dimensions" in finding.evidence and "kl_warmup_epochs" in finding.advice


def test_kl_explodes_on_a_blown_up_encoder(tiny, healthy_vae):
    model, _ = healthy_vae
    blown, last = _copy_with_last_encoder_layer(model)
    with torch.no_grad():
        last.weight.mul_(1e4)  # sabotage: posterior means of ~1e3
    metrics = _metrics(blown, tiny[1])
    assert metrics["test/kl"] > 1e4
    report = diagnose(blown, train=tiny[0], test=tiny[1], metrics=metrics)
    finding = next(f for f in report.findings if f.check == "kl_explodes")
    assert "test/kl" in finding.evidence and "model.beta" in finding.advice


def test_kl_explodes_from_the_history_too(tiny, healthy_vae):
    model, history = healthy_vae
    history = [dict(r) for r in history]
    history[3]["train/kl"] = 2.5e5
    report = diagnose(model, train=tiny[0], test=tiny[1], history=history)
    assert "kl_explodes" in _checks(report)
    assert "train/kl at epoch 4" in next(f.evidence for f in report.findings if f.check == "kl_explodes")


def test_loss_explodes_fires_on_growth_and_not_on_a_falling_loss(tiny, healthy_ae):
    model, history = healthy_ae
    rows = [{"epoch": 1, "train/loss": 0.05}, {"epoch": 2, "train/loss": 0.2}, {"epoch": 3, "train/loss": 40.0}]
    report = diagnose(model, train=tiny[0], test=tiny[1], history=rows)
    assert "loss_explodes" in _checks(report)
    assert "loss_explodes" not in _checks(diagnose(model, train=tiny[0], test=tiny[1], history=history))


def test_val_rises_fires_when_the_best_epoch_is_the_first_of_three(tiny, healthy_ae):
    model, _ = healthy_ae
    rows = [{"epoch": e, "val/loss": v} for e, v in ((1, 0.02), (2, 0.03), (3, 0.05))]
    metrics = {"best/epoch": 1, "best/monitor": "val/loss"}
    report = diagnose(model, train=tiny[0], test=tiny[1], history=rows, metrics=metrics)
    assert "val_rises" in _checks(report)
    # two epochs are too few to call it, and a later best epoch is what training should give
    assert "val_rises" not in _checks(diagnose(model, train=tiny[0], test=tiny[1], history=rows[:2], metrics=metrics))
    assert "val_rises" not in _checks(diagnose(model, train=tiny[0], test=tiny[1], history=rows,
                                               metrics={**metrics, "best/epoch": 3}))


@pytest.mark.parametrize("cfg, fires, key", [
    (dict(lr=1e6), True, "train.lr=0.001"),
    (dict(lr=1e-7), True, "train.lr=0.001"),
    (dict(lr=0.5, optimizer="sgd"), False, None),
    (dict(lr=2.0, optimizer="sgd"), True, "train.lr=0.01"),
    (dict(lr=1e-3, groups={"main": {"lr": 0.5}}), True, "train.groups.main.lr=0.001"),
    (dict(lr=3e-4), False, None),
])
def test_lr_out_of_range(tiny, healthy_ae, cfg, fires, key):
    model, _ = healthy_ae
    report = diagnose(model, train=tiny[0], test=tiny[1], train_cfg=_train_cfg(**cfg))
    assert ("lr_out_of_range" in _checks(report)) is fires
    if fires:
        assert key in next(f.advice for f in report.findings if f.check == "lr_out_of_range")


def test_accuracy_at_chance(tiny, healthy_ae):
    model, _ = healthy_ae
    counts = np.bincount(tiny[1].labels.numpy())
    chance = counts.max() / counts.sum()
    report = diagnose(model, train=tiny[0], test=tiny[1], metrics={"test/acc": float(chance)})
    assert "accuracy_at_chance" in _checks(report)
    assert "accuracy_at_chance" not in _checks(diagnose(model, train=tiny[0], test=tiny[1], metrics={"test/acc": 0.95}))


def test_a_failing_check_is_skipped_not_fatal(tiny, healthy_ae, monkeypatch):
    from reprlab.tasks import health

    def broken(probe):
        raise RuntimeError("bug in a check")

    monkeypatch.setitem(health._CHECKS, "broken", broken)
    model, _ = healthy_ae
    assert diagnose(model, train=tiny[0], test=tiny[1]).verdict == "healthy"


def test_health_lines():
    assert health_lines({"health/verdict": "healthy"}) == "health: healthy"
    text = health_lines({"health/verdict": "suspect", "health/findings": [
        {"check": "constant_output", "evidence": "E", "advice": "A"}]})
    assert text.splitlines() == ["health: SUSPECT (1 finding; the run finished but its numbers should not be "
                                 "trusted yet)", "  - constant_output: E. Advice: A"]


def test_report_renders_the_box_from_the_files_only(tmp_path):
    run = RunDir.create(tmp_path, "r")
    (run.path / "config.yaml").write_text("model: {name: conv_ae, latent_dim: 4}\n")
    findings = [{"check": "constant_output", "evidence": "reconstructions vary 0", "advice": "lower train.lr"}]
    (run.path / "metrics.json").write_text(json.dumps({
        "test/mse": 0.0645, "health/verdict": "suspect", "health/findings": findings,
        "health/baseline_mean_mse": 0.0369, "health/baseline_pca_mse": 0.00386, "health/baseline_pca_components": 4}))
    run.set_status("finished", health={"verdict": "suspect", "findings": findings})
    html = write_report(run.path).read_text()
    box = html[html.index('<section id="health"'):html.index("</section>", html.index('<section id="health"'))]
    for text in ("Read this first", "SUSPECT", "constant_output", "lower train.lr", "0.0645", "0.0369", "0.00386",
                 "PCA with 4 components", "mean training image"):
        assert text in box, text
    assert html.index('id="health"') < html.index('id="metrics"')
    metrics_table = html[html.index('id="metrics"'):]
    assert "health/findings" not in metrics_table and "health/verdict" not in metrics_table


# -- the two examples, end to end through the CLI ----------------------------------
def _config(tmp_path: Path, model: dict, **train) -> Path:
    cfg = {"seed": 0, "output_dir": str(tmp_path / "runs"),
           "data": {"name": "arrays", "path": str(write_tiny_npz(tmp_path / "tiny.npz")), "val_fraction": 0.25,
                    "test_fraction": 0.25},
           "model": model, "train": {"epochs": 3, "batch_size": 16, "progress": "off", "num_threads": 1, **train},
           "eval": {"figures": False, "report": False}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_conv_ae_with_lr_1e6_is_suspect_and_strict_exits_3(tmp_path, capsys):
    config = _config(tmp_path, {"name": "conv_ae", "latent_dim": 4, "channels": [4, 8]})
    proc = run_cli("train", str(config), "train.lr=1e6", "--name", "lr", "--strict")
    assert proc.returncode == 3, proc.stderr
    run = tmp_path / "runs" / "lr"
    assert proc.stdout.strip().splitlines()[-1] == str(run)
    assert "health: SUSPECT" in proc.stdout and "lr_out_of_range" in proc.stdout and "constant_output" in proc.stdout
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "finished" and status["health"]["verdict"] == "suspect"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["health/verdict"] == "suspect"
    assert {"lr_out_of_range", "constant_output", "no_better_than_mean"} <= {f["check"] for f in metrics["health/findings"]}
    assert "this run is SUSPECT" in write_report(run).read_text()
    # without --strict the same run ends with exit 0 (in-process: the exit status main() returns)
    from reprlab.cli.main import main

    assert main(["train", str(config), "train.lr=1e6", "--name", "lr2", "--quiet"]) == 0
    assert "health: SUSPECT" in capsys.readouterr().out


def test_a_healthy_tiny_run_is_healthy_under_strict(tmp_path, capsys):
    from reprlab.cli.main import main

    config = _config(tmp_path, {"name": "fc_ae", "latent_dim": 4, "hidden_sizes": [32]}, epochs=10, lr=1e-2)
    assert main(["train", str(config), "--name", "ok", "--strict", "--quiet"]) == 0
    assert "health: healthy" in capsys.readouterr().out
    run = tmp_path / "runs" / "ok"
    assert json.loads((run / "status.json").read_text())["health"] == {"verdict": "healthy", "findings": []}
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["health/verdict"] == "healthy" and metrics["test/mse"] < metrics["health/baseline_mean_mse"]


@pytest.mark.parametrize("name, group, lr", [("dcgan", "generator", 2e-4), ("dann", "main", 0.01)])
def test_the_learning_rate_check_reads_the_settings_a_model_declares_for_its_groups(name, group, lr):
    """dcgan/dann declare their groups' optimiser settings (models.base.ParamGroup): the health check resolves
    them like the trainer, so it neither blames ``train.lr`` nor judges the wrong value."""
    from reprlab.config import RunConfig
    from reprlab.tasks.health import _optimizer_settings

    model = create_model(name, input_shape=(1, 28, 28))
    settings, keys = _optimizer_settings(model, RunConfig.from_dict({}).train)
    assert settings[group].lr == pytest.approx(lr)
    assert keys[group] == f"train.groups.{group}.lr"
