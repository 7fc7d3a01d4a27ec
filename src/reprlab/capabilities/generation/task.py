"""The ``generate`` task: generative models (``dcgan``, ``vae``, ``beta_vae``) judged by their samples.

* the ``generation`` config section (:class:`GenerationConfig`): sample counts, the
  offline feature network's recipe, the failure thresholds;
* before any run directory: the model must generate (``decode`` and a prior: a GAN or a
  VAE; a plain autoencoder is refused), the training split must hold at least one batch,
  and the feature network must be trainable on the data (labels for ``classes``, square
  images for ``rotation``);
* during training, :class:`GenerationMonitor` scores a fixed noise batch on the feature
  network after every ``generation.every`` epochs (``val/gen_fd``, ``val/gen_kid``,
  ``val/gen_precision``, ``val/gen_recall``, ``val/gen_diversity``, ``val/gen_coverage``;
  against the validation split, or ``train/...`` without one): the best checkpoint is the
  one with the lowest ``gen_fd``, never a loss. It also keeps 64 samples of every epoch
  for the progress figure;
* the final evaluation (on the best checkpoint) writes ``test/fd``, ``test/kid``,
  ``test/precision``, ``test/recall``, ``test/diversity``, ``test/coverage``,
  ``test/max_class_share`` (and ``test/real_max_class_share``, the real test images' largest predicted
  share under the same classifier), ``test/memorisation_ratio``, ``test/memorised_share``, the
  figures and ``RUN_DIR/generation/index.json`` (samples, progress, interpolation, a 2-D
  grid over two noise dimensions, the GAN curves, nearest-training-image pairs, the
  failure diagnosis) for the report, and the detected failures
  (:mod:`~reprlab.capabilities.generation.failures`) for ``status.json`` and the summary.

Example:
    >>> from reprlab.tasks import get_task
    >>> get_task("generate").monitor
    'val/gen_fd'
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reprlab.base.errors import ConfigError, DataError
from reprlab.base.io import read_json, write_json
from reprlab.base.validation import check_choice, check_float, check_int
from reprlab.capabilities.generation.failures import TITLES, detect_failures
from reprlab.capabilities.generation.features import OBJECTIVES, feature_network
from reprlab.capabilities.generation.metrics import GenerationEvaluator
from reprlab.config import register_section
from reprlab.data.dataset import ImageData
from reprlab.models.base import from_model_range
from reprlab.runs import (PostRunContext, RunDir, Splits, load_run_model, prepare_data, resolve_device,
                          training_pool)
from reprlab.tasks import Task, register_task
from reprlab.training.callbacks import Callback

logger = logging.getLogger(__name__)

#: Per-epoch generation metrics written to the epoch rows (``<split>/gen_<name>``).
EPOCH_METRICS: tuple[str, ...] = ("fd", "kid", "precision", "recall", "diversity", "coverage")
#: Final metrics written as ``test/<name>``.
FINAL_METRICS: tuple[str, ...] = ("fd", "kid", "kid_std", "precision", "recall", "diversity", "coverage",
                                  "max_class_share", "real_max_class_share", "memorisation_ratio", "memorised_share")


#: Where the feature network's training images come from (``generation.feature_data``).
FEATURE_DATA: tuple[str, ...] = ("all_train", "run_train")


@register_section("generation")
@dataclass
class GenerationConfig:
    """The ``generation`` section: how generated images are scored (task ``generate``; VAEs with ``for_vae``)."""

    n_samples: int = 1000          # final evaluation
    epoch_samples: int = 500       # per-epoch score on a fixed noise batch
    every: int = 1                 # score every N epochs (the others cannot become the best checkpoint)
    k: int = 3                     # neighbours of precision / recall
    kid_subsets: int = 50
    feature_objective: str = "auto"  # auto | classes | rotation
    feature_data: str = "all_train"  # all_train: every training image (not capped by data.max_train) | run_train
    feature_epochs: int = 5
    feature_max_images: int = 20000
    feature_seed: int = 0          # the feature network's own seed, not the run's: runs of every seed share one judge
    cache_dir: str | None = None   # feature-network cache (default $REPRLAB_CACHE or ~/.cache/reprlab)
    snapshots: int = 5             # epochs shown in the progress figure
    for_vae: bool = False          # reconstruct runs of VAEs also get the generation metrics (post-run step)
    patience: int = 3              # epochs a failure must last
    d_loss_floor: float = 0.05
    d_fake_floor: float = 0.05
    diversity_floor: float = 0.25

    def validate(self) -> None:
        check_int("generation.n_samples", self.n_samples, minimum=10, maximum=50000)
        check_int("generation.epoch_samples", self.epoch_samples, minimum=10, maximum=50000)
        check_int("generation.every", self.every, minimum=1)
        check_int("generation.k", self.k, minimum=1, maximum=50)
        check_int("generation.kid_subsets", self.kid_subsets, minimum=1)
        check_choice("generation.feature_objective", self.feature_objective, OBJECTIVES)
        check_choice("generation.feature_data", self.feature_data, FEATURE_DATA)
        check_int("generation.feature_epochs", self.feature_epochs, minimum=1)
        check_int("generation.feature_max_images", self.feature_max_images, minimum=10)
        check_int("generation.feature_seed", self.feature_seed, minimum=0)
        check_int("generation.snapshots", self.snapshots, minimum=1, maximum=20)
        check_int("generation.patience", self.patience, minimum=1)
        for name in ("d_loss_floor", "d_fake_floor", "diversity_floor"):
            check_float(f"generation.{name}", getattr(self, name), minimum=0.0, maximum=1.0)
        if self.k >= min(self.n_samples, self.epoch_samples):
            raise ConfigError(f"generation.k={self.k} needs more samples than "
                              f"{min(self.n_samples, self.epoch_samples)}", fix="raise generation.n_samples")


def is_generative(model: Any) -> bool:
    """Whether ``model`` maps prior draws to images (a GAN's generator, a VAE's decoder)."""
    return callable(getattr(model, "decode", None)) and bool(
        getattr(model, "has_prior", False) or getattr(model, "is_variational", False))


def require_generative(model: Any, name: str | None = None) -> None:
    """Raise :class:`ConfigError` for models without a prior to sample (plain autoencoders)."""
    if not is_generative(model):
        name = name or getattr(model, "registry_name", type(model).__name__)
        raise ConfigError(f"model {name!r} has no prior to sample from, so it cannot be scored as a generator "
                          f"(generation metrics need a GAN or a VAE)",
                          fix="use model.name=dcgan, vae or beta_vae (or task=reconstruct for an autoencoder)")


def fixed_noise(model: Any, n: int, seed: int) -> torch.Tensor:
    """``n`` seeded prior draws ``(n, latent_dim)`` on the CPU."""
    return torch.randn(int(n), int(model.config.latent_dim), generator=torch.Generator().manual_seed(int(seed)))


@torch.no_grad()
def decode01(model: Any, z: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """Decode noise ``z`` in eval mode (restoring the mode) to CPU images in [0, 1]."""
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    try:
        out = [from_model_range(model.decode(z[s:s + batch_size].to(dev)).float(), model).clamp(0, 1).cpu()
               for s in range(0, z.shape[0], batch_size)]
    finally:
        model.train(was)
    return torch.cat(out)


def sample01(model: Any, n: int, *, seed: int = 0) -> torch.Tensor:
    """``n`` seeded samples of a generative model, images in [0, 1] on the CPU."""
    require_generative(model)
    return decode01(model, fixed_noise(model, n, seed))


def feature_training_images(cfg: Any, train: ImageData) -> ImageData:
    """The feature network's training images: with ``generation.feature_data=all_train`` (the default) every
    training image of the dataset, not capped by ``data.max_train`` (so runs on different caps share one
    yardstick, as strong as ``generation.feature_max_images`` allows; the network never sees a test image);
    with ``run_train`` the run's own training split ``train``."""
    if cfg.generation.feature_data == "run_train":
        return train
    return training_pool(cfg)


