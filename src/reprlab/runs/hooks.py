"""Post-run hooks: steps that run after training and the final evaluation (clustering, analysis, ...).

The packages that own a step register it here (``register_post_run_hook``); the one
orchestration (:mod:`reprlab.experiments.train`) runs every registered hook in
``order``, so the training code never imports a capability. A hook returns the metrics
it adds to ``metrics.json`` (an empty dict when it had nothing to do). A hook that fails
with a :class:`~reprlab.base.errors.ReprlabError` is logged and skipped: the run itself is
complete.

Example:
    >>> def my_hook(ctx):
    ...     return {"my/value": 1.0}
    >>> register_post_run_hook("doc-example", my_hook, order=99)
    >>> "doc-example" in list_post_run_hooks()
    True
    >>> unregister_post_run_hook("doc-example")
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from reprlab.base.errors import ReprlabError

logger = logging.getLogger(__name__)


@dataclass
class PostRunContext:
    """What a post-run hook sees: the config, run directory, the (best) model, the splits, device, task, the
    metrics so far and the per-epoch history."""

    cfg: Any
    run: Any
    model: torch.nn.Module
    splits: Any
    device: torch.device
    task: Any = None
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)  # one row per epoch (metrics.csv)


_HOOKS: dict[str, tuple[int, Callable[[PostRunContext], dict[str, float] | None]]] = {}


def register_post_run_hook(name: str, hook: Callable[[PostRunContext], dict[str, float] | None], *,
                           order: int = 50) -> None:
    """Register ``hook`` under ``name``; hooks run in increasing ``order`` (re-registering replaces)."""
    _HOOKS[name] = (int(order), hook)


def unregister_post_run_hook(name: str) -> None:
    """Remove the hook registered as ``name`` (no error when absent)."""
    _HOOKS.pop(name, None)


def list_post_run_hooks() -> list[str]:
    """Names of the registered hooks, in the order they run."""
    return [name for name, _ in sorted(_HOOKS.items(), key=lambda kv: (kv[1][0], kv[0]))]


def run_post_run_hooks(ctx: PostRunContext) -> dict[str, float]:
    """Run every hook in order; returns the metrics they add. A failing hook is logged and skipped."""
    out: dict[str, float] = {}
    for name in list_post_run_hooks():
        try:
            ctx.metrics = {**ctx.metrics, **out}
            out.update(_HOOKS[name][1](ctx) or {})
        except ReprlabError as exc:
            logger.warning("post-run step %s failed (%s); the run itself is complete", name, exc)
    return out
