"""What the analysis capability adds to every run: a quick analysis for the report.

When ``eval.report`` is on, a finished training run gets the analyses of
:data:`REPORT_ANALYSIS` (embeddings, traversals, interpolation, samples, robustness)
under ``RUN_DIR/analysis/``, where the report finds them. ``reprlab analyze`` runs more.
Loaded through the ``reprlab.plugins`` entry point (see :mod:`reprlab.base.plugins`).

Example:
    >>> from reprlab.runs import list_post_run_hooks
    >>> "analysis" in list_post_run_hooks()
    True
"""

from __future__ import annotations

from typing import Any

from reprlab.capabilities.analysis.pipeline import analyze
from reprlab.runs import PostRunContext, register_post_run_hook

#: The quick analysis at the end of training (kernels, activation maps and per-split score
#: histograms come from ``reprlab analyze``).
REPORT_ANALYSIS: dict[str, Any] = {"what": ("embeddings", "traversal", "interpolation", "samples", "robustness"),
                                   "method": ("pca", "tsne"), "max_points": 2000}


def analyze_after_training(ctx: PostRunContext) -> dict[str, float]:
    """Run :data:`REPORT_ANALYSIS` on the finished run when it gets a report (and has no analysis yet)."""
    if not ctx.cfg.eval.report or (ctx.run.path / "analysis" / "index.json").exists():
        return {}
    if not (hasattr(ctx.model, "encode") and hasattr(ctx.model, "decode")):
        return {}  # the quick analysis looks at a latent space
    analyze(ctx.run.path, model=ctx.model, data=ctx.splits.test, strict=False, **REPORT_ANALYSIS)
    return {}


register_post_run_hook("analysis", analyze_after_training, order=10)
