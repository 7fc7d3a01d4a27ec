"""What the clustering capability adds to every run: the ``cluster`` config section and a post-run step.

Loaded through the ``reprlab.plugins`` entry point (see :mod:`reprlab.base.plugins`).

Example:
    >>> from reprlab.runs import list_post_run_hooks
    >>> "clustering" in list_post_run_hooks()
    True
"""

from __future__ import annotations

from reprlab.capabilities.clustering import config as _config  # noqa: F401  (registers the `cluster` section)
from reprlab.capabilities.clustering.pipeline import checkpoint_curve, cluster_run, flat_metrics
from reprlab.runs import PostRunContext, register_post_run_hook


def cluster_after_training(ctx: PostRunContext) -> dict[str, float]:
    """The ``cluster`` section at the end of training: cluster the embeddings (and the checkpoint curve)."""
    c = ctx.cfg.cluster
    if not (c.enabled or c.checkpoint_curve):
        return {}
    options = dict(c.estimator_options(), random_state=c.random_state, device=ctx.device, splits=ctx.splits)
    out: dict[str, float] = {}
    if c.enabled:
        out = flat_metrics(cluster_run(ctx.run.path, split=c.split, max_points=c.max_points, model=ctx.model,
                                       update_run=False, features=c.features, **options))
    if c.checkpoint_curve:
        options = {k: v for k, v in options.items() if k not in ("criterion", "k_range")}
        checkpoint_curve(ctx.run.path, max_eval_points=c.max_points, **options)
    return out


register_post_run_hook("clustering", cluster_after_training, order=20)
