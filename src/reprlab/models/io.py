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


def other_checkpoints_fix(file: str | Path) -> str:
    """Advice for an unreadable checkpoint file: the run's *other* intact checkpoints, never the broken one.

    Example:
        >>> other_checkpoints_fix("/nonexistent/runs/r/checkpoints/last/model.safetensors")
        'this run has no other intact checkpoint: train it again'
        >>> print(other_checkpoints_fix("/tmp/somewhere/model.safetensors"))
        point to an intact model saved by reprlab (a run directory's checkpoints/best)
    """
    folder = Path(file).parent
    if folder.parent.name != "checkpoints":
        return "point to an intact model saved by reprlab (a run directory's checkpoints/best)"
    tag = folder.name.lstrip(".").removesuffix(".old")
    try:
        others = sorted(p.name for p in folder.parent.iterdir() if p.is_dir() and not p.name.startswith(".")
                        and p.name != tag and (p / "model.safetensors").is_file() and (p / "model.json").is_file())
    except OSError:
        others = []
    if not others:
        return "this run has no other intact checkpoint: train it again"
    pick = "best" if "best" in others else others[-1]
    return f"use another of this run's checkpoints ({', '.join(others)}), e.g. `--checkpoint {pick}`"


def load_weights(model, path: str | Path) -> None:
    """Load safetensors weights from ``<path>.safetensors`` into ``model`` (strict)."""
    file = _stem(path).with_suffix(".safetensors")
    if not file.is_file():
        raise ModelError(f"the weights file {file} does not exist", fix=other_checkpoints_fix(file))
    try:
        state = load_file(str(file))
    except (SafetensorError, OSError, RuntimeError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(f"cannot read weights {file} ({reason}): the file is corrupt",
                         fix=other_checkpoints_fix(file)) from None
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
        what = "does not exist" if isinstance(exc, FileNotFoundError) else f"cannot be read ({exc})"
        raise ModelError(f"the model description {stem.with_suffix('.json')} {what}",
                         fix=other_checkpoints_fix(stem.with_suffix(".json"))) from None
    if not isinstance(spec, dict) or "model" not in spec or "config" not in spec:
        raise ModelError(f"{stem.with_suffix('.json')} is not a reprlab model description",
                         fix="point to a model saved by reprlab (a run's checkpoints/best)")
    model = create_model(spec["model"], **spec["config"])
    load_weights(model, stem)
    return model.to(map_location)
