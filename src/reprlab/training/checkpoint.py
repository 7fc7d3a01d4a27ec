"""Checkpoints: a folder per checkpoint, swapped in atomically.

Layout of ``checkpoints/<tag>/``: ``model.safetensors`` + ``model.json`` (weights and
architecture, see :mod:`reprlab.models.io`) and, for resumable checkpoints,
``state.pt`` (epoch, optimiser and scheduler state, history; tensors and plain Python
values only, read back with ``torch.load(weights_only=True)``). Each checkpoint is
written into a temporary folder and renamed into place, so a crash at any moment leaves
either the old or the new checkpoint, never a mix.

Example:
    >>> from reprlab.models import create_model
    >>> m = create_model("fc_ae", input_shape=(1, 8, 8), latent_dim=2)
    >>> d = save_checkpoint("/tmp/doc_ckpt", "last", m, state={"epoch": 1})
    >>> load_state("/tmp/doc_ckpt", "last")["epoch"]
    1
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from reprlab.base.errors import TrainingError
from reprlab.models.io import save_model


def checkpoint_dir(root: str | Path, tag: str) -> Path:
    return Path(root) / tag


def save_checkpoint(root: str | Path, tag: str, model, *, state: dict[str, Any] | None = None) -> Path:
    """Write model weights (and optionally resume ``state``) to ``root/tag`` atomically."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{tag}.", suffix=".tmp", dir=root))
    try:
        save_model(model, tmp / "model")
        if state is not None:
            with open(tmp / "state.pt", "wb") as fh:
                torch.save(state, fh)
                fh.flush()
                os.fsync(fh.fileno())
        final = root / tag
        old = root / f".{tag}.old"
        if old.exists():
            shutil.rmtree(old)
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        if old.exists():
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root / tag


def resolve_checkpoint(root: str | Path, tag: str) -> Path | None:
    """The folder of checkpoint ``tag``, falling back to the previous one if a swap was cut short."""
    root = Path(root)
    for candidate in (root / tag, root / f".{tag}.old"):
        if (candidate / "model.safetensors").exists() and (candidate / "model.json").exists():
            return candidate
    return None


def load_state(root: str | Path, tag: str = "last") -> dict[str, Any]:
    """Read the resume state of checkpoint ``tag`` with ``weights_only=True``."""
    folder = resolve_checkpoint(root, tag)
    if folder is None or not (folder / "state.pt").exists():
        raise TrainingError(f"no resumable checkpoint '{tag}' in {root}",
                            fix="the run stopped before its first epoch ended; start it again without --resume")
    try:
        return torch.load(folder / "state.pt", map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as exc:
        raise TrainingError(f"cannot read {folder / 'state.pt'}: {str(exc).splitlines()[0]}",
                            fix="the file is corrupt or not a reprlab checkpoint; start the run again") from None
