"""Analysis step kinds of the recipes: computations on finished runs that are not runs themselves.

* ``anomaly``: the one-class protocol on trained autoencoders: AUROC of the reconstruction error, of the
  distance to the nearest k-means centre and of the PCA reconstruction error of the codes; score histograms,
  best and worst reconstructions, PCA projections of the test images and of the codes.
* ``embed_cluster``: encode a split, reduce (e.g. kernel PCA then t-SNE to 2-D), k-means; clustering accuracy,
  NMI and the reconstruction MSE on that split (also in the [-1, 1] pixel range); the 2-D embedding by label.
* ``recon_pairs``: originals over reconstructions for chosen images of a split, with their MSE.
* ``latent_noise``: Gaussian noise of several scales on the codes, decoded side by side.

Each reuses the capabilities (anomaly scores and plots, clustering metrics, feature embeddings, analysis
plots); none trains a model.

Example:
    >>> from reprlab.experiments.recipes.steps import list_steps
    >>> {"anomaly", "embed_cluster", "recon_pairs", "latent_noise"} <= set(list_steps())
    True
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reprlab.base.errors import ConfigError
from reprlab.base.validation import check_int
from reprlab.experiments.recipes.spec import Recipe, StepSpec
from reprlab.experiments.recipes.steps import StepContext, StepKind, StepOutput, register_step, run_dir_of

logger = logging.getLogger(__name__)


def run_parts(run_dir: str | Path) -> tuple[Any, Any, torch.nn.Module]:
    """``(config, splits, model)`` of a finished run: its own seeded splits and its best model (CPU, eval)."""
    from reprlab.experiments.train import as_config
    from reprlab.runs import load_run_model
    from reprlab.tasks import get_task

    cfg = as_config(Path(run_dir) / "config.yaml")
    splits = get_task(cfg.task).prepare_data(cfg)
    model = load_run_model(run_dir).cpu().eval()
    return cfg, splits, model


def _runs(spec: StepSpec) -> list[str]:
    runs = spec.options.get("runs")
    if not isinstance(runs, list) or not runs or not all(isinstance(r, str) for r in runs):
        raise ConfigError(f"steps.{spec.name}.runs must be a list of train steps, got {runs!r}", fix="e.g. runs: [fc, conv]")
    return runs


def _split(splits: Any, name: str) -> Any:
    data = {"train": splits.train, "val": splits.val, "test": splits.test}.get(name)
    if data is None:
        raise ConfigError(f"split {name!r} is not available for this run", fix="use train, val (when val_fraction > 0) or test")
    return data


def _file(ref: str) -> str:
    return ref.replace(":", "-")


def _limit(data: Any, n: int | None, seed: int = 0) -> Any:
    if n is None or len(data) <= n:
        return data
    idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return data.subset(idx)


class _RunsAnalysis(StepKind):
    """An analysis of the runs named in ``runs``: train steps, or ``STEP:VARIANT`` of a variants step."""

    def refs(self, spec: StepSpec) -> list[str]:
        return list(dict.fromkeys(r.partition(":")[0] for r in _runs(spec)))

    def check(self, spec: StepSpec, recipe: Recipe) -> set[str] | None:
        self.check_options(spec)
        runs = _runs(spec)
        for r in runs:
            step, _, variant = r.partition(":")
            want = "variants" if variant else "train"
            if step in recipe.steps and recipe.steps[step].kind != want:
                raise ConfigError(f"steps.{spec.name}.runs: step {step!r} is a {recipe.steps[step].kind!r} step, not {want}",
                                  fix="name train steps, or STEP:VARIANT of a variants step")
            if variant and step in recipe.steps and variant not in (recipe.steps[step].options.get("variants") or {}):
                raise ConfigError(f"steps.{spec.name}.runs: step {step!r} has no variant {variant!r}",
                                  fix=f"use one of {list(recipe.steps[step].options.get('variants') or {})}")
        return {f"{r}/{m}" for r in runs for m in self.metric_names(spec)}

    def metric_names(self, spec: StepSpec) -> list[str]:
        return []


@register_step("anomaly")
class AnomalyStep(_RunsAnalysis):
    """One-class anomaly scores of each run in ``runs`` (trained on ``normal_class``): metrics ``RUN/auroc_recon``,
    ``RUN/auroc_kmeans{k}`` for k in ``kmeans``, ``RUN/auroc_pca{n}`` for n in ``pca``; ``max_test`` caps the
    scored test images."""

    options = frozenset({"runs", "normal_class", "kmeans", "pca", "max_test"})

    def metric_names(self, spec: StepSpec) -> list[str]:
        return (["auroc_recon"] + [f"auroc_kmeans{k}" for k in spec.options.get("kmeans", [3, 5])]
                + [f"auroc_pca{n}" for n in spec.options.get("pca", [2, 3])])

    def check(self, spec: StepSpec, recipe: Recipe) -> set[str] | None:
        if not isinstance(spec.options.get("normal_class"), int):
            raise ConfigError(f"steps.{spec.name}.normal_class must be a class index", fix="e.g. normal_class: 0")
        for k in spec.options.get("kmeans", [3, 5]):
            check_int(f"steps.{spec.name}.kmeans", k, minimum=1)
        for n in spec.options.get("pca", [2, 3]):
            check_int(f"steps.{spec.name}.pca", n, minimum=1)
        return super().check(spec, recipe)

    def run(self, spec: StepSpec, ctx: StepContext) -> StepOutput:
        from reprlab.capabilities.analysis.plots import plot_embedding
        from reprlab.capabilities.anomaly import (
            KMeansScorer,
            PCAScorer,
            auroc,
            latent_codes,
            reconstruction_error,
        )
        from reprlab.capabilities.anomaly.plots import (
            plot_extremes,
            plot_score_histograms,
        )
        from reprlab.features.embeddings import reduce

        normal = int(spec.options["normal_class"])
        out = StepOutput()
        names = {0: "normal", 1: "anomaly"}
        for i, r in enumerate(_runs(spec)):
            cfg, splits, model = run_parts(run_dir_of(ctx, r))
            test = _limit(splits.test, spec.options.get("max_test"), cfg.seed)
            y = (test.labels != normal).numpy().astype(int)
            train = splits.train.subset(torch.nonzero(splits.train.labels == normal).flatten())
            x = test.float01()
            mse = reconstruction_error(model, x)
            out.metrics[f"{r}/auroc_recon"] = auroc(y, mse)
            z_train, z_test = latent_codes(model, train.float01()), latent_codes(model, x)
            for k in spec.options.get("kmeans", [3, 5]):
                out.metrics[f"{r}/auroc_kmeans{k}"] = auroc(y, KMeansScorer(n_clusters=int(k), random_state=cfg.seed).fit(z_train).score(z_test))
            for n in spec.options.get("pca", [2, 3]):
                n = min(int(n), z_train.shape[1])
                out.metrics[f"{r}/auroc_pca{n}"] = auroc(y, PCAScorer(n_components=n, random_state=cfg.seed).fit(z_train).score(z_test))
            plot_score_histograms(mse, y, ctx.step_dir / f"{_file(r)}_histogram.png", title=f"{r}: reconstruction MSE",
                                  score_label="reconstruction MSE")
            order = np.argsort(mse)
            chosen = np.concatenate([order[:2], order[-2:]])
            with torch.no_grad():
                rec = model(x[chosen]).reconstruction
            rec01 = (rec + 1) / 2 if cfg.data.scale == "-1_1" else rec
            plot_extremes(x[chosen], [float(mse[j]) for j in chosen], ctx.step_dir / f"{_file(r)}_extremes.png",
                          reconstructions01=rec01.clamp(0, 1), titles=["best", "2nd best", "2nd worst", "worst"],
                          suptitle=f"{r}: best and worst reconstructions (MSE)")
            plot_embedding(reduce(z_test, "pca", 2), ctx.step_dir / f"{_file(r)}_codes_pca.png", labels=y, label_names=names,
                           title=f"{r}: codes of the test images (PCA)", axis_name="PC")
            if i == 0:
                plot_embedding(reduce(x.flatten(1).numpy(), "pca", 2), ctx.step_dir / "images_pca.png", labels=y,
                               label_names=names, title="test images (PCA of the pixels)", axis_name="PC")
                out.figures.append(("test images, PCA", "images_pca.png"))
            out.figures += [(f"{r}: score histogram", f"{_file(r)}_histogram.png"), (f"{r}: best / worst", f"{_file(r)}_extremes.png"),
                            (f"{r}: codes, PCA", f"{_file(r)}_codes_pca.png")]
        return out


@register_step("embed_cluster")
class EmbedClusterStep(_RunsAnalysis):
    """Encode ``split`` (default val) of each run, reduce through ``chain`` (default kpca 50 -> tsne 2), k-means
    with ``n_clusters``. Metrics ``RUN/cluster_acc``, ``RUN/nmi``, ``RUN/mse`` (model range), ``RUN/mse_pm1``
    (images in [-1, 1]); figure: the 2-D embedding coloured by label."""

    options = frozenset({"runs", "split", "chain", "n_clusters", "max_points"})

    def metric_names(self, spec: StepSpec) -> list[str]:
        return ["cluster_acc", "nmi", "mse", "mse_pm1"]

    def check(self, spec: StepSpec, recipe: Recipe) -> set[str] | None:
        from reprlab.features.embeddings import METHODS

        for link in self._chain(spec):
            if link[0] not in METHODS:
                raise ConfigError(f"steps.{spec.name}.chain: {link[0]!r} is not a reducer", fix=f"choose from {list(METHODS)}")
        return super().check(spec, recipe)

    @staticmethod
    def _chain(spec: StepSpec) -> list[tuple[str, int]]:
        chain = spec.options.get("chain", [["kpca", 50], ["tsne", 2]])
        try:
            return [(str(m), int(n)) for m, n in chain]
        except (TypeError, ValueError):
            raise ConfigError(f"steps.{spec.name}.chain must be a list of [method, n_components]",
                              fix="e.g. chain: [[kpca, 50], [tsne, 2]]") from None

    def run(self, spec: StepSpec, ctx: StepContext) -> StepOutput:
        from sklearn.cluster import KMeans

        from reprlab.capabilities.analysis.plots import plot_embedding
        from reprlab.capabilities.anomaly import reconstruction_error
        from reprlab.capabilities.clustering import cluster_accuracy, nmi
        from reprlab.features.embeddings import Reducer, encode_dataset

        out = StepOutput()
        for r in _runs(spec):
            cfg, splits, model = run_parts(run_dir_of(ctx, r))
            data = _limit(_split(splits, spec.options.get("split", "val")), spec.options.get("max_points"), cfg.seed)
            X = encode_dataset(model, data)
            for method, n in self._chain(spec):
                X = Reducer(method, min(n, X.shape[1], len(X) - 1), random_state=cfg.seed).fit_transform(X)
            k = int(spec.options.get("n_clusters", 10))
            pred = KMeans(n_clusters=k, n_init=10, random_state=cfg.seed).fit_predict(X)
            labels = data.labels.numpy()
            out.metrics[f"{r}/cluster_acc"] = cluster_accuracy(labels, pred)
            out.metrics[f"{r}/nmi"] = nmi(labels, pred)
            mse01 = float(reconstruction_error(model, data.float01()).mean())
            out.metrics[f"{r}/mse_pm1"] = 4.0 * mse01  # (2a-1 - (2b-1))^2 = 4 (a-b)^2
            out.metrics[f"{r}/mse"] = out.metrics[f"{r}/mse_pm1"] if cfg.data.scale == "-1_1" else mse01
            plot_embedding(X[:, :2], ctx.step_dir / f"{_file(r)}_embedding.png", labels=labels,
                           label_names=data.class_names, title=f"{r}: " + " → ".join(m for m, _ in self._chain(spec)))
            out.figures.append((f"{r}: 2-D embedding by label", f"{_file(r)}_embedding.png"))
        return out


@register_step("recon_pairs")
class ReconPairsStep(_RunsAnalysis):
    """Originals over reconstructions of the images ``indices`` of ``split`` (default train) for each run;
    metric ``RUN/mse`` (their mean MSE, images in [0, 1])."""

    options = frozenset({"runs", "split", "indices"})

    def metric_names(self, spec: StepSpec) -> list[str]:
        return ["mse"]

    def run(self, spec: StepSpec, ctx: StepContext) -> StepOutput:
        from reprlab.capabilities.analysis.plots import plot_image_grid
        from reprlab.capabilities.anomaly import reconstruction_error

        out = StepOutput()
        for r in _runs(spec):
            cfg, splits, model = run_parts(run_dir_of(ctx, r))
            data = _split(splits, spec.options.get("split", "train"))
            idx = [int(i) for i in spec.options.get("indices", [1, 2, 3, 6, 7, 9]) if int(i) < len(data)]
            x = data.float01(torch.as_tensor(idx))
            mse = reconstruction_error(model, x)
            with torch.no_grad():
                rec = model(x).reconstruction
            rec = ((rec + 1) / 2 if cfg.data.scale == "-1_1" else rec).clamp(0, 1)
            out.metrics[f"{r}/mse"] = float(mse.mean())
            plot_image_grid(torch.cat([x, rec]), ctx.step_dir / f"{_file(r)}_pairs.png", ncols=len(idx),
                            row_labels=["original", "reconstruction"], col_labels=[f"#{i}\n{m:.4f}" for i, m in zip(idx, mse)],
                            title=f"{r}: {spec.options.get('split', 'train')} images")
            out.figures.append((f"{r}: originals over reconstructions", f"{_file(r)}_pairs.png"))
        return out


@register_step("latent_noise")
class LatentNoiseStep(_RunsAnalysis):
    """Gaussian noise of each scale in ``scales`` (relative to each code dimension's spread) on the codes of the
    first ``n_images`` test images of each run, decoded side by side. Metrics ``RUN/noise_mse_S``."""

    options = frozenset({"runs", "scales", "n_images"})

    def metric_names(self, spec: StepSpec) -> list[str]:
        return [f"noise_mse_{s:g}" for s in spec.options.get("scales", [0.0, 0.5, 1.0, 2.0])]

    def run(self, spec: StepSpec, ctx: StepContext) -> StepOutput:
        from reprlab.capabilities.analysis import latent_noise_robustness
        from reprlab.capabilities.analysis.plots import plot_robustness_examples

        out = StepOutput()
        scales = [float(s) for s in spec.options.get("scales", [0.0, 0.5, 1.0, 2.0])]
        for r in _runs(spec):
            cfg, splits, model = run_parts(run_dir_of(ctx, r))
            x = splits.test.float01(slice(0, min(len(splits.test), 200)))
            res = latent_noise_robustness(model, x, scales=scales, k=int(spec.options.get("n_images", 6)),
                                          generator=torch.Generator().manual_seed(cfg.seed))
            for s, m in zip(scales, res.mse):
                out.metrics[f"{r}/noise_mse_{s:g}"] = float(m)
            plot_robustness_examples(res, ctx.step_dir / f"{_file(r)}_latent_noise.png", title=f"{r}: noise on the codes")
            out.figures.append((f"{r}: Gaussian noise on the codes", f"{_file(r)}_latent_noise.png"))
        return out


__all__ = ["AnomalyStep", "EmbedClusterStep", "LatentNoiseStep", "ReconPairsStep", "run_parts"]
