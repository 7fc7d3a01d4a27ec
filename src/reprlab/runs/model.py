"""A run's model: build it from the config (checking the input fits) or load it back from a run directory.

Example:
    >>> from reprlab.config import RunConfig
    >>> build_model(RunConfig.from_dict({"model": {"name": "fc_ae", "latent_dim": 2}}), (1, 8, 8)).config.latent_dim
    2
"""

from __future__ import annotations

from pathlib import Path

import torch

from reprlab.base.errors import ConfigError
from reprlab.config import RunConfig
from reprlab.models import create_model, load_model
from reprlab.runs.rundir import RunDir


def build_model(cfg: RunConfig, input_shape: tuple[int, int, int]):
    """Create the configured model for ``input_shape`` and check the input fits it."""
    kwargs = cfg.model_kwargs()
    if "output_range" in kwargs and kwargs["output_range"] != cfg.data.scale:
        raise ConfigError(f"model.output_range={kwargs['output_range']} does not match data.scale={cfg.data.scale}",
                          fix="set both to the same value, or drop model.output_range (it follows data.scale)")
    if "input_shape" in kwargs and tuple(kwargs["input_shape"]) != tuple(input_shape):
        raise ConfigError(f"model.input_shape={kwargs['input_shape']} does not match the data's {tuple(input_shape)}",
                          fix="drop model.input_shape (it is set from the data) or set data.resize/data.channels")
    kwargs["input_shape"] = tuple(input_shape)
    kwargs["output_range"] = cfg.data.scale
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)  # the initial weights follow the run's seed
        model = create_model(cfg.model["name"], **kwargs)
    model.check_input()
    return model



def load_run_model(run_dir: str | Path, tag: str = "best"):
    """The model of a finished (or interrupted) run, from checkpoint ``tag``."""
    return load_model(RunDir.open(run_dir).model_path(tag))


