"""Every example config under configs/ loads, validates and builds its model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reprlab.config import RunConfig
from reprlab.experiments.search import load_raw, split_sections
from reprlab.models import create_model

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_there_are_example_configs():
    assert len(CONFIGS) >= 8


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_config_validates_and_builds(path):
    # search: / cv: / sweep: sections belong to reprlab.experiments (checked in tests/test_search.py)
    cfg = RunConfig.from_dict(split_sections(load_raw(path))[0])
    options = dict(cfg.model)
    name = options.pop("name")
    channels = 3 if cfg.data.channels == 3 else 1
    shape = (channels, *cfg.data.resize) if cfg.data.resize else (channels, 28, 28)
    model = create_model(name, input_shape=shape, **options)
    out = model(torch.rand(2, *shape))
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
