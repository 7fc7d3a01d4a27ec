"""Saving and loading models: weights in safetensors, architecture as JSON.

``save_model(model, "dir/model")`` writes ``dir/model.safetensors`` and
``dir/model.json`` (``{"model": name, "config": {...}}``), both atomically.
``load_model("dir/model")`` rebuilds through the registry; nothing is unpickled.

Example:
    >>> from reprlab.models import create_model, save_model, load_model
    >>> m = create_model("fc_ae", input_shape=(1, 28, 28), latent_dim=4)
    >>> _ = save_model(m, "/tmp/doc_model")
    >>> load_model("/tmp/doc_model").config.latent_dim
    4
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from reprlab.base.errors import ModelError
from reprlab.models.registry import create_model
from reprlab.base.io import atomic_write, read_json, write_json


def _stem(path: str | Path) -> Path:
    p = Path(path)
    return p.with_suffix("") if p.suffix in (".safetensors", ".json") else p


def model_spec(model) -> dict:
    """The JSON description ``{"model": name, "config": {...}}`` of ``model``."""
    return {"model": model.registry_name, "config": model.config.to_dict(), "format": "reprlab-model-v1"}


def save_model(model, path: str | Path) -> Path:
    """Write ``<path>.safetensors`` and ``<path>.json``; returns the stem path."""
    stem = _stem(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(stem.with_suffix(".safetensors"), lambda tmp: save_file(state, tmp))
    write_json(stem.with_suffix(".json"), model_spec(model))
    return stem


def load_weights(model, path: str | Path) -> None:
    """Load safetensors weights from ``<path>.safetensors`` into ``model`` (strict)."""
    file = _stem(path).with_suffix(".safetensors")
    try:
        state = load_file(str(file))
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise ModelError(f"cannot read weights {file}: {exc}",
                         fix="the file is missing or corrupt; use another checkpoint (e.g. checkpoints/last)") from None
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelError(f"weights {file} do not fit {model.registry_name}: missing {missing[:3]}, unexpected {unexpected[:3]}",
                         fix="load them with the config saved beside them")


def load_model(path: str | Path, map_location: str | torch.device = "cpu"):
    """Rebuild a model from ``<path>.json`` and load ``<path>.safetensors``."""
    stem = _stem(path)
    try:
        spec = read_json(stem.with_suffix(".json"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read model description {stem.with_suffix('.json')}: {exc}",
                         fix="point to a model saved by reprlab (a run's checkpoints/best)") from None
    if not isinstance(spec, dict) or "model" not in spec or "config" not in spec:
        raise ModelError(f"{stem.with_suffix('.json')} is not a reprlab model description",
                         fix="point to a model saved by reprlab (a run's checkpoints/best)")
    model = create_model(spec["model"], **spec["config"])
    load_weights(model, stem)
    return model.to(map_location)
