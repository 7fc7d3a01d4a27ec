"""Checkpoints: a folder per checkpoint, swapped in atomically.

Layout of ``checkpoints/<tag>/``: ``model.safetensors`` + ``model.json`` (weights and
architecture, see :mod:`reprlab.models.io`) and, for resumable checkpoints,
``state.pt`` (epoch, optimiser and scheduler state, history, what the model remembers between
steps; tensors and plain Python values only, read back with ``torch.load(weights_only=True)``).
Each checkpoint is written into a temporary folder and renamed into place, so a crash at any
moment leaves either the old or the new checkpoint, never a mix.

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
from reprlab.base.io import umask_mode
from reprlab.models.io import save_model


def checkpoint_dir(root: str | Path, tag: str) -> Path:
    return Path(root) / tag


def save_checkpoint(root: str | Path, tag: str, model, *, state: dict[str, Any] | None = None) -> Path:
    """Write model weights (and optionally resume ``state``) to ``root/tag`` atomically."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{tag}.", suffix=".tmp", dir=root))
    try:
        os.chmod(tmp, umask_mode(0o777))  # mkdtemp makes 0700; checkpoints follow the user's umask
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
    config = Path(root).parent / "config.yaml"
    again = "start it again without --resume" + (f" (`reprlab train {config} --name NEW_NAME`)" if config.is_file() else "")
    if folder is None and not (Path(root) / tag).is_dir():
        raise TrainingError(f"no resumable checkpoint '{tag}' in {root}",
                            fix=f"the run stopped before its first epoch ended; {again}")
    if folder is None or not (folder / "state.pt").is_file():
        where = folder or Path(root) / tag
        missing = [str(where / n) for n in ("model.safetensors", "model.json", "state.pt") if not (where / n).is_file()]
        raise TrainingError(f"checkpoint {where} cannot be resumed: {', '.join(missing)} "
                            f"{'is' if len(missing) == 1 else 'are'} missing", fix=again)
    try:
        return torch.load(folder / "state.pt", map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as exc:
        text = str(exc)
        if "weights_only" in text or "Weights only load failed" in text:
            # PyTorch's own advice (retry with weights_only=False) would unpickle untrusted code: never pass it on
            reason = "it holds objects other than tensors and plain values, which reprlab never unpickles"
        else:
            reason = (text.strip().splitlines() or [type(exc).__name__])[0]
        raise TrainingError(f"cannot read {folder / 'state.pt'}: {reason}",
                            fix=f"the file is corrupt or not a reprlab training state: {again}") from None
