"""End-to-end through the command line: train, evaluate, list, and bad input (exit 2, one line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import run_cli

TINY_MODEL = {"name": "conv_ae", "latent_dim": 4, "channels": [4, 8]}


def write_config(tmp_path: Path, arrays: Path, **sections) -> Path:
    cfg = {
        "seed": 0,
        "output_dir": str(tmp_path / "runs"),
        "data": {"name": "arrays", "path": str(arrays), "labels_path": None, "val_fraction": 0.2},
        "model": dict(TINY_MODEL),
        "train": {"epochs": 2, "batch_size": 16, "progress": "off"},
        "eval": {"k": 4},
    }
    for key, value in sections.items():
        cfg[key].update(value)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_train_writes_a_complete_run_and_evaluate_reloads_it(tmp_path, tiny_arrays):
    config = write_config(tmp_path, tiny_arrays)
    proc = run_cli("train", str(config), "model.latent_dim=3", "train.checkpoint_every=2", "--name", "first")
    assert proc.returncode == 0, proc.stderr
    run = Path(proc.stdout.strip().splitlines()[-1])
    assert run == tmp_path / "runs" / "first"
    for rel in ("config.yaml", "env.json", "status.json", "metrics.csv", "metrics.json", "per_image_scores.csv",
                "checkpoints/best/model.safetensors", "checkpoints/best/model.json", "checkpoints/last/state.pt",
                "checkpoints/epoch_0002/model.safetensors", "figures/loss_curves.png", "figures/reconstructions.png",
                "figures/best.png", "figures/worst.png"):
        assert (run / rel).exists(), rel
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["latent_dim"] == 3 and saved["model"]["input_shape"] == [1, 12, 12]
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"test/mse", "test/psnr", "test/ssim"} <= set(metrics)
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3 and "train/loss" in rows[0] and "val/loss" in rows[0]

    ev = run_cli("evaluate", str(run))
    assert ev.returncode == 0, ev.stderr
    again = json.loads(ev.stdout)
    assert again["test/mse"] == pytest.approx(metrics["test/mse"], rel=1e-5)

    # never overwritten
    dup = run_cli("train", str(config), "--name", "first")
    assert dup.returncode == 2 and "already exists" in dup.stderr
    assert json.loads((run / "status.json").read_text())["state"] == "finished"


def test_vae_run_reports_elbo_and_kl(tmp_path, tiny_arrays):
    config = write_config(tmp_path, tiny_arrays, model={"name": "vae", "arch": "conv", "latent_dim": 2, "channels": [4, 8]})
    proc = run_cli("train", str(config), "train.epochs=1")
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((Path(proc.stdout.strip().splitlines()[-1]) / "metrics.json").read_text())
    assert metrics["test/kl"] >= 0 and "test/elbo_nats" in metrics


@pytest.mark.parametrize("override, phrase", [
    ("model.latent_dim=0", "latent_dim must be >= 1"),
    ("train.lr=-1", "train.lr must be > 0"),
    ("model.name=conv_autoencoder", "unknown model 'conv_autoencoder'"),
    ("model.kernel_size=31", "kernel"),
    ("data.name=fashion_mnist", "unknown dataset"),
])
def test_bad_input_is_one_line_exit_2_and_no_run_dir(tmp_path, tiny_arrays, override, phrase):
    config = write_config(tmp_path, tiny_arrays)
    proc = run_cli("train", str(config), override)
    assert proc.returncode == 2, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and phrase in lines[0] and "Fix:" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_corrupt_data_file_is_reported(tmp_path, tiny_arrays):
    broken = tmp_path / "broken.npz"
    broken.write_bytes(tiny_arrays.read_bytes()[:100])
    config = write_config(tmp_path, broken)
    proc = run_cli("train", str(config))
    assert proc.returncode == 2 and "broken.npz" in proc.stderr and "Traceback" not in proc.stderr


def test_debug_shows_traceback(tmp_path, tiny_arrays):
    config = write_config(tmp_path, tiny_arrays)
    proc = run_cli("--debug", "train", str(config), "train.lr=-1")
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_models_and_datasets_listing(tmp_path):
    models = run_cli("models")
    assert models.returncode == 0
    for name in ("fc_ae", "conv_ae", "resnet_ae", "vae", "beta_vae"):
        assert name in models.stdout
    datasets = run_cli("datasets", "--data-dir", str(tmp_path))
    assert datasets.returncode == 0 and "fashion-mnist" in datasets.stdout


def test_evaluate_missing_run_dir(tmp_path):
    proc = run_cli("evaluate", str(tmp_path / "nope"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr
