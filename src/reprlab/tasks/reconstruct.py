"""The ``reconstruct`` task: autoencoders and VAEs judged by how well they reconstruct.

Best checkpoint by the validation loss; final metrics ``test/mse``, ``test/l1``,
``test/psnr``, ``test/ssim`` (and ``test/elbo_nats``, ``test/kl`` for VAEs) on images in
[0, 1]; ``per_image_scores.csv``; the learning curves and reconstruction figures.

Example:
    >>> from reprlab.tasks import get_task
    >>> get_task("reconstruct").headline
    ('test/mse', 'test/psnr', 'test/ssim', 'test/elbo_nats', 'test/kl')
"""

from __future__ import annotations

from typing import Any

from reprlab.base.errors import ConfigError
from reprlab.evaluation import evaluate_reconstruction
from reprlab.reporting.figures import plot_loss_curves, save_reconstruction_figures
from reprlab.runs import PostRunContext, Splits
from reprlab.tasks.registry import Task, register_task


@register_task("reconstruct")
class ReconstructTask(Task):
    """Reconstruct the input: MSE, L1, PSNR, SSIM (and the ELBO for VAEs) on the test split."""

    monitor = "val/loss"
    mode = "min"
    headline = ("test/mse", "test/psnr", "test/ssim", "test/elbo_nats", "test/kl")

    def check(self, cfg: Any, model: Any, splits: Splits) -> None:
        if not (hasattr(model, "encode") and hasattr(model, "decode")):
            raise ConfigError(f"model {cfg.model['name']!r} does not reconstruct images (no encode/decode)",
                              fix="choose an autoencoder or VAE (see `reprlab models`), or set the task that fits it")

    def score(self, cfg: Any, model: Any, test: Any, device: Any, *, max_images: int | None = None) -> dict[str, float]:
        report = evaluate_reconstruction(model, test, batch_size=cfg.eval.batch_size, device=device,
                                         max_images=max_images)
        out = report.prefixed("test")
        out["test/num_images"] = int(len(report.indices))
        return out

    def evaluate(self, ctx: PostRunContext, history: list[dict[str, float]]) -> dict[str, float]:
        cfg, model, test, run = ctx.cfg, ctx.model, ctx.splits.test, ctx.run
        report = evaluate_reconstruction(model, test, batch_size=cfg.eval.batch_size, device=ctx.device,
                                         max_images=cfg.eval.max_images)
        report.to_csv(run.path / "per_image_scores.csv")
        metrics = report.prefixed("test")
        metrics["test/num_images"] = int(len(report.indices))
        if cfg.eval.figures:
            plot_loss_curves(history, run.figures / "loss_curves.png")
            chosen = [i for i in cfg.eval.show if 0 <= i < len(test)]
            save_reconstruction_figures(model, test, report, run.figures, chosen=chosen, k=cfg.eval.k)
        return metrics
