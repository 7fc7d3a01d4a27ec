"""Cluster a run's embeddings: :func:`cluster_run` and :func:`checkpoint_curve`.

:func:`cluster_run` loads a run's model (checkpoint ``best`` by default) and data (the
run's own config and seeded splits), encodes a split, clusters the codes with an
:class:`~reprlab.capabilities.clustering.estimator.EmbeddingClusterer` and writes::

    RUN_DIR/clustering/
        metrics.json            acc, nmi (arithmetic), ari (when labels exist), silhouette, bic, options, timings
        assignments.csv         index within the split, true label (if any), cluster
        confusion.png           classes x clusters, matched clusters on the diagonal (labels only)
        scatter.png             2-D view of the embedding by cluster (and by class)
        k_selection.png         the label-free criterion over k (n_clusters="auto" only)
        checkpoint_curve.csv/png  from checkpoint_curve
        index.json              what is there, read by the run report

It also adds ``cluster/*`` keys to the run's ``metrics.json`` and refreshes an existing
``report.html``. Labels are never used to fit anything; they only score.

:func:`checkpoint_curve` repeats the clustering for every ``epoch_NNNN`` checkpoint: the
training-set reconstruction MSE (per pixel, images in [0, 1]) against the validation
clustering accuracy, one point per checkpoint, to show when a lower MSE stops helping.

Example:
    >>> from reprlab.capabilities.clustering import cluster_run, checkpoint_curve
    >>> m = cluster_run("runs/conv_ae-fashion-mnist-20261123-101500", n_clusters=10)  # doctest: +SKIP
    >>> round(m["acc"], 3), round(m["nmi"], 3)  # doctest: +SKIP
    (0.62, 0.61)
    >>> rows = checkpoint_curve("runs/conv_ae-fashion-mnist-20261123-101500")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import logging
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from reprlab.base.errors import ConfigError, DataError, ReprlabError, RunDirError
from reprlab.base.io import read_json, write_json, write_text
from reprlab.base.validation import check_choice, check_int
from reprlab.capabilities.clustering.config import (DEFAULT_N_CLUSTERS, FEATURE_NAMES, FEATURES, MODEL_FREE_FEATURES,
                                                    SPLITS)
from reprlab.capabilities.clustering.estimator import EmbeddingClusterer
from reprlab.capabilities.clustering.metrics import NMI_NORMALISATION, aligned_confusion_matrix, clustering_scores
from reprlab.capabilities.clustering.plots import plot_checkpoint_curve, plot_cluster_scatter, plot_confusion, plot_k_selection
from reprlab.config import RunConfig
from reprlab.data.dataset import ImageData
from reprlab.evaluation.reconstruction import reconstruct01
from reprlab.features.descriptors import as_images01, image_descriptors
from reprlab.features.embeddings import encode_dataset
from reprlab.models import load_model
from reprlab.reporting.report import index_sections, write_report
from reprlab.runs import RunDir, prepare_data, resolve_device
from reprlab.training.checkpoint import resolve_checkpoint

logger = logging.getLogger(__name__)

__all__ = ["FEATURES", "SPLITS", "balanced_concat", "checkpoint_curve", "cluster_codes", "cluster_run",
           "clustering_features", "report_sections", "resolve_n_clusters", "scattering_features", "select_split"]

# FEATURES (what is clustered: the model's codes, blocks of codes, pixels and HOG descriptors of the
# images, each block standardised and weighted equally (:func:`balanced_concat`), or the compressed
# wavelet-scattering coefficients of the images (:func:`scattering_features`)) and SPLITS live in .config.
#: Principal components kept by :func:`scattering_features`.
SCATTERING_COMPONENTS = 256
OUT_DIR = "clustering"
#: Points drawn in the scatter figure at most (a seeded subsample).
SCATTER_POINTS = 6000
_CKPT = re.compile(r"^epoch_(\d+)$")
#: Images per step of the slow per-image parts (encoding, scattering); progress is shown per step.
PROGRESS_CHUNK = 5000


def _chunks(n: int, what: str) -> Iterator[slice]:
    """Slices over ``n`` images, ``PROGRESS_CHUNK`` at a time, showing progress when there is more than one:
    a tqdm bar on a terminal, else an INFO line per step; nothing when INFO is off (``--quiet``)."""
    show = n > PROGRESS_CHUNK and logger.isEnabledFor(logging.INFO)
    bar = None
    if show and sys.stderr.isatty():
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc=what, unit="img", leave=False, dynamic_ncols=True)
    t0 = time.perf_counter()
    for start in range(0, n, PROGRESS_CHUNK):
        stop = min(start + PROGRESS_CHUNK, n)
        yield slice(start, stop)
        if bar is not None:
            bar.update(stop - start)
        elif show:
            logger.info("%s: %s/%s images (%.0f s)", what, f"{stop:,}", f"{n:,}", time.perf_counter() - t0)
    if bar is not None:
        bar.close()


def _encode(model: Any, data: ImageData, batch_size: int, device: torch.device, what: str) -> np.ndarray:
    """:func:`encode_dataset` in :func:`_chunks` (so a long encoding shows progress)."""
    return np.concatenate([encode_dataset(model, data.subset(torch.arange(s.start, s.stop)), batch_size=batch_size,
                                          device=device) for s in _chunks(len(data), what)])


# ----------------------------------------------------------------------------------------
# data and model
# ----------------------------------------------------------------------------------------
def _concat(parts: list) -> Any:

    parts = [p for p in parts if p is not None]
    if len(parts) == 1:
        return parts[0]
    same = all(p.images.dtype == parts[0].images.dtype for p in parts)
    images = torch.cat([p.images if same else p.float01() for p in parts])
    labels = torch.cat([p.labels for p in parts]) if all(p.labels is not None for p in parts) else None
    return ImageData(images, labels, parts[0].name, parts[0].source, parts[0].class_names, dict(parts[0].meta))


def select_split(splits: Any, split: str, *, max_points: int | None = None, seed: int = 0) -> Any:
    """The images of ``split`` (``train``, ``val``, ``test`` or ``all`` = the three together).

    ``max_points`` keeps a seeded random subset. Raises :class:`ConfigError` for an
    unknown split or a run without validation images asked for ``val``.

    Example:
        >>> import torch
        >>> from reprlab.runs import Splits
        >>> from reprlab.data.dataset import ImageData
        >>> s = Splits(ImageData(torch.zeros(5, 1, 4, 4)), None, ImageData(torch.zeros(3, 1, 4, 4)))
        >>> len(select_split(s, "all")), len(select_split(s, "all", max_points=4))
        (8, 4)
    """

    check_choice("split", split, SPLITS)
    if max_points is not None:
        check_int("max_points", max_points, minimum=2)
    if split == "all":
        data = _concat([splits.train, splits.val, splits.test])
    else:
        data = getattr(splits, split)
        if data is None:
            raise ConfigError(f"split={split!r} but the run has no validation images (data.val_fraction=0)",
                              fix="use split='train', 'test' or 'all'")
    return _subsample(data, max_points, seed)[0]


def _subsample(data: Any, max_points: int | None, seed: int) -> tuple[Any, np.ndarray]:
    """A seeded random subset of at most ``max_points`` images (in their original order) and its indices."""
    if max_points is None or max_points >= len(data):
        return data, np.arange(len(data))
    keep = torch.randperm(len(data), generator=torch.Generator().manual_seed(int(seed)))[:max_points].sort().values
    return data.subset(keep), keep.numpy()


def _run_context(run_dir: str | Path, data_dir: str | None) -> tuple[Any, Any]:

    run = RunDir.open(run_dir, kinds=("train",), command="cluster")
    cfg = RunConfig.from_yaml(run.path / "config.yaml")
    if data_dir is not None:
        cfg.data.data_dir = data_dir
    return run, cfg


def _device(device: str | torch.device) -> torch.device:

    return device if isinstance(device, torch.device) else resolve_device(str(device))


# ----------------------------------------------------------------------------------------
# clustering codes
# ----------------------------------------------------------------------------------------
def cluster_codes(codes: np.ndarray, labels: Any = None, **options: Any) -> tuple[EmbeddingClusterer, dict[str, Any]]:
    """Fit an :class:`EmbeddingClusterer` on ``codes`` and score it; returns ``(estimator, metrics)``.

    ``metrics`` has the label-free ``silhouette`` (and ``bic`` for mixtures), ``n_clusters``,
    ``cpu_seconds`` and, when ``labels`` has at least two classes, ``acc``, ``nmi`` and ``ari``.

    Example:
        >>> import numpy as np
        >>> X = np.r_[np.zeros((20, 3)), np.ones((20, 3)) * 5] + np.random.default_rng(0).normal(0, .2, (40, 3))
        >>> est, m = cluster_codes(X, [0] * 20 + [1] * 20, reducer="none", clusterer="kmeans", n_clusters=2)
        >>> m["acc"], m["n_clusters"]
        (1.0, 2)
    """
    est = EmbeddingClusterer(**options)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    pred = est.fit_predict(codes)
    out: dict[str, Any] = {"n_clusters": int(est.n_clusters_), **{k: float(v) for k, v in est.scores_.items()},
                           "cpu_seconds": round(time.process_time() - cpu0, 2),
                           "wall_seconds": round(time.perf_counter() - wall0, 2)}
    if labels is not None:
        y = np.asarray(labels.detach().cpu().numpy() if hasattr(labels, "detach") else labels).reshape(-1)
        if np.unique(y).size < 2:
            logger.warning("the labels hold a single class: accuracy, NMI and ARI are not computed")
        else:
            out.update({k: v for k, v in clustering_scores(y, pred).items() if k in ("acc", "nmi", "ari", "n_classes")})
            out["nmi_normalisation"] = NMI_NORMALISATION
    return est, out


def resolve_n_clusters(n_clusters: int | str | None, labels: Any, where: str = "images") -> int | str:
    """``n_clusters`` as given, or (``None``) the number of classes in ``labels``, else :data:`DEFAULT_N_CLUSTERS`.

    The labels are only counted, never used to fit. The choice is logged at INFO.

    Example:
        >>> resolve_n_clusters(None, [0, 1, 2, 1]), resolve_n_clusters(None, None), resolve_n_clusters(4, [0, 1])
        (3, 10, 4)
    """
    if n_clusters is not None:
        return n_clusters
    n_classes = 0 if labels is None else int(np.unique(np.asarray(
        labels.detach().cpu().numpy() if hasattr(labels, "detach") else labels)).size)
    if n_classes >= 2:
        logger.info("n_clusters not set: clustering the %s into %d clusters, the number of classes in their labels "
                    "(labels are only counted; set cluster.n_clusters / --n-clusters to change)", where, n_classes)
        return n_classes
    why = "have no labels" if labels is None else "hold a single class"
    logger.info("n_clusters not set and the %s %s: clustering into %d clusters (set cluster.n_clusters / "
                "--n-clusters, or auto, to change)", where, why, DEFAULT_N_CLUSTERS)
    return DEFAULT_N_CLUSTERS


def _estimator_options(**kw: Any) -> dict[str, Any]:
    keys = ("scaling", "reducer", "n_components", "n_neighbors", "min_dist", "perplexity", "clusterer",
            "covariance_type", "linkage", "n_clusters", "criterion", "k_range", "n_init", "max_fit_points",
            "random_state", "n_jobs", "clusterer_options")
    out = {k: kw[k] for k in keys if k in kw and kw[k] is not None}
    if "k_range" in out:
        out["k_range"] = tuple(out["k_range"])
    return out


def _assignments_csv(indices: np.ndarray, labels: np.ndarray | None, pred: np.ndarray) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["index", "label", "cluster"] if labels is not None else ["index", "cluster"])
    for i in range(pred.shape[0]):
        w.writerow([int(indices[i]), int(labels[i]), int(pred[i])] if labels is not None else [int(indices[i]), int(pred[i])])
    return buf.getvalue()


def _scatter_coords(Z: np.ndarray, seed: int) -> tuple[np.ndarray, str]:
    if Z.shape[1] == 2:
        return Z, "component"
    if Z.shape[1] == 1:
        return np.c_[Z, np.zeros_like(Z)], "component"
    from sklearn.decomposition import PCA

    return PCA(n_components=2, random_state=seed).fit_transform(Z), "PC"


def _update_index(out: Path, items: list[dict[str, Any]]) -> None:
    path = out / "index.json"
    try:
        index = read_json(path)
        if not isinstance(index, dict) or not isinstance(index.get("items"), list):
            index = {"items": []}
    except (OSError, ValueError):
        index = {"items": []}
    keys = {i["key"] for i in items}
    index["items"] = [i for i in index["items"] if i.get("key") not in keys] + items
    order = {"clustering:confusion": 0, "clustering:scatter": 1, "clustering:k_selection": 2,
             "clustering:checkpoint_curve": 3}
    index["items"].sort(key=lambda i: order.get(i.get("key"), 9))
    write_json(path, index)


def _merge_run_metrics(run_path: Path, flat: dict[str, float]) -> None:
    path = run_path / "metrics.json"
    if not path.exists():
        return
    try:
        metrics = read_json(path)
    except (OSError, ValueError):
        return
    if isinstance(metrics, dict):
        metrics = {k: v for k, v in metrics.items() if not k.startswith("cluster/")}
        metrics.update(flat)
        write_json(path, metrics)


def _refresh_report(run_path: Path) -> None:
    if not (run_path / "report.html").exists():
        return

    try:
        write_report(run_path)
    except (ReprlabError, OSError) as exc:
        logger.warning("report.html could not be refreshed (%s); run `reprlab report %s`", exc, run_path)


def flat_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The numbers of a clustering ``metrics`` dict as ``cluster/<name>`` keys (for a run's metrics.json).

    Example:
        >>> flat_metrics({"acc": 0.7, "nmi": 0.6, "options": {}, "split": "test"})
        {'cluster/acc': 0.7, 'cluster/nmi': 0.6}
    """
    keys = ("acc", "nmi", "ari", "silhouette", "bic", "n_clusters")
    return {f"cluster/{k}": metrics[k] for k in keys if k in metrics}


