"""Two CPU processes (torchrun, gloo) train like one process with the doubled batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml
from safetensors.torch import load_file

from conftest import run_cli


@pytest.mark.slow
def test_two_process_ddp_matches_single_process(tmp_path, tiny_arrays):
    if not torch.distributed.is_available():
        pytest.fail("torch.distributed is not available in this build")
    base = {
        "seed": 1,
        "output_dir": str(tmp_path / "runs"),
        # 120 images: 24 held out for test, 32 for validation, 64 for training; all divisible by
        # the batch sizes, so both runs see exactly the same images at every step
        "data": {"name": "arrays", "path": str(tiny_arrays), "val_fraction": 0.3333},
        # no BatchNorm: per-rank batch statistics would differ from a single process's by design
        "model": {"name": "fc_ae", "latent_dim": 3, "hidden_sizes": [32], "norm": "none"},
        "train": {"epochs": 3, "batch_size": 8, "progress": "off", "num_threads": 1, "lr": 0.01, "sanity_check": False},
        "eval": {"figures": False},
    }
    ddp_cfg = tmp_path / "ddp.yaml"
    ddp_cfg.write_text(yaml.safe_dump({**base, "name": "ddp"}))
    single_cfg = tmp_path / "single.yaml"
    single_cfg.write_text(yaml.safe_dump({**base, "name": "single", "train": {**base["train"], "batch_size": 16}}))

    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                "-m", "reprlab", "train", str(ddp_cfg)]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    proc = subprocess.run(torchrun, env={**env, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = run_cli("train", str(single_cfg))
    assert single.returncode == 0, single.stderr

    ddp_run, single_run = tmp_path / "runs" / "ddp", tmp_path / "runs" / "single"
    assert json.loads((ddp_run / "env.json").read_text())["world_size"] == 2
    a = load_file(str(ddp_run / "checkpoints" / "last" / "model.safetensors"))
    b = load_file(str(single_run / "checkpoints" / "last" / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5), key
    ma = json.loads((ddp_run / "metrics.json").read_text())
    mb = json.loads((single_run / "metrics.json").read_text())
    assert ma["train/loss"] == pytest.approx(mb["train/loss"], rel=1e-4)
    assert ma["test/mse"] == pytest.approx(mb["test/mse"], rel=1e-4)
    # only rank 0 wrote: exactly one run directory per run
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["ddp", "single"]
