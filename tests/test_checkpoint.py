"""Atomic checkpoints, safe loading, and model save/load."""

from __future__ import annotations

import os

import pytest
import torch

from reprlab.base.errors import ModelError, TrainingError
from reprlab.models import create_model, load_model
from reprlab.training.checkpoint import load_state, resolve_checkpoint, save_checkpoint


def _model():
    return create_model("fc_ae", input_shape=(1, 8, 8), latent_dim=2, hidden_sizes=(8,))


def test_save_and_load_state_with_weights_only(tmp_path):
    model = _model()
    opt = torch.optim.Adam(model.parameters())
    model(torch.rand(4, 1, 8, 8)).loss.backward()
    opt.step()
    save_checkpoint(tmp_path, "last", model, state={"epoch": 3, "optimizers": {"main": opt.state_dict()}})
    state = load_state(tmp_path, "last")
    assert state["epoch"] == 3
    fresh = torch.optim.Adam(model.parameters())
    fresh.load_state_dict(state["optimizers"]["main"])
    reloaded = load_model(tmp_path / "last" / "model")
    for a, b in zip(model.state_dict().values(), reloaded.state_dict().values()):
        assert torch.equal(a, b)


def test_overwrite_is_a_swap_and_interrupted_swap_recovers(tmp_path):
    model = _model()
    save_checkpoint(tmp_path, "last", model, state={"epoch": 1})
    save_checkpoint(tmp_path, "last", model, state={"epoch": 2})
    assert load_state(tmp_path, "last")["epoch"] == 2
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]
    # simulate a crash between the two renames: only .last.old is left
    os.replace(tmp_path / "last", tmp_path / ".last.old")
    assert resolve_checkpoint(tmp_path, "last") == tmp_path / ".last.old"
    assert load_state(tmp_path, "last")["epoch"] == 2


def test_pickled_objects_are_refused(tmp_path):
    save_checkpoint(tmp_path, "last", _model(), state={"epoch": 1})

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"epoch": Evil()}, tmp_path / "last" / "state.pt")
    with pytest.raises(TrainingError, match="cannot read"):
        load_state(tmp_path, "last")


def test_truncated_weights_give_a_clear_error(tmp_path):
    save_checkpoint(tmp_path, "best", _model())
    path = tmp_path / "best" / "model.safetensors"
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(ModelError, match="cannot read weights"):
        load_model(tmp_path / "best" / "model")


def test_missing_state_says_what_to_do(tmp_path):
    with pytest.raises(TrainingError, match="start it again without --resume"):
        load_state(tmp_path, "last")
