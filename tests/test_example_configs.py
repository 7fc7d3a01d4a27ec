"""Every example config under configs/ loads, validates and builds its model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reprlab.config import RunConfig
from reprlab.experiments.search import load_raw, split_sections
from reprlab.models import create_model
from reprlab.training.engine import to_channels_last

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_there_are_example_configs():
    assert len(CONFIGS) >= 8


def _build(path: Path) -> tuple[torch.nn.Module, tuple[int, int, int]]:
    # search: / cv: / sweep: sections belong to reprlab.experiments (checked in tests/test_search.py)
    cfg = RunConfig.from_dict(split_sections(load_raw(path))[0])
    options = dict(cfg.model)
    name = options.pop("name")
    channels = 3 if cfg.data.channels == 3 else 1
    shape = (channels, *cfg.data.resize) if cfg.data.resize else (channels, 28, 28)
    return create_model(name, input_shape=shape, **options), shape


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_config_validates_and_builds(path):
    model, shape = _build(path)
    out = model(torch.rand(2, *shape))
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_config_model_gives_the_same_loss_and_gradients_in_the_channels_last_layout(path):
    """``train.channels_last`` only changes the memory layout: every model of the examples computes
    the same loss and gradients (to float rounding) on NHWC weights and images."""
    torch.manual_seed(0)
    model, shape = _build(path)
    model.eval()  # no state carried from one pass to the next (batch-norm statistics, spectral-norm vectors)
    x = torch.rand(4, *shape, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(1)
    reference = model(x)
    reference.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    model.to(memory_format=torch.channels_last)
    torch.manual_seed(1)
    out = model(to_channels_last(x))
    out.loss.backward()
    assert float(out.loss.detach()) == pytest.approx(float(reference.loss.detach()), rel=1e-3, abs=1e-6)
    assert grads and {n for n, p in model.named_parameters() if p.grad is not None} == set(grads)
    for n, p in model.named_parameters():  # other kernels sum in another order: compare to the gradient's size
        if n in grads:
            error = float((p.grad - grads[n]).norm() / grads[n].norm().clamp_min(1e-12))
            assert error < 1e-2, (n, error)
