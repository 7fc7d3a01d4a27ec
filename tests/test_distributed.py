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


EXIT_SCRIPT = '''
import atexit, pathlib, sys
import torch.distributed as dist
from reprlab.training.distributed import exit_distributed_process
marker = pathlib.Path(sys.argv[1])
atexit.register(lambda: marker.write_text("the interpreter's teardown ran"))
exit_distributed_process(0)  # not in a process group yet: returns
print("still here")
dist.init_process_group("gloo", init_method=pathlib.Path(sys.argv[2]).as_uri(), rank=0, world_size=1)
print("leaving", end="")  # not flushed by print: exit_distributed_process must flush it
exit_distributed_process(3)
print("not reached")
'''


def test_a_distributed_process_exits_with_its_code_without_the_interpreter_teardown(tmp_path):
    """The gloo teardown abort (1 exit in 40) cannot be provoked on demand; what is checked is
    that a process in a group leaves by ``os._exit`` with its code and flushed output, and that
    one outside a group is left alone."""
    if not torch.distributed.is_available():
        pytest.fail("torch.distributed is not available in this build")
    script, marker = tmp_path / "exit.py", tmp_path / "teardown.txt"
    script.write_text(EXIT_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(marker), str(tmp_path / "rendezvous")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert proc.stdout == "still here\nleaving"
    assert not marker.exists()


def test_the_cli_ends_a_torchrun_worker_through_exit_distributed_process(monkeypatch, tmp_path):
    import reprlab.training.distributed as distributed
    from reprlab.cli.main import main

    seen = []
    monkeypatch.setattr(distributed, "exit_distributed_process", seen.append)
    assert main(["models"]) == 0
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert seen == [0, 2]
