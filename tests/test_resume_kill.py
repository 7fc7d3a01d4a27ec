"""A run killed with SIGKILL mid-epoch and resumed ends with the metrics of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from conftest import run_cli


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted(tmp_path, tiny_arrays):
    cfg = {
        "seed": 3,
        "output_dir": str(tmp_path / "runs"),
        "data": {"name": "arrays", "path": str(tiny_arrays), "val_fraction": 0.2},
        "model": {"name": "conv_ae", "latent_dim": 4, "channels": [8, 16], "dropout": 0.1},
        "train": {"epochs": 6, "batch_size": 8, "progress": "off", "scheduler": "cosine", "num_threads": 1,
                  "checkpoint_every": 1},
        "eval": {"figures": False},
    }
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(cfg))

    reference = run_cli("train", str(config), "--name", "reference")
    assert reference.returncode == 0, reference.stderr
    expected = json.loads((tmp_path / "runs" / "reference" / "metrics.json").read_text())

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "reprlab", "train", str(config), "--name", "killed"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = tmp_path / "runs" / "killed"
    deadline = time.time() + 120
    # wait until at least two epochs are checkpointed, then kill in the middle of the next one
    while time.time() < deadline:
        state = run / "checkpoints" / "epoch_0002" / "model.safetensors"
        if state.exists():
            break
        if proc.poll() is not None:
            pytest.fail("training finished before it could be killed; make the run longer")
        time.sleep(0.02)
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads((run / "status.json").read_text())["state"] == "running"
    assert not (run / "metrics.json").exists()

    resumed = run_cli("train", "--resume", str(run))
    assert resumed.returncode == 0, resumed.stderr
    got = json.loads((run / "metrics.json").read_text())
    for key in ("test/mse", "test/psnr", "test/ssim", "train/loss", "val/loss"):
        assert got[key] == pytest.approx(expected[key], rel=1e-4, abs=1e-6), key
    assert got["epochs"] == expected["epochs"] == 6
    rows = (run / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 7

    again = run_cli("train", "--resume", str(run))
    assert again.returncode == 2 and "already finished" in again.stderr
