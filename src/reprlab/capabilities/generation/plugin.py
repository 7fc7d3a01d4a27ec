"""What the generation capability adds: the ``generate`` task, the ``generation`` section, a VAE post-run step.

Importing :mod:`.task` registers the task and the config section. The post-run step
``generation`` gives reconstruct runs of generative models (VAEs) the same generation
metrics and figures as a GAN run when ``generation.for_vae=true`` (off by default: it
trains or loads the feature network, which plain autoencoder runs do not need); runs
already scored by the ``generate`` task are skipped. ``reprlab evaluate --generation
RUN_DIR`` does the same for a finished run. Loaded through the ``reprlab.plugins`` entry
point (see :mod:`reprlab.base.plugins`).

Example:
    >>> from reprlab.runs import list_post_run_hooks
    >>> "generation" in list_post_run_hooks()
    True
"""

from __future__ import annotations

from reprlab.capabilities.generation.task import generation_report, is_generative
from reprlab.runs import PostRunContext, register_post_run_hook


def generation_after_training(ctx: PostRunContext) -> dict[str, float]:
    """Generation metrics and figures for a VAE trained to reconstruct (with ``generation.for_vae``)."""
    if getattr(ctx.task, "name", "") == "generate" or not ctx.cfg.generation.for_vae or not is_generative(ctx.model):
        return {}
    metrics, _ = generation_report(ctx.cfg, ctx.model, ctx.splits, ctx.run.path, history=None,
                                   figures=ctx.cfg.eval.figures)
    return metrics


register_post_run_hook("generation", generation_after_training, order=30)
