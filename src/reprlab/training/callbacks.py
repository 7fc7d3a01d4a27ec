"""Training callbacks: progress, metrics logging, checkpoints, early stopping, TensorBoard.

Callbacks see the :class:`~reprlab.training.engine.Trainer` at fixed points
(``on_fit_start``, ``on_epoch_start``, ``on_batch_end``, ``on_epoch_end``,
``on_fit_end``). Those that write files set ``rank_zero_only = True`` and are only
called on rank 0 of a distributed run. Stateful callbacks implement
``state_dict``/``load_state_dict`` so a resumed run continues exactly.

Example:
    >>> stopper = EarlyStopping(monitor="val/loss", patience=2)
    >>> [stopper.update(v) for v in (1.0, 0.9, 0.95, 0.93)]
    [False, False, False, True]
"""

from __future__ import annotations

import csv
import io
import logging
import math
import sys
from pathlib import Path
from typing import Any

from reprlab.training.checkpoint import save_checkpoint
from reprlab.base.io import write_text

logger = logging.getLogger(__name__)


class Callback:
    """Base class: override the hooks you need."""

    rank_zero_only = False

    def on_fit_start(self, trainer) -> None: ...
    def on_epoch_start(self, trainer, epoch: int) -> None: ...
    def on_batch_end(self, trainer, step: int, batch_size: int) -> None: ...
    def on_epoch_end(self, trainer, epoch: int, row: dict[str, float]) -> None: ...
    def on_fit_end(self, trainer) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class ProgressBar(Callback):
    """A tqdm bar per epoch; off when stderr is not a terminal unless ``enabled=True``."""

    rank_zero_only = True

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._bar = None

    def on_epoch_start(self, trainer, epoch: int) -> None:
        if self.enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=trainer.steps_per_epoch, desc=f"epoch {epoch + 1}/{trainer.epochs}",
                             leave=False, dynamic_ncols=True)

    def on_batch_end(self, trainer, step: int, batch_size: int) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def on_epoch_end(self, trainer, epoch: int, row: dict[str, float]) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        shown = ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k.endswith("loss"))
        logger.info("epoch %d/%d: %s", epoch + 1, trainer.epochs, shown)
        if self.enabled:
            print(f"epoch {epoch + 1}/{trainer.epochs}: {shown}", file=sys.stderr)


class MetricsCSV(Callback):
    """Rewrite ``metrics.csv`` (one row per epoch, every loss term) atomically each epoch."""

    rank_zero_only = True

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_epoch_end(self, trainer, epoch: int, row: dict[str, float]) -> None:
        write_text(self.path, rows_to_csv(trainer.history))


def rows_to_csv(rows: list[dict[str, Any]]) -> str:
    """CSV text with the union of keys as columns (``epoch`` first)."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    columns.sort(key=lambda c: (c != "epoch", c))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


class Checkpointer(Callback):
    """Save ``last`` (with resume state) every epoch, ``best`` on improvement, ``epoch_NNNN`` every N.

    ``best`` and ``epoch_NNNN`` hold ``trainer.eval_model`` (the weights' moving average with
    ``train.ema_decay``); ``last`` holds the raw weights that training continues from."""

    rank_zero_only = True

    def __init__(self, root: str | Path, *, every: int | None = 1, monitor: str = "val/loss", mode: str = "min") -> None:
        self.root = Path(root)
        self.every = every
        self.monitor = monitor
        self.mode = mode  # "min": lower is better (losses); "max": higher is better (accuracy)
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch = -1

    def improved(self, value: float) -> bool:
        """Whether ``value`` beats the best so far (NaN never does)."""
        return value < self.best if self.mode == "min" else value > self.best

    def on_epoch_end(self, trainer, epoch: int, row: dict[str, float]) -> None:
        value = row.get(self.monitor, row.get("train/loss", math.nan))
        if self.improved(value):
            self.best, self.best_epoch = float(value), epoch
            save_checkpoint(self.root, "best", trainer.eval_model)
        if self.every and (epoch + 1) % self.every == 0:
            save_checkpoint(self.root, f"epoch_{epoch + 1:04d}", trainer.eval_model)
        # `last` goes last: its state must include this callback's updated best.
        save_checkpoint(self.root, "last", trainer.model, state=trainer.resume_state())

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = float(state["best"]), int(state["best_epoch"])


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    def __init__(self, *, monitor: str = "val/loss", patience: int = 5, min_delta: float = 0.0,
                 mode: str = "min") -> None:
        self.monitor, self.patience, self.min_delta, self.mode = monitor, patience, min_delta, mode
        self.best = math.inf if mode == "min" else -math.inf
        self.bad_epochs = 0

    def update(self, value: float) -> bool:
        """Record ``value``; return True when training should stop."""
        better = value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta
        if better:
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def on_epoch_end(self, trainer, epoch: int, row: dict[str, float]) -> None:
        value = row.get(self.monitor, row.get("train/loss"))
        if value is not None and self.update(float(value)):
            logger.info("early stopping at epoch %d: %s has not improved for %d epochs", epoch + 1, self.monitor, self.patience)
            trainer.should_stop = True

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.bad_epochs = float(state["best"]), int(state["bad_epochs"])


class CPUBudget(Callback):
    """Stop at the end of the epoch in which this process has used ``minutes`` of CPU time.

    CPU time is :func:`time.process_time` (all threads of this process), counted from
    ``on_fit_start`` and carried over a resume, so "at most N CPU-minutes" budgets compare
    methods on the same footing on a shared machine (Lightning's ``max_time`` is wall time,
    which other jobs distort). The epoch that crosses the budget finishes; none starts after.

    Example:
        >>> budget = CPUBudget(minutes=0.5)
        >>> budget.spent_seconds = 31.0
        >>> budget.exhausted()
        True
    """

    def __init__(self, *, minutes: float) -> None:
        self.minutes = float(minutes)
        self.spent_seconds = 0.0
        self._started: float | None = None

    def _now(self) -> float:
        import time

        return self.spent_seconds + (time.process_time() - self._started if self._started is not None else 0.0)

    def exhausted(self) -> bool:
        """True once the CPU time spent reaches the budget."""
        return self._now() >= self.minutes * 60.0

    def on_fit_start(self, trainer) -> None:
        import time

        self._started = time.process_time()

    def on_epoch_end(self, trainer, epoch: int, row: dict[str, float]) -> None:
        if self.exhausted() and epoch + 1 < trainer.epochs:
            logger.info("CPU budget of %.3g minutes used up after epoch %d: stopping", self.minutes, epoch + 1)
            trainer.should_stop = True

    def state_dict(self) -> dict[str, Any]:
        return {"spent_seconds": self._now()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.spent_seconds = float(state["spent_seconds"])
        self._started = None


class TensorBoardLogger(Callback):
    """Write each epoch's row as scalars to ``log_dir`` (needs the ``tensorboard`` package)."""

    rank_zero_only = True

    def __init__(self, log_dir: str | Path) -> None:
        self.log_dir = Path(log_dir)
        self._writer = None

    def on_fit_start(self, trainer) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            from reprlab.base.errors import ConfigError

            raise ConfigError("train.tensorboard=true needs the tensorboard package",
                              fix="pip install tensorboard, or set train.tensorboard=false") from None
        self._writer = SummaryWriter(str(self.log_dir))

    def on_epoch_end(self, trainer, epoch: int, row: dict[str, float]) -> None:
        for key, value in row.items():
            if key != "epoch":
                self._writer.add_scalar(key, value, epoch + 1)
        self._writer.flush()

    def on_fit_end(self, trainer) -> None:
        if self._writer is not None:
            self._writer.close()