def _feature_net(cfg: Any, train: ImageData, run_dir: Path | None):
    """The judge: seeded by ``generation.feature_seed``, not by the run's ``seed``, so that runs of different
    seeds (a seed sweep, a model against its baseline) are scored by the same network and their numbers compare."""
    g = cfg.generation
    return feature_network(feature_training_images(cfg, train), objective=g.feature_objective, seed=g.feature_seed,
                           epochs=g.feature_epochs, max_images=g.feature_max_images, cache_dir=g.cache_dir,
                           run_dir=run_dir)


def _check_feature_recipe(cfg: Any, train: ImageData) -> None:
    objective = cfg.generation.feature_objective
    c, h, w = train.shape
    if objective == "classes" and train.labels is None:
        raise ConfigError(f"generation.feature_objective=classes needs labels, but data.name={cfg.data.name} has none",
                          fix="set generation.feature_objective=rotation (or auto)")
    if (objective == "rotation" or (objective == "auto" and train.labels is None)) and h != w:
        raise ConfigError(f"the generation feature network learns rotation prediction on unlabelled images, which "
                          f"needs square images, got {h}x{w}", fix=f"set data.resize=[{max(h, w)},{max(h, w)}]")


class GenerationMonitor(Callback):
    """Per-epoch generation score of a fixed noise batch (picks the best checkpoint) and progress snapshots."""

    rank_zero_only = True

    def __init__(self, cfg: Any, splits: Splits, run_dir: str | Path | None) -> None:
        self.cfg = cfg
        self.splits = splits
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.prefix = "val" if splits.val is not None else "train"
        self.evaluator: GenerationEvaluator | None = None

    def on_fit_start(self, trainer) -> None:
        g = self.cfg.generation
        net = _feature_net(self.cfg, self.splits.train, self.run_dir)
        reference = self.splits.val if self.splits.val is not None else self.splits.train
        self.evaluator = GenerationEvaluator(net, reference, k=g.k, kid_subsets=min(g.kid_subsets, 10),
                                             seed=self.cfg.seed, max_real=max(g.epoch_samples, 1000))
        self.z = fixed_noise(trainer.eval_model, g.epoch_samples, self.cfg.seed + 101)

    def on_epoch_end(self, trainer, epoch: int, row: dict[str, float]) -> None:
        g = self.cfg.generation
        samples = decode01(trainer.eval_model, self.z)
        if self.run_dir is not None:
            snap = self.run_dir / "generation" / "snapshots"
            snap.mkdir(parents=True, exist_ok=True)
            np.save(snap / f"epoch_{epoch + 1:04d}.npy", (samples[:64].numpy() * 255).round().astype(np.uint8))
        if (epoch + 1) % g.every and epoch + 1 != trainer.epochs:
            row[f"{self.prefix}/gen_fd"] = math.nan  # not scored: cannot become the best checkpoint
            return
        if not torch.isfinite(samples).all():
            for name in EPOCH_METRICS:
                row[f"{self.prefix}/gen_{name}"] = math.nan
            return
        m = self.evaluator.evaluate(samples, details=False)
        for name in EPOCH_METRICS:
            if name in m:
                row[f"{self.prefix}/gen_{name}"] = float(m[name])


