"""Every example config under configs/ loads, validates and builds its model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reprlab.config import RunConfig
from reprlab.experiments.search import load_raw, split_sections
from reprlab.models import create_model
from reprlab.training.engine import to_channels_last, training_autocast

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


def _reference_pass(path: Path):
    """The config's model in eval mode (no state carried from one pass to the next: batch-norm
    statistics, spectral-norm vectors), 4 seeded images, and its float32 NCHW loss and gradients,
    the gradients zeroed again on the model. The pass to compare runs after ``torch.manual_seed(1)``."""
    torch.manual_seed(0)
    model, shape = _build(path)
    model.eval()
    x = torch.rand(4, *shape, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(1)
    reference = model(x)
    reference.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return model, x, reference, grads


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_config_model_gives_the_same_loss_and_gradients_in_the_channels_last_layout(path):
    """``train.channels_last`` only changes the memory layout: every model of the examples computes
    the same loss and gradients (to float rounding) on NHWC weights and images."""
    model, x, reference, grads = _reference_pass(path)
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


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_config_model_trains_under_bfloat16_autocast(path):
    """``train.precision=bf16`` runs the forward pass under bfloat16 autocast: in every model of the
    examples each conv and linear layer computes in bfloat16, the loss stays finite and near the
    float32 one, and the gradients are float32, for the same parameters, near the float32 ones
    (bfloat16 keeps about 3 significant digits)."""
    model, x, reference, grads = _reference_pass(path)
    dtypes = []
    for layer in model.modules():
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
            layer.register_forward_hook(lambda _m, _i, output: dtypes.append(output.dtype))
    torch.manual_seed(1)
    with training_autocast("bf16", torch.device("cpu")):
        out = model(x)
    assert dtypes and set(dtypes) == {torch.bfloat16}  # every conv and linear layer computed in bfloat16
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert float(out.loss.detach()) == pytest.approx(float(reference.loss.detach()), rel=5e-2, abs=1e-3)
    assert grads and {n for n, p in model.named_parameters() if p.grad is not None} == set(grads)
    params = {n: p for n, p in model.named_parameters() if n in grads}
    assert {p.grad.dtype for p in params.values()} == {torch.float32}
    # over all parameters at once: a layer whose float32 gradient nearly cancels (a GAN's summed losses)
    # has no meaningful relative error of its own
    new, old = (torch.cat([g.flatten() for g in gs]) for gs in ([p.grad for p in params.values()], grads.values()))
    if old.norm() == 0:  # no gradient in this eval-mode pass (e.g. a task loss without labels)
        assert new.norm() == 0
    else:
        assert float(torch.nn.functional.cosine_similarity(new, old, dim=0)) > 0.9  # 0.947 to 1.0 seen
