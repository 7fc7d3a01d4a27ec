"""Run directories: creation (never overwriting), status, and reading back.

A run directory holds::

    config.yaml         the resolved config (every default filled in)
    env.json            versions, seed, device, world size
    status.json         {"state": "running" | "finished" | "failed", ...}
    metrics.csv         one row per epoch, every loss term, train and validation
    metrics.json        final test metrics (test/mse, test/psnr, test/ssim, test/elbo_nats, test/kl)
    per_image_scores.csv
    checkpoints/        best/, last/ (resumable), epoch_NNNN/
    figures/            loss_curves.png, reconstructions.png, best.png, worst.png, score_histogram.png

Only ``status.json`` with ``"state": "finished"`` marks a complete run.

Example:
    >>> run = RunDir.create("/tmp/doc_runs", "example-run-doc", exist_ok_suffix=True)
    >>> run.set_status("running")
    >>> run.status()["state"]
    'running'
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
from pathlib import Path
from typing import Any

from reprlab.errors import RunDirError
from reprlab.utils import read_json, write_json


class RunDir:
    """A run directory on disk."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # -- creation -------------------------------------------------------------------------
    @classmethod
    def create(cls, parent: str | Path, name: str, *, exist_ok_suffix: bool = False) -> "RunDir":
        """Create ``parent/name`` exclusively; with ``exist_ok_suffix`` append -2, -3, ... if taken."""
        parent = Path(parent)
        parent.mkdir(parents=True, exist_ok=True)
        candidate, n = parent / name, 1
        while True:
            try:
                os.mkdir(candidate)
                break
            except FileExistsError:
                if not exist_ok_suffix:
                    raise RunDirError(f"run directory {candidate} already exists and is never overwritten",
                                      fix="choose another name=..., or continue it with --resume") from None
                n += 1
                candidate = parent / f"{name}-{n}"
        run = cls(candidate)
        (run.path / "checkpoints").mkdir()
        (run.path / "figures").mkdir()
        return run

    @classmethod
    def open(cls, path: str | Path, *, require_finished: bool = False) -> "RunDir":
        """Open an existing run directory, checking it is one."""
        run = cls(path)
        if not run.path.is_dir():
            raise RunDirError(f"run directory {run.path} does not exist", fix="pass a directory printed by `reprlab train`")
        if not (run.path / "config.yaml").exists():
            raise RunDirError(f"{run.path} is not a reprlab run directory (no config.yaml)",
                              fix="pass a directory printed by `reprlab train`")
        if require_finished and run.status().get("state") != "finished":
            raise RunDirError(f"run {run.path} did not finish (state: {run.status().get('state', 'unknown')})",
                              fix=f"continue it with `reprlab train --resume {run.path}`")
        return run

    # -- files ----------------------------------------------------------------------------
    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def figures(self) -> Path:
        return self.path / "figures"

    def status(self) -> dict[str, Any]:
        try:
            return read_json(self.path / "status.json")
        except (OSError, ValueError):
            return {"state": "unknown"}

    def set_status(self, state: str, **extra: Any) -> None:
        info = {"state": state, "updated": _dt.datetime.now().isoformat(timespec="seconds"), **extra}
        write_json(self.path / "status.json", info)

    def metrics(self) -> dict[str, float]:
        return read_json(self.path / "metrics.json")

    def model_path(self, tag: str = "best") -> Path:
        """Stem of a checkpoint's model files, for :func:`reprlab.models.load_model`."""
        from reprlab.training.checkpoint import resolve_checkpoint

        folder = resolve_checkpoint(self.checkpoints, tag)
        if folder is None:
            raise RunDirError(f"run {self.path} has no checkpoint '{tag}'",
                              fix="the run ended before its first epoch; train it again")
        return folder / "model"


def default_run_name(model: str, data: str) -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{model}-{data}-{stamp}"


def environment_info(**extra: Any) -> dict[str, Any]:
    """Versions of Python and the main libraries, the platform, plus ``extra``."""
    import numpy
    import torch

    import reprlab

    info = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "reprlab": getattr(reprlab, "__version__", "unknown"),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "cuda_available": torch.cuda.is_available(),
        "torch_threads": torch.get_num_threads(),
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
    }
    info.update(extra)
    return info
