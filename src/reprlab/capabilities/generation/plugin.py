"""What the generation capability adds: the ``generate`` task, the ``generation`` section, a VAE post-run step.

Importing :mod:`.task` registers the task and the config section. The post-run step
``generation`` gives reconstruct runs of generative models (VAEs) the same generation
metrics and figures as a GAN run when ``generation.for_vae=true`` (off by default: it
trains or loads the feature network, which plain autoencoder runs do not need); runs
already scored by the ``generate`` task are skipped. ``reprlab evaluate --generation
RUN_DIR`` does the same for a finished run. The detected GAN failures are also health checks
(``gan_discriminator_wins``, ``gan_mode_collapse``, ``gan_non_finite``: see
:mod:`reprlab.tasks.health`), so they set the run's health verdict to "suspect". Loaded through the ``reprlab.plugins`` entry
point (see :mod:`reprlab.base.plugins`).

Example:
    >>> from reprlab.runs import list_post_run_hooks
    >>> "generation" in list_post_run_hooks()
    True
"""

from __future__ import annotations

from reprlab.capabilities.generation.failures import ADVICE, TITLES
from reprlab.capabilities.generation.task import generation_report, is_generative
from reprlab.runs import PostRunContext, register_post_run_hook
from reprlab.tasks.health import Finding, HealthProbe, register_health_check


def generation_after_training(ctx: PostRunContext) -> dict[str, float]:
    """Generation metrics and figures for a VAE trained to reconstruct (with ``generation.for_vae``)."""
    if getattr(ctx.task, "name", "") == "generate" or not ctx.cfg.generation.for_vae or not is_generative(ctx.model):
        return {}
    metrics, _ = generation_report(ctx.cfg, ctx.model, ctx.splits, ctx.run.path, history=None,
                                   figures=ctx.cfg.eval.figures)
    return metrics


register_post_run_hook("generation", generation_after_training, order=30)


def _gan_health_check(kind: str):
    def check(probe: HealthProbe) -> Finding | None:
        epoch = probe.metrics.get(f"gan/{kind}_epoch")
        if epoch is None:
            return None
        return Finding(f"gan_{kind}", f"{TITLES[kind]} from epoch {int(epoch)} (generation/metrics.json)", ADVICE[kind])
    return check


# The GAN failures found by the generate task's evaluation also make the run's health verdict "suspect".
for _kind in ADVICE:
    register_health_check(f"gan_{_kind}")(_gan_health_check(_kind))
