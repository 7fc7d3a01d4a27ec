"""``train.max_cpu_minutes``: a run stops after the epoch in which its process used the CPU budget.

Budgets in the benchmarks ("at most 20 CPU-minutes each") are CPU time, not epochs; the
callback is :class:`reprlab.training.callbacks.CPUBudget`.
"""

from __future__ import annotations

import json

import pytest

import reprlab
from reprlab.base.errors import ConfigError
from reprlab.config import RunConfig
from reprlab.training.callbacks import CPUBudget

from conftest import write_tiny_npz

pytestmark = pytest.mark.usefixtures("single_thread", "restore_logging")


def _cfg(tmp_path, **train):
    return {"seed": 0, "output_dir": str(tmp_path / "runs"),
            "data": {"name": "arrays", "path": str(write_tiny_npz(tmp_path / "tiny.npz"))},
            "model": {"name": "fc_ae", "latent_dim": 4, "hidden_sizes": [16]},
            "train": {"epochs": 6, "batch_size": 32, "progress": "off", "num_threads": 1, **train},
            "eval": {"figures": False, "report": False}}


def test_a_tiny_cpu_budget_stops_the_run_after_its_first_epoch(tmp_path):
    result = reprlab.train(_cfg(tmp_path, max_cpu_minutes=1e-6))
    assert result.metrics["epochs"] == 1
    assert json.loads((result.run_dir / "status.json").read_text())["state"] == "finished"
    # without a budget the same run trains every epoch
    full = reprlab.train({**_cfg(tmp_path), "name": "nobudget"})
    assert full.metrics["epochs"] == 6


def test_the_budget_spent_is_carried_over_a_resume():
    budget = CPUBudget(minutes=1.0)
    budget.load_state_dict({"spent_seconds": 59.5})
    assert not budget.exhausted()
    budget.load_state_dict({"spent_seconds": 60.0})
    assert budget.exhausted()
    assert budget.state_dict()["spent_seconds"] == pytest.approx(60.0)


@pytest.mark.parametrize("value", [0, -1.0])
def test_an_impossible_budget_is_refused(value):
    with pytest.raises(ConfigError, match="train.max_cpu_minutes"):
        RunConfig.from_dict({"train": {"max_cpu_minutes": value}}).validate()
