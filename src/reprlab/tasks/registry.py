"""The task registry: ``@register_task``, :func:`get_task`, :func:`list_tasks`.

A task says what a run is for and how it is judged. :class:`Task` has

* ``prepare_data(cfg)``: the run's splits (default: :func:`reprlab.runs.prepare_data`);
* ``check(cfg, model, splits)``: everything that can be refused before a run directory
  exists (the model fits the task, labels are there, ...);
* ``monitor`` / ``mode``: the validation value that picks the best checkpoint (per config:
  ``monitor_for(cfg)``);
* ``evaluate(ctx)``: the final evaluation (metrics, per-image files, figures);
* ``headline``: the metrics printed in the closing line and ranked by searches.

The run orchestration (:mod:`reprlab.experiments.train`) runs any task through one path:
data, model, sanity check, run directory, trainer, final evaluation, post-run hooks.
Today's autoencoder training is the ``reconstruct`` task; other packages register theirs.

Example:
    >>> from reprlab.tasks import get_task, list_tasks
    >>> "reconstruct" in list_tasks()
    True
    >>> get_task("reconstruct").monitor
    'val/loss'
"""

from __future__ import annotations

import difflib
from typing import Any, Callable

from reprlab.base.errors import ConfigError
from reprlab.runs import PostRunContext, Splits, prepare_data


#: The monitored value and mode that keep the final epoch as the best checkpoint: the epoch number always
#: improves, so the last epoch is the best one and early stopping never fires (``adapt.selection=last``,
#: ``classify.selection=last``).
FINAL_EPOCH: tuple[str, str] = ("epoch", "max")


class Task:
    """Base class of tasks (see the module docstring). Subclasses set the class attributes."""

    name: str = "?"
    description: str = ""
    monitor: str = "val/loss"
    mode: str = "min"
    headline: tuple[str, ...] = ()
    needs_labels: bool = False
    needs_domains: bool = False

    def prepare_data(self, cfg: Any) -> Splits:
        """The run's train / val / test splits."""
        splits = prepare_data(cfg)
        if self.needs_labels and splits.train.labels is None:
            raise ConfigError(f"task {self.name!r} needs labelled images but data.name={cfg.data.name} has no labels",
                              fix="use a labelled dataset, or give data.labels_path for your arrays")
        return splits

    def monitor_for(self, cfg: Any) -> tuple[str, str]:
        """The value (and ``"min"``/``"max"``) that picks this run's best checkpoint: ``(monitor, mode)``
        by default; a task whose criterion depends on the config (``adapt``: ``adapt.selection``) overrides it.

        Example:
            >>> Task().monitor_for(None)
            ('val/loss', 'min')
        """
        return self.monitor, self.mode

    def check(self, cfg: Any, model: Any, splits: Splits) -> None:
        """Refuse a config / model / data combination that cannot work (before any run directory exists)."""

    def callbacks(self, cfg: Any, splits: Splits, run: Any, device: Any) -> list:
        """Training callbacks of the task, run before the checkpointer (they may add the monitored value)."""
        return []

    def status(self, metrics: dict[str, float], run: Any = None) -> dict[str, Any]:
        """Extra fields of the finished run's ``status.json`` (e.g. a diagnosis)."""
        return {}

    def score(self, cfg: Any, model: Any, test: Any, device: Any, *, max_images: int | None = None) -> dict[str, float]:
        """The task's ``test/*`` metrics of ``model`` on ``test`` (what ``reprlab evaluate`` prints); every task defines it."""
        raise NotImplementedError(f"task {self.name!r} defines no score(): a Task subclass must implement it")

    def evaluate(self, ctx: PostRunContext, history: list[dict[str, float]]) -> dict[str, float]:
        """The final evaluation of a run on ``ctx.splits.test`` (metrics, per-image files, figures).

        Default: :meth:`score` alone.
        """
        return self.score(ctx.cfg, ctx.model, ctx.splits.test, ctx.device, max_images=ctx.cfg.eval.max_images)

    def summary(self, metrics: dict[str, float]) -> str:
        """The closing lines: the task's headline metrics that this run has, then those of every
        post-run stage it ran (:data:`STAGE_HEADLINES`: clustering's accuracy, NMI, ARI), one line per stage.

        Example:
            >>> Task().summary({"test/mse": 0.01, "cluster/acc": 0.5, "cluster/nmi": 0.4})  # no task headline
            'cluster/acc=0.5000  cluster/nmi=0.4000'
        """
        keys = [k for k in self.headline if k in metrics]
        lines = ["  ".join(f"{k}={metrics[k]:.4f}" for k in keys)]
        for stage in STAGE_HEADLINES:
            shown = [k for k in stage if k in metrics and k not in keys]
            if shown:
                lines.append("  ".join(f"{k}={metrics[k]:.4f}" for k in shown))
        return "\n".join(line for line in lines if line)


_TASKS: dict[str, Task] = {}
#: Headline keys of the post-run stages (one tuple per stage), printed by :meth:`Task.summary` when present.
STAGE_HEADLINES: tuple[tuple[str, ...], ...] = (("cluster/acc", "cluster/nmi", "cluster/ari"),)


def register_task(name: str) -> Callable[[type], type]:
    """Class decorator registering a :class:`Task` subclass under ``name`` (one instance is kept)."""

    def wrap(cls: type) -> type:
        cls.name = name
        _TASKS[name] = cls()
        return cls

    return wrap


def unregister_task(name: str) -> None:
    """Remove task ``name`` (no error when absent); for tests."""
    _TASKS.pop(name, None)


def list_tasks() -> list[str]:
    """Names of the registered tasks (the capability packages' too), sorted."""
    from reprlab.base.plugins import load_plugins

    load_plugins()  # tasks of capability packages register on import
    return sorted(_TASKS)


def get_task(name: str) -> Task:
    """The task registered as ``name``, or a :class:`ConfigError` naming the known ones."""
    if name not in _TASKS:
        from reprlab.base.plugins import load_plugins

        load_plugins()  # tasks of capability packages register on import
    if name not in _TASKS:
        close = difflib.get_close_matches(str(name), _TASKS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"unknown task {name!r}", fix=f"{hint}set task to one of: {', '.join(sorted(_TASKS))}")
    return _TASKS[name]