# ----------------------------------------------------------------------------------------
# one run
# ----------------------------------------------------------------------------------------
def balanced_concat(*blocks: Any) -> np.ndarray:
    """Concatenate feature blocks, each standardised per feature and scaled to unit total variance.

    So a 324-dim HOG block and a 16-dim code block weigh the same in distances.

    Example:
        >>> z = balanced_concat(np.random.default_rng(0).normal(size=(50, 4)), np.arange(100.0).reshape(50, 2))
        >>> z.shape, round(float(z[:, :4].var(0).sum()), 3), round(float(z[:, 4:].var(0).sum()), 3)
        ((50, 6), 1.0, 1.0)
    """
    out = []
    for block in blocks:
        f = np.asarray(block, dtype=np.float64).reshape(len(block), -1)
        out.append((f - f.mean(0)) / (f.std(0) + 1e-12) / np.sqrt(f.shape[1]))
    return np.concatenate(out, axis=1)


def scattering_features(images: Any, *, n_components: int = SCATTERING_COMPONENTS, random_state: int | None = 0) -> np.ndarray:
    """Label-free image features for clustering: log wavelet-scattering coefficients
    (:func:`~reprlab.features.descriptors.scattering_coefficients`), compressed by PCA to
    ``n_components`` (at most the number of points or coefficients) and rescaled so that
    component ``i`` has standard deviation ``sqrt(std_i)`` (half-way to whitening). On
    Fashion-MNIST this lifts the share of the 20 nearest cosine neighbours with the same
    class from 84.5% (plain PCA) and 85.1% (all coefficients) to 86.1%.

    Example:
        >>> import torch
        >>> scattering_features(torch.rand(40, 1, 28, 28), n_components=8).shape
        (40, 8)
    """
    from sklearn.decomposition import PCA


    check_int("n_components", n_components, minimum=1)
    x = as_images01(images)
    coefficients = np.concatenate([image_descriptors(x[s], "scattering")
                                   for s in _chunks(x.shape[0], "wavelet-scattering coefficients")])
    k = min(int(n_components), *coefficients.shape)
    pca = PCA(n_components=k, svd_solver="randomized" if k < min(coefficients.shape) // 2 else "full",
              random_state=random_state)
    reduced = pca.fit_transform(coefficients)
    return reduced / np.maximum(pca.explained_variance_, 1e-12) ** 0.25