# -- figures ----------------------------------------------------------------------------------
def _grid_array(images01: torch.Tensor, nrow: int, pad: int = 2) -> np.ndarray:
    x = images01.numpy() if isinstance(images01, torch.Tensor) else images01
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    n, c, h, w = x.shape
    ncol = int(math.ceil(n / nrow))
    grid = np.ones((c, ncol * (h + pad) + pad, nrow * (w + pad) + pad), dtype=np.float32)
    for i in range(n):
        r, q = divmod(i, nrow)
        grid[:, pad + r * (h + pad): pad + r * (h + pad) + h, pad + q * (w + pad): pad + q * (w + pad) + w] = x[i]
    return grid[0] if c == 1 else grid.transpose(1, 2, 0)


def save_grid(images01: torch.Tensor, path: str | Path, *, nrow: int = 8) -> Path:
    """A PNG grid of images in [0, 1] (``nrow`` per row), written with Pillow."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = (np.clip(_grid_array(images01, nrow), 0, 1) * 255).round().astype(np.uint8)
    Image.fromarray(arr).save(path)
    return path


def _labelled_rows(rows: list[tuple[str, torch.Tensor | np.ndarray]], path: Path, title: str, nrow: int) -> Path:
    from reprlab.reporting.style import new_figure, save_figure, style_context

    with style_context():
        fig = new_figure(width=7.0, height=0.9 * len(rows) + 0.6)
        for i, (label, imgs) in enumerate(rows):
            ax = fig.add_subplot(len(rows), 1, i + 1)
            ax.imshow(_grid_array(imgs, nrow), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
        fig.suptitle(title, fontsize=10)
        return save_figure(fig, path)


def plot_gan_curves(history: list[dict[str, Any]], path: Path) -> Path | None:
    """Losses, D(x) and D(G(z)), and the per-epoch Fréchet distance against epoch."""
    from reprlab.reporting.style import color, new_figure, save_figure, style_context

    epochs = [r.get("epoch", i + 1) for i, r in enumerate(history)]
    panels = [("losses", ("train/d_loss", "train/g_loss", "val/d_loss", "val/g_loss")),
              ("D(x) and D(G(z))", ("train/d_real", "train/d_fake", "val/d_real", "val/d_fake")),
              ("Fréchet distance (features)", ("val/gen_fd", "train/gen_fd"))]
    panels = [(t, [k for k in keys if any(k in r for r in history)]) for t, keys in panels]
    panels = [(t, keys) for t, keys in panels if keys]
    if not panels:
        return None
    with style_context():
        fig = new_figure(width=7.0, height=2.4)
        for i, (title, keys) in enumerate(panels):
            ax = fig.add_subplot(1, len(panels), i + 1)
            for j, key in enumerate(keys):
                ys = [float(r.get(key, math.nan)) for r in history]
                ax.plot(epochs, ys, marker="o", ms=3, color=color(j), ls="--" if key.startswith("val/") else "-",
                        label=key)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("epoch")
            ax.legend(fontsize=6)
        return save_figure(fig, path)


# -- the final evaluation ---------------------------------------------------------------------
def generation_report(cfg: Any, model: Any, splits: Splits, run_dir: str | Path, *,
                      history: list[dict[str, Any]] | None = None, figures: bool = True) -> tuple[dict[str, float], list]:
    """Score ``model``'s samples against ``splits.test`` and write ``RUN_DIR/generation/`` (figures, index.json).

    Returns ``(metrics, failures)`` with metrics named ``test/<name>``.
    """
    require_generative(model)
    g = cfg.generation
    out = Path(run_dir) / "generation"
    out.mkdir(parents=True, exist_ok=True)
    net = _feature_net(cfg, splits.train, Path(run_dir))
    test = splits.test
    if cfg.eval.max_images is not None and len(test) > cfg.eval.max_images:
        test = test.subset(torch.arange(cfg.eval.max_images))
    evaluator = GenerationEvaluator(net, test, train=splits.train, k=g.k, kid_subsets=g.kid_subsets, seed=cfg.seed,
                                    max_real=None)
    z = fixed_noise(model, g.n_samples, cfg.seed + 202)
    samples = decode01(model, z)
    if not torch.isfinite(samples).all():
        raise DataError("the generator produced non-finite images", fix="the run diverged; see the failure diagnosis")
    m = evaluator.evaluate(samples)
    metrics = {f"test/{k}": float(m[k]) for k in FINAL_METRICS if k in m}
    metrics["test/num_samples"] = int(len(samples))
    failures = detect_failures(history or [], patience=g.patience, d_loss_floor=g.d_loss_floor,
                               d_fake_floor=g.d_fake_floor, diversity_floor=g.diversity_floor)
    for f in failures:
        metrics[f"gan/{f.kind}_epoch"] = int(f.epoch)
    details = {"metrics": m, "feature_net": read_json(out / "feature_net.json") if (out / "feature_net.json").exists()
               else {}, "failures": [f.to_dict() for f in failures], "n_samples": len(samples),
               "reference": f"test split ({len(test)} images)"}
    write_json(out / "metrics.json", details)
    np.savez_compressed(out / "samples.npz", images=(samples[:256].numpy() * 255).round().astype(np.uint8),
                        noise=z[:256].numpy())
    items: list[dict[str, Any]] = []
    for f in failures:
        items.append({"key": f"generation:failure:{f.kind}", "kind": "diagnosis", "title": f"GAN failure: {TITLES[f.kind]}",
                      "caption": f"from epoch {f.epoch}: {f.message}. Advice: {f.advice}", "files": []})
    if figures:
        name = getattr(model, "registry_name", "model")
        save_grid(samples[:64], out / "samples.png")
        shares = m.get("class_shares")
        cap = (f"64 of {len(samples)} samples from fixed noise; FD {m['fd']:.3g}, KID {m['kid']:.3g}, precision "
               f"{m['precision']:.2f}, recall {m['recall']:.2f}")
        if shares:
            cap += (f", max class share {max(shares):.2f} (the real test images, same classifier: "
                    f"{m['real_max_class_share']:.2f})")
        items.append({"key": "generation:samples", "kind": "samples", "title": "Samples", "caption": f"{name}: {cap}",
                      "files": ["samples.png"]})
        snaps = sorted((out / "snapshots").glob("epoch_*.npy"))
        if snaps:
            pick = sorted({snaps[int(round(i))] for i in np.linspace(0, len(snaps) - 1, min(g.snapshots, len(snaps)))})
            rows = [(f"epoch {int(p.stem.split('_')[1])}", np.load(p)[:16]) for p in pick]
            _labelled_rows(rows, out / "progress.png", "The same 16 noise vectors across training", nrow=16)
            items.append({"key": "generation:progress", "kind": "progress", "title": "Samples across training",
                          "caption": "fixed noise decoded after each shown epoch", "files": ["progress.png"]})
        zi = fixed_noise(model, 12, cfg.seed + 303)
        t = torch.linspace(0, 1, 10)[:, None]
        rows = [(f"pair {i + 1}", decode01(model, (1 - t) * zi[2 * i] + t * zi[2 * i + 1])) for i in range(6)]
        _labelled_rows(rows, out / "interpolation.png", "Linear interpolation between two noise vectors", nrow=10)
        items.append({"key": "generation:interpolation", "kind": "interpolation", "title": "Interpolation in the noise space",
                      "caption": "each row: 10 steps from one prior draw to another", "files": ["interpolation.png"]})
        if int(model.config.latent_dim) >= 2:
            base = fixed_noise(model, 1, cfg.seed + 404)
            vals = torch.linspace(-2.5, 2.5, 7)
            zs = base.repeat(49, 1)
            zs[:, 0] = vals.repeat_interleave(7)
            zs[:, 1] = vals.repeat(7)
            save_grid(decode01(model, zs), out / "grid2d.png", nrow=7)
            items.append({"key": "generation:grid2d", "kind": "traversal", "title": "2-D grid over noise dimensions 0 and 1",
                          "caption": "rows: dimension 0 from -2.5 to 2.5; columns: dimension 1; other entries fixed",
                          "files": ["grid2d.png"]})
        if history and plot_gan_curves(history, out / "curves.png") is not None:
            items.append({"key": "generation:curves", "kind": "curves", "title": "Discriminator and generator",
                          "caption": "losses, mean D(x) and D(G(z)) (sigmoid of the logits), per-epoch Fréchet "
                                     "distance on the fixed noise batch", "files": ["curves.png"]})
        d, idx = evaluator.nearest_training(samples)
        order = torch.argsort(d)[:12]
        pairs = [("sample", samples[order]), ("nearest train", evaluator.train_images[idx[order]])]
        _labelled_rows(pairs, out / "nearest_training.png", "Closest samples and their nearest training images "
                       "(feature space)", nrow=12)
        items.append({"key": "generation:memorisation", "kind": "memorisation", "title": "Memorisation check",
                      "caption": f"the 12 samples closest to a training image, above it; median distance ratio "
                                 f"sample/test {m.get('memorisation_ratio', math.nan):.3g} (1: like new real images; "
                                 f"much below 1: copies), share closer than the 5th percentile of test images "
                                 f"{m.get('memorised_share', math.nan):.3g} (about 0.05 expected)",
                      "files": ["nearest_training.png"]})
    write_json(out / "index.json", {"items": items, "skipped": [], "n_samples": len(samples)})
    return metrics, failures


@register_task("generate")
class GenerateTask(Task):
    """Generate images: best checkpoint by the feature Fréchet distance of a fixed noise batch."""

    description = "generative models (dcgan, vae): samples scored on an offline feature network"
    monitor = "val/gen_fd"
    mode = "min"
    headline = ("test/fd", "test/kid", "test/precision", "test/recall", "test/coverage")

    def check(self, cfg: Any, model: Any, splits: Splits) -> None:
        require_generative(model, cfg.model["name"])
        if len(splits.train) < cfg.train.batch_size:
            raise ConfigError(f"the training split has {len(splits.train)} images, fewer than one batch of "
                              f"train.batch_size={cfg.train.batch_size}",
                              fix=f"lower train.batch_size to at most {len(splits.train)} or use more images")
        if len(splits.train) % cfg.train.batch_size == 1 and getattr(model, "has_prior", False):
            raise ConfigError(f"{len(splits.train)} training images leave a last batch of 1 image, which batch norm "
                              f"cannot train on", fix="change train.batch_size by one or data.max_train")
        _check_feature_recipe(cfg, splits.train)

    def callbacks(self, cfg: Any, splits: Splits, run: Any, device: Any) -> list[Callback]:
        return [GenerationMonitor(cfg, splits, run.path if run is not None else None)]

    def score(self, cfg: Any, model: Any, test: Any, device: Any, *, max_images: int | None = None) -> dict[str, float]:
        return score_generation(cfg, model, test, max_images=max_images)

    def evaluate(self, ctx: PostRunContext, history: list[dict[str, float]]) -> dict[str, float]:
        if ctx.cfg.eval.figures and history:
            from reprlab.reporting.figures import plot_loss_curves

            plot_loss_curves(history, ctx.run.figures / "loss_curves.png")
        metrics, _ = generation_report(ctx.cfg, ctx.model, ctx.splits, ctx.run.path, history=history,
                                       figures=ctx.cfg.eval.figures)
        return metrics

    def summary(self, metrics: dict[str, float]) -> str:
        text = super().summary(metrics)
        found = [k for k in metrics if k.startswith("gan/") and k.endswith("_epoch")]
        for key in sorted(found, key=lambda k: metrics[k]):
            kind = key[len("gan/"):-len("_epoch")]
            text += f"  GAN FAILURE: {TITLES.get(kind, kind)} from epoch {int(metrics[key])} (see status.json)"
        return text

    def status(self, metrics: dict[str, float], run: Any = None) -> dict[str, Any]:
        """Extra ``status.json`` fields: the detected failures with epoch and advice."""
        if run is None:
            return {}
        try:
            details = read_json(Path(run.path) / "generation" / "metrics.json")
        except (OSError, ValueError):
            return {}
        return {"failures": details.get("failures", [])} if details.get("failures") else {}


def score_generation(cfg: Any, model: Any, test: ImageData, *, max_images: int | None = None,
                     n_samples: int | None = None) -> dict[str, float]:
    """``test/*`` generation metrics of ``model`` against ``test`` (the feature network from the cache)."""
    require_generative(model)
    g = cfg.generation
    train = prepare_data(cfg).train
    if tuple(test.shape) != tuple(train.shape):
        raise ConfigError(f"the evaluation images have shape {test.shape} but the model generates {train.shape}",
                          fix="evaluate on data of the run's size")
    net = _feature_net(cfg, train, None)
    if max_images is not None and len(test) > max_images:
        test = test.subset(torch.arange(max_images))
    evaluator = GenerationEvaluator(net, test, train=train, k=g.k, kid_subsets=g.kid_subsets, seed=cfg.seed,
                                    max_real=None)
    samples = decode01(model, fixed_noise(model, n_samples or g.n_samples, cfg.seed + 202))
    m = evaluator.evaluate(samples)
    out = {f"test/{k}": float(m[k]) for k in FINAL_METRICS if k in m}
    out["test/num_samples"] = int(len(samples))
    return out


def evaluate_generation(run_dir: str | Path, *, tag: str = "best", n_samples: int | None = None,
                        device: str = "auto", data_dir: str | None = None,
                        max_images: int | None = None) -> dict[str, float]:
    """Generation metrics of any run with a generative model (a GAN, or a VAE trained to reconstruct).

    Raises :class:`ConfigError` for a plain autoencoder.

    Example:
        >>> evaluate_generation("runs/vae-fashion-mnist")  # doctest: +SKIP
        {'test/fd': 12.3, 'test/kid': 4.1, ...}
    """
    from reprlab.base.plugins import load_plugins
    from reprlab.config import RunConfig

    run = RunDir.open(run_dir, kinds=("train",), command="evaluate")
    load_plugins()
    cfg = RunConfig.from_yaml(run.path / "config.yaml")
    if data_dir is not None:
        cfg.data.data_dir = data_dir
    model = load_run_model(run.path, tag)
    require_generative(model, cfg.model.get("name"))
    dev = resolve_device(device)
    model = model.to(dev)
    test = prepare_data(cfg).test
    return score_generation(cfg, model, test, max_images=max_images or cfg.eval.max_images, n_samples=n_samples)
