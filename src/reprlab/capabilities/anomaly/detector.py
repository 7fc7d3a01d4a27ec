"""A PyOD-style anomaly detector on top of any reprlab model.

:class:`AnomalyDetector` trains a model from the registry on normal images (or takes an
already trained one) and scores new images with one score or a combination of several:

===============  ==========================================================  ============
score            what (higher = more anomalous)                              models
===============  ==========================================================  ============
``mse``/``l1``   per-pixel reconstruction error                              any
``ssim``         1 - SSIM of image and reconstruction                        any
``elbo``         negative ELBO, nats per image                               vae, beta_vae
``transform``    NLL of the correct transformations                          rotnet
``knn``          mean distance to the k nearest normal codes                 any
``kmeans``       distance to the nearest KMeans centroid of normal codes     any
``pca``          PCA reconstruction error of the (standardised) codes        any
``pixel_knn``    k-NN distance of the (``pixel_blur``-blurred) pixels        none
``hog_knn``      k-NN distance of gradient-orientation histograms (HOG)      none
===============  ==========================================================  ============

A list of scores, e.g. ``score=("transform", "knn")``, adds the scores after
standardising each with the mean and standard deviation of its scores on the training
images.

Sign convention (as in PyOD): :meth:`~AnomalyDetector.decision_function` is *higher for
more anomalous* images and :meth:`~AnomalyDetector.predict` gives 1 for anomalies and 0
for normal images. scikit-learn's outlier detectors use the opposite: their
``decision_function`` and ``score_samples`` are higher for *normal* samples (negative
``decision_function`` = outlier) and their ``predict`` gives +1 (inlier) / -1 (outlier).
Use ``-detector.decision_function(X)`` where scikit-learn's convention is expected.

Example:
    >>> import torch
    >>> normal = torch.rand(64, 1, 8, 8) * 0.2
    >>> det = AnomalyDetector(score="mse", model="fc_ae", model_options={"hidden_sizes": (16,), "latent_dim": 2},
    ...                       epochs=2, contamination=0.1).fit(normal)
    >>> det.predict(torch.ones(2, 1, 8, 8)).tolist()
    [1, 1]
    >>> det.predict_proba(normal[:3]).shape
    (3, 2)
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from reprlab.capabilities.anomaly import scores as S
from reprlab.capabilities.anomaly.metrics import check_contamination, evaluate_scores, threshold_at_contamination
from reprlab.data.dataset import ImageData
from reprlab.base.errors import ConfigError, DataError
from reprlab.base.validation import check_choice, check_float, check_int
from reprlab.models import create_model
from reprlab.runs import load_run_model
from reprlab.training.callbacks import ProgressBar
from reprlab.training.engine import Trainer

logger = logging.getLogger(__name__)

__all__ = ["AnomalyDetector", "PRESETS", "SCORES", "default_model_for"]

#: Every score name accepted by :class:`AnomalyDetector`.
SCORES: tuple[str, ...] = ("mse", "l1", "ssim", "elbo", "transform", "knn", "kmeans", "pca", "pixel_knn", "hog_knn")
_MODEL_FREE = ("pixel_knn", "hog_knn")
_LATENT = ("knn", "kmeans", "pca")
_NEEDS_MODEL = ("mse", "l1", "ssim", "elbo", "transform") + _LATENT


#: Named settings, measured on the Fashion-MNIST one-class benchmark (BENCHMARKS.md, bench/anomaly.py):
#: ``fast`` (model-free: blurred-pixel and HOG k-NN distances; mean AUROC 0.949 in about 8 CPU-s
#: per class), ``full`` (adds a rotation/flip-predicting ``rotnet``: its NLL and the k-NN distance
#: of its codes; 0.951 in about 140 CPU-s per class) and ``ae`` (the defaults: ``conv_ae``
#: reconstruction MSE; 0.900). Use them with :meth:`AnomalyDetector.from_preset` or
#: ``reprlab detect --preset NAME``.
PRESETS: dict[str, dict[str, Any]] = {
    "fast": {"score": ("pixel_knn", "hog_knn"), "pixel_blur": 1.0, "hog_bins": 6, "n_neighbors": 5},
    "full": {"score": ("transform", "knn", "pixel_knn", "hog_knn"), "pixel_blur": 1.0, "hog_bins": 6,
             "n_neighbors": 5, "model": "rotnet", "epochs": 2, "batch_size": 32, "lr": 2e-3, "scheduler": "cosine",
             "model_options": {"channels": (16, 32), "latent_dim": 64, "transforms": "rotflip"}},
    "ae": {"score": "mse"},
}


def default_model_for(score: str | Sequence[str]) -> str | None:
    """The registry model trained by default for ``score``: ``vae`` for ``elbo``, ``rotnet`` for ``transform``.

    Example:
        >>> default_model_for("elbo"), default_model_for(("transform", "knn")), default_model_for("mse")
        ('vae', 'rotnet', 'conv_ae')
    """
    names = [score] if isinstance(score, str) else list(score)
    if "transform" in names:
        return "rotnet"
    if "elbo" in names:
        return "vae"
    if all(n in _MODEL_FREE for n in names):
        return None
    return "conv_ae"


class AnomalyDetector:
    """Train on normal images, score new ones; PyOD's interface and sign convention.

    Parameters (keyword-only, validated in :meth:`fit`):

    * ``score``: a name from :data:`SCORES` or a sequence of them (combined).
    * ``contamination``: expected fraction of anomalies in (0, 0.5]; sets ``threshold_``.
    * ``model``: a registry name (built for the images' shape and trained in ``fit``),
      a run directory (its best checkpoint), or a model instance (used as it is: trained
      already, unless ``train_model=True``). ``None`` picks :func:`default_model_for`.
    * ``model_options``: keyword arguments of ``create_model`` (e.g. ``latent_dim``).
    * ``epochs``, ``batch_size``, ``lr``, ``weight_decay``, ``scheduler``: training.
    * ``n_neighbors``, ``knn_metric`` (``cosine``, ``euclidean`` or ``auto``: cosine on
      the codes of every transformation of ``rotnet``, euclidean otherwise), ``n_clusters``,
      ``n_components``: the latent-space scores; ``pixel_blur``: Gaussian blur (sigma in
      px) of the images before ``pixel_knn`` (1.0 makes small shifts matter less);
      ``hog_bins``: orientation bins of ``hog_knn`` (6 did best on a validation split of
      Fashion-MNIST training images).
    * ``views``: codes for latent scores: ``"identity"``, ``"all"`` (every transformation,
      ``rotnet`` only) or ``"auto"`` (``all`` for ``rotnet``).
    * ``device``, ``random_state`` (seeds weights, batches and KMeans), ``verbose``.

    Fitted attributes: ``model_``, ``decision_scores_`` (scores of the training images;
    k-NN scores leave each image itself out), ``threshold_``, ``labels_`` (0/1 of the
    training images), ``scores_`` (the score names), ``score_stats_``, ``history_``,
    ``fit_seconds_``, ``input_shape_``.

    Example:
        >>> det = AnomalyDetector(score=("transform", "knn"), model="rotnet", epochs=10)  # doctest: +SKIP
        >>> det.fit(normal_images).decision_function(test_images)  # doctest: +SKIP
    """

    def __init__(self, *, score: str | Sequence[str] = "mse", contamination: float = 0.1,
                 model: str | os.PathLike | nn.Module | None = None, model_options: dict[str, Any] | None = None,
                 train_model: bool | None = None, epochs: int = 10, batch_size: int = 128, lr: float = 1e-3,
                 weight_decay: float = 0.0, scheduler: str = "cosine", n_neighbors: int = 5, knn_metric: str = "auto",
                 n_clusters: int = 10, n_components: int | float = 0.9, views: str = "auto", pixel_blur: float = 0.0,
                 hog_bins: int = 6,
                 device: str | torch.device = "cpu", random_state: int = 0, eval_batch_size: int = 500,
                 verbose: bool = False) -> None:
        self.score = score
        self.contamination = contamination
        self.model = model
        self.model_options = model_options
        self.train_model = train_model
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.scheduler = scheduler
        self.n_neighbors = n_neighbors
        self.knn_metric = knn_metric
        self.n_clusters = n_clusters
        self.n_components = n_components
        self.views = views
        self.pixel_blur = pixel_blur
        self.hog_bins = hog_bins
        self.device = device
        self.random_state = random_state
        self.eval_batch_size = eval_batch_size
        self.verbose = verbose

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "AnomalyDetector":
        """A detector with the settings of :data:`PRESETS` ``[name]``, then ``overrides`` on top.

        ``model_options`` are merged key by key, so ``model_options={"latent_dim": 32}``
        changes only the latent size of the preset's model.

        Example:
            >>> det = AnomalyDetector.from_preset("full", epochs=4, model_options={"latent_dim": 32})
            >>> det.model, det.epochs, det.model_options["latent_dim"], det.model_options["transforms"]
            ('rotnet', 4, 32, 'rotflip')
        """
        if name not in PRESETS:
            raise ConfigError(f"unknown anomaly-detection preset {name!r}", fix=f"use one of {', '.join(PRESETS)}")
        params = dict(PRESETS[name])
        options = {**(params.get("model_options") or {}), **(overrides.pop("model_options", None) or {})}
        params.update(overrides)
        if options:
            params["model_options"] = options
        return cls(**params)

    # -- sklearn-style plumbing -------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments (scikit-learn convention)."""
        import inspect

        return {k: getattr(self, k) for k in inspect.signature(type(self).__init__).parameters if k != "self"}

    def set_params(self, **params: Any) -> "AnomalyDetector":
        """Set constructor arguments; unknown names raise :class:`ConfigError`."""
        valid = self.get_params()
        for k, v in params.items():
            if k not in valid:
                raise ConfigError(f"AnomalyDetector has no parameter {k!r}", fix=f"use one of {', '.join(valid)}")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        return f"AnomalyDetector(score={self.score!r}, model={self._model_label()!r}, contamination={self.contamination!r})"

    def _model_label(self) -> str:
        m = self.model
        if isinstance(m, nn.Module):
            return getattr(m, "registry_name", type(m).__name__)
        if m is not None:
            return str(m)
        names = [self.score] if isinstance(self.score, str) else list(self.score)
        return default_model_for(names) or "none"

    # -- validation -------------------------------------------------------------------------
    def _validate(self) -> list[str]:
        names = [self.score] if isinstance(self.score, str) else list(self.score) if isinstance(self.score, (list, tuple)) else None
        if not names:
            raise ConfigError(f"score must be a score name or a list of them, got {self.score!r}",
                              fix=f"use one of {', '.join(SCORES)}")
        for n in names:
            check_choice("score", n, SCORES)
        if len(set(names)) != len(names):
            raise ConfigError(f"score lists {names} with repeats", fix="name each score once")
        check_contamination(self.contamination)
        check_int("epochs", self.epochs, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        check_int("eval_batch_size", self.eval_batch_size, minimum=1)
        check_float("lr", self.lr, minimum=0, exclusive_min=True)
        check_float("weight_decay", self.weight_decay, minimum=0)
        check_choice("scheduler", self.scheduler, ("none", "step", "cosine", "plateau"))
        check_int("n_neighbors", self.n_neighbors, minimum=1)
        check_choice("knn_metric", self.knn_metric, ("auto", "cosine", "euclidean"))
        check_int("n_clusters", self.n_clusters, minimum=1)
        check_choice("views", self.views, ("auto", "identity", "all"))
        check_float("pixel_blur", self.pixel_blur, minimum=0, maximum=10)
        check_int("hog_bins", self.hog_bins, minimum=2, maximum=36)
        if isinstance(self.random_state, bool) or not isinstance(self.random_state, int) or self.random_state < 0:
            raise ConfigError(f"random_state must be a non-negative integer, got {self.random_state!r}",
                              fix="e.g. random_state=0")
        if self.model_options is not None and not isinstance(self.model_options, dict):
            raise ConfigError(f"model_options must be a dict, got {type(self.model_options).__name__}",
                              fix="e.g. model_options={'latent_dim': 32}")
        if self.train_model is not None and not isinstance(self.train_model, bool):
            raise ConfigError(f"train_model must be True, False or None, got {self.train_model!r}",
                              fix="leave it None: names are trained, model instances are used as they are")
        return names

    # -- the model ------------------------------------------------------------------------
    def _resolve_model(self, names: list[str], x: torch.Tensor) -> tuple[nn.Module | None, bool]:

        needs = any(n in _NEEDS_MODEL for n in names)
        spec = self.model if self.model is not None else default_model_for(names)
        if not needs:
            return None, False
        if spec is None:
            raise ConfigError(f"score {names} needs a model", fix="pass model='conv_ae' (or another registry name)")
        if isinstance(spec, nn.Module):
            if not hasattr(spec, "encode") or not hasattr(spec, "reconstruct"):
                raise ConfigError(f"model {type(spec).__name__} is not a reprlab model (no encode/reconstruct)",
                                  fix="pass a model from reprlab.create_model or reprlab.load_run_model")
            if self.model_options:
                raise ConfigError("model_options only apply when the model is given by name",
                                  fix="drop model_options, or pass the model's registry name")
            return spec, bool(self.train_model)
        if isinstance(spec, (str, os.PathLike)) and Path(spec).is_dir():
            if self.model_options:
                raise ConfigError("model_options only apply when the model is given by name",
                                  fix="drop model_options, or pass the model's registry name")
            return load_run_model(spec), bool(self.train_model)
        if not isinstance(spec, str):
            raise ConfigError(f"model must be a registry name, a run directory or a model, got {type(spec).__name__}",
                              fix="e.g. model='conv_ae' (see `reprlab models`)")
        options = dict(self.model_options or {})
        for key in ("input_shape", "output_range"):
            if key in options:
                raise ConfigError(f"model_options sets {key}, which the detector takes from the images",
                                  fix=f"drop model_options['{key}']")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state)  # the initial weights follow random_state
            model = create_model(spec, input_shape=tuple(x.shape[1:]), **options)
        model.check_input()
        return model, self.train_model is not False

    def _train(self, model: nn.Module, x: torch.Tensor) -> list[dict[str, float]]:

        data = ImageData((x * 255).round().to(torch.uint8) if _is_uint8_valued(x) else x, name="normal images")
        trainer = Trainer(epochs=self.epochs, batch_size=min(self.batch_size, len(data)), lr=self.lr,
                          weight_decay=self.weight_decay, scheduler=self.scheduler, monitor="train/loss",
                          device=self.device, seed=self.random_state, callbacks=[ProgressBar(bool(self.verbose))])
        trainer.fit(model, data)
        return trainer.history

    # -- scoring ----------------------------------------------------------------------------
    def _views(self, model: nn.Module | None) -> str:
        if self.views != "auto":
            return self.views
        return "all" if model is not None and callable(getattr(model, "embed", None)) else "identity"

    def _raw_scores(self, names: Sequence[str], x: torch.Tensor, *, fit: bool) -> dict[str, np.ndarray]:
        """Each named score of ``x``; the model's codes are computed once for all latent scores."""
        model, bs = getattr(self, "model_", None), self.eval_batch_size
        cache: dict[str, np.ndarray] = {}
        latent = [n for n in names if n in _LATENT]
        if "transform" in names and latent and self._views(model) == "all" and \
                callable(getattr(model, "nll_and_embedding", None)):
            cache["transform"], cache["codes"] = S.transformation_nll_and_codes(model, x, batch_size=bs)
        return {n: self._raw_score(n, x, fit=fit, cache=cache) for n in names}

    def _raw_score(self, name: str, x: torch.Tensor, *, fit: bool, cache: dict[str, np.ndarray]) -> np.ndarray:
        model, bs = getattr(self, "model_", None), self.eval_batch_size
        if name in S.RECONSTRUCTION_METRICS:
            return S.reconstruction_error(model, x, metric=name, batch_size=bs)
        if name == "elbo":
            return S.negative_elbo(model, x, batch_size=bs)
        if name == "transform":
            return cache["transform"] if "transform" in cache else S.transformation_nll(model, x, batch_size=bs)
        if name == "pixel_knn":
            codes = S.image_descriptors(x, "pixels", blur=float(self.pixel_blur))
        elif name == "hog_knn":
            codes = S.image_descriptors(x, "hog", bins=self.hog_bins)
        else:
            if "codes" not in cache:
                cache["codes"] = S.latent_codes(model, x, batch_size=bs, views=self._views(model))
            codes = cache["codes"]
        if fit:
            if name in ("knn",) + _MODEL_FREE:
                metric = self.knn_metric
                if metric == "auto":
                    metric = "cosine" if name == "knn" and self._views(model) == "all" else "euclidean"
                scorer: Any = S.KNNScorer(n_neighbors=self.n_neighbors, metric=metric)
            elif name == "kmeans":
                scorer = S.KMeansScorer(n_clusters=self.n_clusters, random_state=self.random_state)
            else:
                scorer = S.PCAScorer(n_components=self.n_components, random_state=self.random_state)
            self.scorers_[name] = scorer.fit(codes)
            return scorer.train_scores_
        return self.scorers_[name].score(codes)

    def _combine(self, parts: dict[str, np.ndarray]) -> np.ndarray:
        if len(parts) == 1:
            return next(iter(parts.values()))
        total = np.zeros_like(next(iter(parts.values())))
        for name, v in parts.items():
            mean, std = self.score_stats_[name]
            total += (v - mean) / std
        return total

    # -- public API -------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> "AnomalyDetector":
        """Train (if needed) on normal images ``X`` and set ``threshold_`` from ``contamination``.

        ``X``: :class:`ImageData`, or a tensor/array ``(N, C, H, W)`` / ``(N, H, W)``,
        uint8 or float in [0, 1]. ``y`` is ignored (PyOD/scikit-learn compatibility).
        Returns ``self``.
        """
        names = self._validate()
        x = S.as_images01(X, what="training images")
        if x.shape[0] < 2:
            raise DataError(f"{x.shape[0]} training image(s) are too few", fix="fit on at least a few normal images")
        started = time.perf_counter()
        model, train = self._resolve_model(names, x)
        self.history_: list[dict[str, float]] = []
        if model is not None:
            model = model.to(torch.device(self.device))
            if train:
                logger.info("training %s on %d normal images for %d epochs", getattr(model, "registry_name", "model"),
                            x.shape[0], self.epochs)
                self.history_ = self._train(model, x)
            model.eval()
        self.model_ = model
        self.input_shape_ = tuple(x.shape[1:])
        self.scores_ = names
        self.scorers_: dict[str, Any] = {}
        parts = self._raw_scores(names, x, fit=True)
        self.score_stats_ = {}
        for n, v in parts.items():
            std = float(v.std())
            self.score_stats_[n] = (float(v.mean()), std if std > 1e-12 else 1.0)
        self.decision_scores_ = self._combine(parts)
        self.threshold_ = threshold_at_contamination(self.decision_scores_, self.contamination)
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(np.int64)
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "threshold_"):
            raise ConfigError("this AnomalyDetector is not fitted yet", fix="call fit(normal_images) first")

    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly scores of ``X``: higher = more anomalous (PyOD's convention; see the module docstring)."""
        self._check_fitted()
        x = S.as_images01(X, what="images to score")
        if tuple(x.shape[1:]) != self.input_shape_:
            raise DataError(f"the detector was fitted on images of shape {self.input_shape_} but got {tuple(x.shape[1:])}",
                            fix="score images prepared like the training images (same size and channels)")
        return self._combine(self._raw_scores(self.scores_, x, fit=False))

    def score_samples(self, X: Any) -> np.ndarray:
        """Same as :meth:`decision_function` (higher = more anomalous; *not* scikit-learn's sign)."""
        return self.decision_function(X)

    def predict(self, X: Any) -> np.ndarray:
        """0 (normal) or 1 (anomaly) per image: ``decision_function(X) > threshold_``."""
        return (self.decision_function(X) > self.threshold_).astype(np.int64)

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit on ``X`` and return ``labels_``."""
        return self.fit(X, y).labels_

    def predict_proba(self, X: Any, method: str = "linear") -> np.ndarray:
        """``(N, 2)`` probabilities of [normal, anomaly] per image, as in PyOD.

        ``method="linear"`` min-max scales the scores by the training scores' range (clipped
        to [0, 1]); ``"unify"`` uses the Gaussian CDF of the standardised score (Kriegel et
        al. 2011), 0 below the training mean.
        """
        check_choice("method", method, ("linear", "unify"))
        s = self.decision_function(X)
        train = self.decision_scores_
        if method == "linear":
            lo, hi = float(train.min()), float(train.max())
            p = np.clip((s - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)
        else:
            mu, sd = float(train.mean()), float(train.std()) or 1.0
            p = np.clip(np.vectorize(math.erf)((s - mu) / (sd * math.sqrt(2.0))), 0.0, 1.0)
        return np.stack([1.0 - p, p], axis=1)

    def evaluate(self, X: Any, y: Any) -> dict[str, float]:
        """ROC AUC, average precision and precision/recall/F1 at ``threshold_`` on labelled images (1 = anomaly)."""
        return evaluate_scores(y, self.decision_function(X), threshold=self.threshold_)


def _is_uint8_valued(x: torch.Tensor) -> bool:
    """True when float images in [0, 1] are exactly k/255 (so uint8 storage loses nothing)."""
    if x.numel() > 50_000_000:
        return False
    return bool(torch.equal((x * 255).round() / 255, x))