def clustering_features(codes: np.ndarray | None, data: ImageData, features: str = "codes") -> np.ndarray:
    """What :func:`cluster_run` clusters: ``codes`` as they are, or the :func:`balanced_concat` of the
    blocks named in ``features`` (one of :data:`FEATURES`): ``codes``, ``pixels`` (the images
    scaled to [0, 1]) and ``hog`` (9-bin HOG descriptors of the images); or, for
    ``scattering``, :func:`scattering_features` of the images (the codes are not used).

    Example:
        >>> import torch
        >>> data = ImageData(torch.rand(6, 1, 8, 8))
        >>> codes = np.zeros((6, 3)) + np.arange(6)[:, None]
        >>> clustering_features(codes, data, "codes+hog").shape, clustering_features(codes, data, "pixels+hog").shape
        ((6, 84), (6, 145))
    """

    check_choice("features", features, FEATURES)
    if features == "codes":
        return codes
    if features == "scattering":
        return scattering_features(data)

    images = data.float01()
    blocks = {"codes": lambda: codes, "pixels": lambda: images.reshape(len(images), -1).numpy(),
              "hog": lambda: image_descriptors(images, "hog", bins=9)}
    return balanced_concat(*(blocks[name]() for name in features.split("+")))


def cluster_run(run_dir: str | Path, *, split: str = "test", scaling: str = "none", reducer: str = "umap",
                n_components: int = 10, n_neighbors: int = 20, min_dist: float = 0.0, clusterer: str = "gmm",
                covariance_type: str = "full", n_clusters: int | str | None = None, criterion: str = "silhouette",
                k_range: tuple[int, int] | list[int] = (2, 15), max_points: int | None = None, tag: str = "best",
                random_state: int | None = None, data_dir: str | None = None, device: str | torch.device = "auto",
                model: Any = None, splits: Any = None, figures: bool = True, update_run: bool = True,
                features: str = "codes", clusterer_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Encode a run's ``split`` with checkpoint ``tag``, cluster it, and write ``RUN_DIR/clustering/``.

    ``features`` is one of :data:`FEATURES` (see :func:`clustering_features`).
    ``n_clusters=None`` is the number of classes of the split's labels (else 10; see
    :func:`resolve_n_clusters`). Every other clustering option is that of
    :class:`EmbeddingClusterer`; ``random_state``
    defaults to the run's seed. ``max_points`` clusters a seeded random subset. ``model``
    and ``splits`` (a :class:`reprlab.runs.Splits`) avoid reloading them. With
    ``update_run``, ``cluster/*`` keys are merged into the run's ``metrics.json`` and an
    existing ``report.html`` is rewritten. Returns the metrics written to
    ``clustering/metrics.json``.

    Example:
        >>> cluster_run("/nonexistent")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        reprlab.base.errors.RunDirError: run directory /nonexistent does not exist. Fix: ...
    """

    run, cfg = _run_context(run_dir, data_dir)
    seed = int(cfg.seed if random_state is None else random_state)
    options = _estimator_options(scaling=scaling, reducer=reducer, n_components=n_components, n_neighbors=n_neighbors,
                                 min_dist=min_dist, clusterer=clusterer, covariance_type=covariance_type,
                                 n_clusters=n_clusters, criterion=criterion, k_range=k_range, random_state=seed,
                                 clusterer_options=clusterer_options)
    EmbeddingClusterer(**options).check_params()  # bad options fail before anything is loaded
    if max_points is not None:
    
        check_int("max_points", max_points, minimum=2)

    check_choice("split", split, SPLITS)
    check_choice("features", features, FEATURES)
    dev = _device(device)
    uses_model = features not in MODEL_FREE_FEATURES
    if model is None and uses_model:
        model = load_model(run.model_path(tag), map_location=dev)
    if splits is None:
        splits = prepare_data(cfg)
    selected = select_split(splits, split)
    in_split = "all splits" if split == "all" else f"the {split} split"
    options["n_clusters"] = resolve_n_clusters(n_clusters, selected.labels, f"images of {in_split}")
    data, indices = _subsample(selected, max_points, seed + 17)
    what = FEATURE_NAMES[features]
    logger.info("clustering %s images of %s on %s%s: %s", f"{len(data):,}", in_split, what,
                "" if uses_model else " (the trained model is not used)", _method(options))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    code_size = None
    codes = None
    if uses_model:
        codes = _encode(model, data, cfg.eval.batch_size, dev, f"encoding {split} images with checkpoint {tag}")
        code_size = int(codes.shape[1])
    encode_cpu = time.process_time() - cpu0
    codes = clustering_features(codes, data, features)
    logger.info("fitting the clusterer on %s-D features (%s)", codes.shape[1], what)
    labels = None if data.labels is None else data.labels.numpy()
    est, metrics = cluster_codes(codes, labels, **options)
    pred = est.labels_
    metrics.update({"split": split, "n_points": int(codes.shape[0]), "features": features, "features_text": what,
                    "feature_size": int(codes.shape[1]), **({} if code_size is None else {"code_size": code_size}),
                    "checkpoint": tag, "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in options.items()},
                    "encode_cpu_seconds": round(encode_cpu, 2), "total_cpu_seconds": round(time.process_time() - cpu0, 2),
                    "total_wall_seconds": round(time.perf_counter() - wall0, 2), "timings": est.timings_})
    if getattr(est.clusterer_, "timings_", None):  # reprlab's own clusterers time their steps (scan: neighbours, ...)
        metrics["clusterer_timings"] = dict(est.clusterer_.timings_)
    if est.k_scores_:
        metrics["k_scores"] = {str(k): v for k, v in est.k_scores_.items()}
    out = run.path / OUT_DIR
    out.mkdir(exist_ok=True)
    write_text(out / "assignments.csv", _assignments_csv(indices, labels, pred))
    items: list[dict[str, Any]] = []
    summary = _summary(metrics)
    if figures:

        names = list(data.class_names) if data.class_names else None
        if "acc" in metrics:
            cm = aligned_confusion_matrix(labels, pred)
            plot_confusion(cm, out / "confusion.png", class_names=names,
                           title=f"Clusters against classes ({split}, accuracy {metrics['acc']:.3f})")
            items.append({"key": "clustering:confusion", "kind": "clustering", "title": "Clustering: confusion matrix",
                          "caption": f"{summary}. Rows: hidden classes; columns: clusters, each class's matched "
                                     "cluster on the diagonal (Hungarian matching).", "files": ["confusion.png"]})
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(pred.shape[0], size=SCATTER_POINTS, replace=False)) \
            if pred.shape[0] > SCATTER_POINTS else np.arange(pred.shape[0])
        xy, axis = _scatter_coords(est.embedding_[keep], seed)
        plot_cluster_scatter(xy, pred[keep], out / "scatter.png", labels=None if labels is None else labels[keep],
                             class_names=names, axis_name=axis,
                             title=f"{_reducer_name(options)} embedding of the {_FEATURE_SHORT[features]} ({in_split})")
        items.append({"key": "clustering:scatter", "kind": "clustering", "title": "Clustering: embedding",
                      "caption": f"{len(keep):,} of {pred.shape[0]:,} {split} points; "
                                 + ("" if est.embedding_.shape[1] <= 2 else "first two principal components of the "
                                    f"{est.embedding_.shape[1]}-D embedding the clusterer saw; ") + summary,
                      "files": ["scatter.png"]})
        if est.k_scores_:
            plot_k_selection(est.k_scores_, est.criterion, est.n_clusters_, out / "k_selection.png")
            items.append({"key": "clustering:k_selection", "kind": "clustering",
                          "title": "Clustering: number of clusters",
                          "caption": f"{est.criterion} over k = {min(est.k_scores_)}..{max(est.k_scores_)}; "
                                     f"chosen k = {est.n_clusters_} (no labels used)",
                          "files": ["k_selection.png"]})
    write_json(out / "metrics.json", metrics)
    items.append({"key": "clustering:metrics", "kind": "clustering-metrics", "title": "Clustering: metrics",
                  "caption": summary, "files": ["metrics.json", "assignments.csv"]})
    _update_index(out, items)
    logger.info("clustering of %d images of %s (%s): %s", codes.shape[0], in_split, what, summary)
    if update_run:
        _merge_run_metrics(run.path, flat_metrics(metrics))
        _refresh_report(run.path)
    return metrics


_FEATURE_SHORT = {"codes": "codes", "codes+hog": "codes + HOG", "pixels+hog": "pixels + HOG",
                  "codes+pixels+hog": "codes + pixels + HOG", "scattering": "scattering coefficients"}


def _method(options: dict[str, Any]) -> str:
    """``"kmeans on PCA (10 components), k = 3"``: the clustering method in words."""
    return _summary({"options": options, "n_clusters": options.get("n_clusters")})


def _reducer_name(options: dict[str, Any]) -> str:
    r = options.get("reducer", "umap")
    return {"none": "Unreduced", "pca": "PCA", "kpca": "Kernel PCA", "tsne": "t-SNE", "umap": "UMAP"}.get(str(r), str(r))


def _summary(m: dict[str, Any]) -> str:
    o = m.get("options", {})
    start = (o.get("clusterer_options") or {}).get("init", "random")
    parts = [f"{o.get('clusterer', '?')}"
             + (f" ({o.get('covariance_type')} covariance)" if o.get("clusterer") == "gmm" else "")
             + (f" ({start} start)" if o.get("clusterer") == "scan" else "")
             + f" on {_reducer_name(o)}"
             + (f" ({o.get('n_components')} components)" if o.get("reducer", "umap") != "none" else ""),
             f"k = {m.get('n_clusters')}"]
    if m.get("features"):
        parts[0] = f"{parts[0]} of {FEATURE_NAMES.get(m['features'], m['features'])}"
    for key, label in (("acc", "accuracy"), ("nmi", f"NMI ({NMI_NORMALISATION})"), ("ari", "ARI"),
                       ("silhouette", "silhouette"), ("bic", "BIC")):
        if key in m and m[key] == m[key]:
            parts.append(f"{label} {m[key]:.4g}" if key == "bic" else f"{label} {m[key]:.3f}")
    return ", ".join(parts)


# ----------------------------------------------------------------------------------------
# checkpoints
# ----------------------------------------------------------------------------------------
def _epoch_checkpoints(run: Any) -> list[tuple[int, str]]:

    found = []
    root = run.checkpoints
    for p in sorted(root.iterdir()) if root.is_dir() else []:
        m = _CKPT.match(p.name)
        if m and resolve_checkpoint(root, p.name) is not None:
            found.append((int(m.group(1)), p.name))
    return sorted(found)


def _train_mse(model: Any, data: Any, batch_size: int) -> float:

    total, count = 0.0, 0
    chunk = max(batch_size, 1024)
    for start in range(0, len(data), chunk):
        x = data.float01(slice(start, start + chunk))
        xhat = reconstruct01(model, x, batch_size=batch_size)
        total += float((xhat - x).pow(2).sum())
        count += x.numel()
    return total / max(count, 1)


def checkpoint_curve(run_dir: str | Path, *, eval_split: str = "val", train_split: str = "train",
                     max_train_points: int | None = 10000, max_eval_points: int | None = None,
                     scaling: str = "none", reducer: str = "umap", n_components: int = 10, n_neighbors: int = 20,
                     min_dist: float = 0.0, clusterer: str = "gmm", covariance_type: str = "full",
                     n_clusters: int | None = None, random_state: int | None = None, data_dir: str | None = None,
                     device: str | torch.device = "auto", splits: Any = None,
                     progress: Callable[[dict[str, Any]], None] | None = None,
                     clusterer_options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Training-set reconstruction MSE against validation clustering accuracy for every ``epoch_NNNN`` checkpoint.

    For each checkpoint: the per-pixel MSE of reconstructions of ``train_split`` images
    (a seeded subset of ``max_train_points``), and the accuracy/NMI/ARI of the clustering
    of the ``eval_split`` codes (the same options as :func:`cluster_run`; a fixed
    ``n_clusters``, by default the number of classes). ``eval_split="val"`` falls back to ``test`` when the run kept no
    validation images. Writes ``clustering/checkpoint_curve.csv`` and ``.png`` and returns
    one dict per checkpoint (``epoch``, ``train_mse``, ``val_acc``, ``val_nmi``,
    ``val_ari``, ``val_silhouette``, ``cpu_seconds``). ``progress`` is called with each row.

    Example:
        >>> checkpoint_curve("/nonexistent")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        reprlab.base.errors.RunDirError: run directory /nonexistent does not exist. Fix: ...
    """

    run, cfg = _run_context(run_dir, data_dir)
    seed = int(cfg.seed if random_state is None else random_state)
    if n_clusters == "auto":
        raise ConfigError("checkpoint_curve needs a fixed n_clusters (accuracy is compared across checkpoints)",
                          fix="pass n_clusters=<number of classes>, e.g. 10")
    options = _estimator_options(scaling=scaling, reducer=reducer, n_components=n_components, n_neighbors=n_neighbors,
                                 min_dist=min_dist, clusterer=clusterer, covariance_type=covariance_type,
                                 n_clusters=n_clusters, random_state=seed, clusterer_options=clusterer_options)
    EmbeddingClusterer(**options).check_params()
    ckpts = _epoch_checkpoints(run)
    if not ckpts:
        raise RunDirError(f"run {run.path} has no epoch_NNNN checkpoints",
                          fix="train with train.checkpoint_every=1 (or a small number) to keep per-epoch checkpoints")
    if len(ckpts) < 10:
        logger.warning("checkpoint_curve: only %d epoch checkpoints in %s (10 or more show the trend better)",
                       len(ckpts), run.path)
    if splits is None:
        splits = prepare_data(cfg)
    if eval_split == "val" and splits.val is None:
        logger.warning("checkpoint_curve: the run has no validation split; clustering the test split instead")
        eval_split = "test"
    train = select_split(splits, train_split, max_points=max_train_points, seed=seed + 23)
    evald = select_split(splits, eval_split, max_points=max_eval_points, seed=seed + 29)
    if evald.labels is None:
        raise DataError(f"the {eval_split} images have no labels, so clustering accuracy cannot be measured",
                        fix="use a dataset with labels (labels are only used to score)")
    options["n_clusters"] = resolve_n_clusters(n_clusters, evald.labels, f"images of the {eval_split} split")
    dev = _device(device)
    rows: list[dict[str, Any]] = []
    for epoch, tag in ckpts:
        cpu0 = time.process_time()
        model = load_model(run.model_path(tag), map_location=dev)
        mse = _train_mse(model, train, cfg.eval.batch_size)
        codes = encode_dataset(model, evald, batch_size=cfg.eval.batch_size, device=dev)
        _, m = cluster_codes(codes, evald.labels.numpy(), **options)
        row = {"epoch": epoch, "checkpoint": tag, "train_mse": mse, "val_acc": m.get("acc", float("nan")),
               "val_nmi": m.get("nmi", float("nan")), "val_ari": m.get("ari", float("nan")),
               "val_silhouette": m.get("silhouette", float("nan")), "cpu_seconds": round(time.process_time() - cpu0, 2)}
        rows.append(row)
        logger.info("checkpoint %s: train MSE %.5f, %s accuracy %.3f", tag, mse, eval_split, row["val_acc"])
        if progress is not None:
            progress(row)
    out = run.path / OUT_DIR
    out.mkdir(exist_ok=True)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_text(out / "checkpoint_curve.csv", buf.getvalue())
    plot_checkpoint_curve(rows, out / "checkpoint_curve.png",
                          title=f"Reconstruction error vs clustering accuracy ({eval_split} split), per checkpoint")
    best = max(rows, key=lambda r: r["val_acc"])
    _update_index(out, [{"key": "clustering:checkpoint_curve", "kind": "clustering",
                         "title": "Clustering: reconstruction error against clustering accuracy",
                         "caption": f"{len(rows)} checkpoints; training-set MSE ({len(train):,} {train_split} images) "
                                    f"against {eval_split} clustering accuracy ({len(evald):,} images, "
                                    f"{_reducer_name(options)} + {clusterer}); best accuracy {best['val_acc']:.3f} "
                                    f"at epoch {best['epoch']}", "files": ["checkpoint_curve.png",
                                                                           "checkpoint_curve.csv"]}])
    _refresh_report(run.path)
    return rows


# ----------------------------------------------------------------------------------------
# the run report
# ----------------------------------------------------------------------------------------
def report_sections(run_dir: str | Path, data_uri: Callable[[Path], str | None]) -> list[dict[str, Any]]:
    """The report sections of ``RUN_DIR/clustering/index.json`` (empty when absent).

    Same shape as the analysis sections of :mod:`reprlab.reporting.report`: ``key``,
    ``kind``, ``title``, ``caption``, ``images`` (``data_uri`` of each PNG), ``files``,
    ``collapsed``.

    Example:
        >>> report_sections("/nonexistent", lambda p: None)
        []
    """
    base = Path(run_dir) / OUT_DIR
    try:
        index = read_json(base / "index.json")
    except (OSError, ValueError):
        return []
    if not isinstance(index, dict) or not isinstance(index.get("items"), list):
        return []

    return index_sections(index["items"], base, data_uri=data_uri)
