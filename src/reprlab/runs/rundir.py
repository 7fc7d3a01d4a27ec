"""Run directories: creation (never overwriting), status, and reading back.

A run directory holds::

    run.json            {"kind": "train" | "detect", "schema": 1}: which commands read it
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

from reprlab.base.errors import RunDirError
from reprlab.base.io import read_json, write_json

SCHEMA_VERSION = 1

#: Run kinds and the commands that read each (``reprlab report`` and ``compare`` read every kind).
KIND_COMMANDS: dict[str, tuple[str, ...]] = {
    "train": ("evaluate", "analyze", "cluster", "report", "compare", "train --resume"),
    "detect": ("report", "compare"),
}


class RunDir:
    """A run directory on disk."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # -- creation -------------------------------------------------------------------------
    @classmethod
    def create(cls, parent: str | Path, name: str, *, exist_ok_suffix: bool = False, kind: str = "train") -> "RunDir":
        """Create ``parent/name`` exclusively (recording its ``kind``); with ``exist_ok_suffix`` append -2, -3, ... if taken."""
        parent = Path(parent)
        parent.mkdir(parents=True, exist_ok=True)
        candidate, n = parent / name, 1
        while True:
            try:
                os.mkdir(candidate)
                break
            except FileExistsError:
                if not exist_ok_suffix:
                    from reprlab.runs.lock import busy_error, lock_holder

                    holder = lock_holder(candidate)
                    if holder is not None:
                        raise busy_error(candidate, holder) from None
                    raise RunDirError(f"run directory {candidate} already exists and is never overwritten",
                                      fix="choose another name=..., or continue it with --resume") from None
                n += 1
                candidate = parent / f"{name}-{n}"
        run = cls(candidate)
        (run.path / "checkpoints").mkdir()
        (run.path / "figures").mkdir()
        write_json(run.path / "run.json", {"kind": kind, "schema": SCHEMA_VERSION})
        return run

    @classmethod
    def open(cls, path: str | Path, *, require_finished: bool = False, kinds: tuple[str, ...] | None = None,
             command: str | None = None) -> "RunDir":
        """Open an existing run directory, checking it is one (and, with ``kinds``, one that ``command`` reads)."""
        run = cls(path)
        if not run.path.is_dir():
            raise RunDirError(f"run directory {run.path} does not exist", fix="pass a directory printed by `reprlab train`")
        if not (run.path / "config.yaml").exists():
            raise RunDirError(f"{run.path} is not a reprlab run directory (no config.yaml)",
                              fix="pass a directory printed by `reprlab train`")
        if kinds is not None and run.kind not in kinds:
            fitting = KIND_COMMANDS.get(run.kind, ("report",))
            raise RunDirError(f"{run.path} is a `{run.kind}` run directory, which `reprlab {command or 'this command'}` "
                              f"does not read",
                              fix="use " + ", ".join(f"`reprlab {c} {run.path}`" for c in fitting if c != command))
        if require_finished and run.status().get("state") != "finished":
            raise RunDirError(f"run {run.path} did not finish (state: {run.status().get('state', 'unknown')})",
                              fix=f"continue it with `reprlab train --resume {run.path}`")
        return run

    @property
    def kind(self) -> str:
        """``train`` or ``detect`` (from ``run.json``; older runs: ``detect`` if the config has a ``detector``)."""
        try:
            info = read_json(self.path / "run.json")
            if isinstance(info, dict) and isinstance(info.get("kind"), str):
                return info["kind"]
        except (OSError, ValueError):
            pass
        try:
            head = (self.path / "config.yaml").read_text()
        except OSError:
            return "unknown"
        return "detect" if head.startswith("detector:") or "\ndetector:" in head else "train"

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
        """Write ``status.json``: ``state`` (running / finished / failed), the run's kind, and ``extra``."""
        info = {"state": state, "kind": self.kind, "updated": _dt.datetime.now().isoformat(timespec="seconds"), **extra}
        write_json(self.path / "status.json", info)

    def metrics(self) -> dict[str, float]:
        return read_json(self.path / "metrics.json")

    def model_path(self, tag: str = "best") -> Path:
        """Stem of a checkpoint's model files, for :func:`reprlab.models.load_model`."""
        from reprlab.training.checkpoint import resolve_checkpoint

        folder = resolve_checkpoint(self.checkpoints, tag)
        if folder is None:
            where = self.checkpoints / tag
            others = sorted(p.name for p in self.checkpoints.glob("*") if p.name != tag and not p.name.startswith(".")
                            and resolve_checkpoint(self.checkpoints, p.name) is not None)
            fix = (f"use one of its checkpoints ({', '.join(others)}), e.g. `--checkpoint {others[0]}`" if others
                   else f"the run ended before its first epoch; train it again (`reprlab train {self.path / 'config.yaml'} "
                        "--name NEW_NAME`)")
            if where.is_dir():
                missing = [str(where / n) for n in ("model.safetensors", "model.json") if not (where / n).is_file()]
                raise RunDirError(f"checkpoint '{tag}' of run {self.path} is incomplete: {', '.join(missing)} "
                                  f"{'is' if len(missing) == 1 else 'are'} missing", fix=fix)
            raise RunDirError(f"run {self.path} has no checkpoint '{tag}'", fix=fix)
        return folder / "model"


def default_run_name(model: str, data: str) -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{model}-{data}-{stamp}"


#: The distributions whose versions results depend on (recorded in ``env.json``).
RESULT_DEPENDENCIES: tuple[str, ...] = ("torch", "numpy", "scipy", "scikit-learn", "torchmetrics", "openTSNE",
                                        "umap-learn", "kymatio", "safetensors", "Pillow", "pydantic")


def dependency_versions() -> dict[str, str | None]:
    """Installed versions of :data:`RESULT_DEPENDENCIES` (``None`` when one is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in RESULT_DEPENDENCIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def git_commit(path: str | Path | None = None) -> str | None:
    """The commit of the reprlab source checkout (``+dirty`` with uncommitted changes), or ``None``."""
    import subprocess

    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                               capture_output=True, text=True, timeout=5)
        return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment_info(**extra: Any) -> dict[str, Any]:
    """Python, platform, reprlab's version and git commit, the versions of every result dependency, plus ``extra``."""
    import torch

    import reprlab

    info = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "reprlab": getattr(reprlab, "__version__", "unknown"),
        "git_commit": git_commit(),
        "versions": dependency_versions(),
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "torch_threads": torch.get_num_threads(),
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
    }
    info["numpy"] = info["versions"]["numpy"]
    info.update(extra)
    return info
