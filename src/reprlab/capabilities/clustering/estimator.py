"""``EmbeddingClusterer``: scaling -> reducer -> clusterer, as one scikit-learn estimator.

The steps, all label-free:

1. **scaling** ``"none"``, ``"standard"`` (zero mean, unit variance per feature) or ``"l2"``
   (each point divided by its Euclidean norm);
2. **reducer** ``"none"``, ``"pca"``, ``"kpca"``, ``"tsne"`` or ``"umap"`` through
   :class:`reprlab.features.embeddings.Reducer` (``n_components``, ``n_neighbors``,
   ``min_dist``, ``perplexity``, ``kernel``, ``gamma``, ``max_fit_points``), or any object
   with scikit-learn's ``fit_transform`` (e.g. ``sklearn.manifold.TSNE``);
3. **clusterer** ``"kmeans"``, ``"gmm"`` (Gaussian mixture, ``covariance_type``),
   ``"agglomerative"`` (``linkage``) or ``"scan"`` (neighbour consistency,
   :class:`~reprlab.capabilities.clustering.scan.ScanClusterer`; use it with ``reducer="none"``), with
   ``clusterer_options`` passed to the clusterer's constructor (e.g.
   ``{"entropy_weight": 5.0, "epochs": 10}`` for ``"scan"``), and ``n_clusters`` given, or ``"auto"``: every ``k`` in
   ``k_range`` is fitted and the best by ``criterion`` wins (``"silhouette"``, highest; or
   ``"bic"``, lowest, Gaussian mixtures only). ``n_init`` restarts (default: 10 for
   k-means, 1 for mixtures), ``random_state`` seeds every step.

It follows scikit-learn's conventions: hyperparameters are keyword-only constructor
arguments stored unchanged, validated in :meth:`fit`, which returns ``self``; fitted
attributes end in ``_``; ``get_params``/``set_params``/``clone`` work. ``predict`` places new
points with the fitted scaler and reducer and assigns them with the fitted clusterer; it
raises a :class:`~reprlab.base.errors.ConfigError` when the reducer cannot embed new points
(an estimator without ``transform``, such as scikit-learn's ``TSNE``) or the clusterer
cannot assign them (agglomerative). t-SNE through ``Reducer`` can: openTSNE places new
points into the fixed map (an approximation, as for UMAP).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(c, 0.3, size=(50, 5)) for c in (0, 3, 6)])
    >>> est = EmbeddingClusterer(reducer="pca", n_components=2, clusterer="gmm", n_clusters="auto", criterion="bic")
    >>> labels = est.fit_predict(X)
    >>> est.n_clusters_, len(set(labels)), est.predict(X[:4]).shape
    (3, 3, (4,))
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils.metaestimators import available_if

from reprlab.base.errors import ConfigError, DataError
from reprlab.base.validation import check_choice, check_float, check_int

logger = logging.getLogger(__name__)

from sklearn.utils.validation import validate_data as _validate_data  # public since scikit-learn 1.6

__all__ = ["NotFittedClustererError", "CLUSTERERS", "COVARIANCE_TYPES", "CRITERIA", "EmbeddingClusterer", "REDUCERS", "SCALINGS",
           "AGGLOMERATIVE_MAX_POINTS"]

SCALINGS: tuple[str, ...] = ("none", "standard", "l2")
REDUCERS: tuple[str, ...] = ("none", "pca", "kpca", "tsne", "umap")
CLUSTERERS: tuple[str, ...] = ("kmeans", "gmm", "agglomerative", "scan")
COVARIANCE_TYPES: tuple[str, ...] = ("full", "tied", "diag", "spherical")
CRITERIA: tuple[str, ...] = ("silhouette", "bic")
LINKAGES: tuple[str, ...] = ("ward", "complete", "average", "single")
#: Agglomerative clustering needs O(N²) memory; above this many points it is refused.
AGGLOMERATIVE_MAX_POINTS = 30000


class NotFittedClustererError(ConfigError, NotFittedError):
    """``predict``/``transform`` before ``fit``: a :class:`ConfigError` that is also scikit-learn's ``NotFittedError``."""


class _DataTypeError(DataError, TypeError):
    """Input of the wrong type (e.g. an object array): a :class:`DataError` that is also a ``TypeError``."""


def _gmm_only(est: "EmbeddingClusterer") -> bool:
    return est.clusterer == "gmm"


class EmbeddingClusterer(ClusterMixin, TransformerMixin, BaseEstimator):
    """Scale, reduce and cluster embeddings (see the module docstring for every option).

    Fitted attributes: ``labels_`` (cluster of each fitted point), ``n_clusters_``,
    ``embedding_`` (the reduced points the clusterer saw), ``scaler_`` (``None`` or the
    fitted scaler), ``reducer_`` (``None``, a :class:`~reprlab.features.embeddings.Reducer`
    or the given reducer object), ``clusterer_`` (the fitted scikit-learn clusterer),
    ``scores_`` (label-free: ``silhouette``, and ``bic`` for mixtures), ``k_scores_``
    (``{k: criterion value}`` when ``n_clusters="auto"``, else ``{}``), ``n_features_in_``
    and ``timings_`` (CPU seconds of each step).

    Example:
        >>> import numpy as np
        >>> X = np.random.default_rng(1).normal(size=(60, 4))
        >>> EmbeddingClusterer(reducer="none", clusterer="kmeans", n_clusters=2).fit(X).labels_.shape
        (60,)
    """

    def __init__(self, *, scaling: str = "none", reducer: Any = "umap", n_components: int = 10,
                 n_neighbors: int = 20, min_dist: float = 0.0, perplexity: float = 30.0, kernel: str = "rbf",
                 gamma: float | None = None, max_fit_points: int | None = None, clusterer: str = "gmm",
                 covariance_type: str = "full", linkage: str = "ward", n_clusters: int | str = 10,
                 criterion: str = "silhouette", k_range: tuple[int, int] = (2, 15), n_init: int | None = None,
                 silhouette_sample: int = 5000, n_jobs: int = 1, random_state: int | None = 0,
                 clusterer_options: dict[str, Any] | None = None) -> None:
        self.scaling = scaling
        self.reducer = reducer
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.perplexity = perplexity
        self.kernel = kernel
        self.gamma = gamma
        self.max_fit_points = max_fit_points
        self.clusterer = clusterer
        self.covariance_type = covariance_type
        self.linkage = linkage
        self.n_clusters = n_clusters
        self.criterion = criterion
        self.k_range = k_range
        self.n_init = n_init
        self.silhouette_sample = silhouette_sample
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.clusterer_options = clusterer_options

    # -- validation ------------------------------------------------------------------------
    def check_params(self) -> None:
        """Validate the hyperparameters that do not depend on the data (``fit`` calls it).

        Raises :class:`ConfigError` naming the parameter, the bad value and the fix.

        Example:
            >>> EmbeddingClusterer(clusterer="kmeans", n_clusters="auto", criterion="bic").check_params()
            Traceback (most recent call last):
            ...
            reprlab.base.errors.ConfigError: criterion='bic' needs a likelihood, which clusterer='kmeans' does not have. Fix: use clusterer='gmm' with criterion='bic', or criterion='silhouette'
        """
        check_choice("scaling", self.scaling, SCALINGS)
        if isinstance(self.reducer, str):
            check_choice("reducer", self.reducer, REDUCERS)
        elif not hasattr(self.reducer, "fit_transform"):
            raise ConfigError(f"reducer must be one of {', '.join(REDUCERS)} or an object with fit_transform, "
                              f"got {self.reducer!r}", fix="use reducer='umap' (or pca, kpca, tsne, none)")
        check_choice("clusterer", self.clusterer, CLUSTERERS)
        check_choice("covariance_type", self.covariance_type, COVARIANCE_TYPES)
        check_choice("linkage", self.linkage, LINKAGES)
        check_choice("criterion", self.criterion, CRITERIA)
        if self.n_init is not None:
            check_int("n_init", self.n_init, minimum=1)
        check_int("silhouette_sample", self.silhouette_sample, minimum=10)
        check_int("n_components", self.n_components, minimum=1)
        check_int("n_neighbors", self.n_neighbors, minimum=2)
        check_float("min_dist", self.min_dist, minimum=0.0)
        if self.random_state is not None:
            check_int("random_state", self.random_state, minimum=0)
        self._check_clusterer_options()
        if isinstance(self.n_clusters, str):
            if self.n_clusters != "auto":
                raise ConfigError(f"n_clusters must be a positive integer or 'auto', got {self.n_clusters!r}",
                                  fix="e.g. n_clusters=10 or n_clusters='auto'")
            if self.criterion == "bic" and self.clusterer != "gmm":
                raise ConfigError(f"criterion='bic' needs a likelihood, which clusterer={self.clusterer!r} does not have",
                                  fix="use clusterer='gmm' with criterion='bic', or criterion='silhouette'")
            kr = self.k_range
            if (not isinstance(kr, (tuple, list)) or len(kr) != 2
                    or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in kr)):
                raise ConfigError(f"k_range must be (k_min, k_max), got {kr!r}", fix="e.g. k_range=(2, 15)")
            if int(kr[0]) < 2 or int(kr[1]) < int(kr[0]):
                raise ConfigError(f"k_range {tuple(kr)} must satisfy 2 <= k_min <= k_max", fix="e.g. k_range=(2, 15)")
        else:
            k = int(self.n_clusters) if isinstance(self.n_clusters, np.integer) else self.n_clusters
            check_int("n_clusters", k, minimum=1)

    def _check_clusterer_options(self) -> None:
        opts = self.clusterer_options
        if opts is None:
            return
        if not isinstance(opts, dict) or not all(isinstance(k, str) for k in opts):
            raise ConfigError(f"clusterer_options must be a dict of keyword arguments, got {opts!r}",
                              fix="e.g. clusterer_options={'entropy_weight': 5.0}")
        reserved = {"n_clusters", "n_components", "random_state"} & set(opts)
        if reserved:
            raise ConfigError(f"clusterer_options may not set {', '.join(sorted(reserved))}",
                              fix="set n_clusters and random_state on the EmbeddingClusterer itself (n_components "
                                      "there is the reducer's)")
        if opts:
            import inspect

            accepted = set(inspect.signature(type(self._make_clusterer(2, with_options=False)).__init__).parameters) - {"self"}
            unknown = sorted(set(opts) - accepted)
            if unknown:
                raise ConfigError(f"clusterer_options {unknown} are not options of clusterer={self.clusterer!r}",
                                  fix=f"use some of: {', '.join(sorted(accepted - {'n_clusters', 'n_components', 'random_state'}))}")
            clusterer = self._make_clusterer(2)
            if hasattr(clusterer, "check_params"):  # reprlab's own clusterers validate their values up front
                try:
                    clusterer.check_params()
                except ConfigError as exc:
                    raise ConfigError(f"clusterer_options: {exc.problem}",
                                      fix=(exc.fix or "").replace("set ", "set clusterer_options.", 1)) from None

    def _candidate_ks(self, n: int) -> list[int]:
        """Validate the hyperparameters against ``n`` points; return the ``k`` to try."""
        self.check_params()
        if n < 2:
            raise DataError(f"clustering needs at least 2 points, got {n}", fix="pass more points")
        if self.clusterer == "agglomerative" and n > AGGLOMERATIVE_MAX_POINTS:
            gib = n * n * 8 / 2**30
            raise ConfigError(f"agglomerative clustering of {n} points needs about {gib:.0f} GiB (O(N²) distances)",
                              fix=f"use at most {AGGLOMERATIVE_MAX_POINTS} points, or clusterer='gmm' or 'kmeans'")
        if self.n_clusters == "auto":
            lo, hi = int(self.k_range[0]), int(self.k_range[1])
            top = n - 1 if self.criterion == "silhouette" else n
            if lo > top:
                raise ConfigError(f"k_range {tuple(self.k_range)} asks for at least {lo} clusters of {n} points "
                                  f"(at most {top} with criterion={self.criterion!r})",
                                  fix=f"pass more points or lower k_range to at most ({min(2, top)}, {top})")
            if hi > top:
                logger.info("n_clusters='auto': k_max %d lowered to %d for %d points", hi, top, n)
            return list(range(lo, min(hi, top) + 1))
        k = int(self.n_clusters)
        if k > n:
            raise ConfigError(f"n_clusters={k} is more than the {n} points to cluster",
                              fix=f"set n_clusters to at most {n} (or 'auto'), or cluster more points")
        return [k]

    def _validate_points(self, X: Any, *, reset: bool) -> np.ndarray:
        """``X`` as a finite float64 ``(n_points, n_features)`` array (scikit-learn's checks, reprlab errors)."""
        if hasattr(X, "detach"):
            X = X.detach().cpu().numpy()
        try:
            return _validate_data(self, X, reset=reset, dtype=np.float64, ensure_min_samples=2 if reset else 1)
        except (ValueError, TypeError) as exc:
            raise (_DataTypeError if isinstance(exc, TypeError) else DataError)(str(exc).strip(), fix="pass a dense, real-valued (n_points, n_features) array without "
                                                  "NaN/inf, with the features the clusterer was fitted on") from None

    # -- steps -----------------------------------------------------------------------------
    def _make_reducer(self, n: int, d: int) -> Any:
        if not isinstance(self.reducer, str):
            from sklearn.base import clone

            try:
                return clone(self.reducer)
            except (TypeError, RuntimeError):
                return self.reducer
        if self.reducer == "none":
            return None
        from reprlab.features.embeddings import Reducer

        return Reducer(self.reducer, int(self.n_components), kernel=self.kernel, gamma=self.gamma,
                       perplexity=self.perplexity, n_neighbors=int(self.n_neighbors), min_dist=float(self.min_dist),
                       max_fit_points=self.max_fit_points, n_jobs=self.n_jobs, random_state=self.random_state)

    def _scale(self, X: np.ndarray, fit: bool) -> np.ndarray:
        if self.scaling == "none":
            return X
        if self.scaling == "l2":
            norms = np.linalg.norm(X, axis=1, keepdims=True)
            return X / np.maximum(norms, 1e-12)
        if fit:
            from sklearn.preprocessing import StandardScaler

            self.scaler_ = StandardScaler().fit(X)
        return self.scaler_.transform(X)

    def _make_clusterer(self, k: int, *, with_options: bool = True) -> Any:
        opts = dict(self.clusterer_options or {}) if with_options else {}
        if self.clusterer == "kmeans":
            from sklearn.cluster import KMeans

            opts.setdefault("n_init", 10 if self.n_init is None else int(self.n_init))
            return KMeans(n_clusters=k, random_state=self.random_state, **opts)
        if self.clusterer == "gmm":
            from sklearn.mixture import GaussianMixture

            opts.setdefault("covariance_type", self.covariance_type)
            opts.setdefault("n_init", 1 if self.n_init is None else int(self.n_init))
            return GaussianMixture(n_components=k, random_state=self.random_state, **opts)
        if self.clusterer == "scan":
            from reprlab.capabilities.clustering.scan import ScanClusterer

            return ScanClusterer(n_clusters=k, random_state=self.random_state, **opts)
        from sklearn.cluster import AgglomerativeClustering

        opts.setdefault("linkage", self.linkage)
        return AgglomerativeClustering(n_clusters=k, **opts)

    def _criterion_value(self, Z: np.ndarray, model: Any, labels: np.ndarray) -> float:
        from reprlab.capabilities.clustering.metrics import silhouette

        if self.criterion == "bic":
            return float(model.bic(Z))
        return silhouette(Z, labels, sample_size=self.silhouette_sample, random_state=self.random_state)

    # -- public ----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> "EmbeddingClusterer":
        """Fit scaler, reducer and clusterer on ``X`` ``(n_points, n_features)``; ``y`` is ignored.

        Returns ``self``.
        """
        from reprlab.capabilities.clustering.metrics import label_free_scores

        self.check_params()
        X = self._validate_points(X, reset=True)
        n, d = X.shape
        ks = self._candidate_ks(n)
        self.timings_: dict[str, float] = {}
        self.scaler_ = None
        t0 = time.process_time()
        Xs = self._scale(X, fit=True)
        self.reducer_ = self._make_reducer(n, d)
        if self.reducer_ is None:
            Z = Xs
        else:
            Z = np.asarray(self.reducer_.fit_transform(Xs), dtype=np.float64)
        self.timings_["reduce_cpu_s"] = round(time.process_time() - t0, 3)
        self.embedding_ = Z
        if len(ks) == 1 and ks[0] > Z.shape[0]:
            raise ConfigError(f"n_clusters={ks[0]} is more than the {Z.shape[0]} points to cluster",
                              fix=f"set n_clusters to at most {Z.shape[0]}")
        t0 = time.process_time()
        best: tuple[float, int, Any, np.ndarray] | None = None
        self.k_scores_: dict[int, float] = {}
        for k in ks:
            model = self._make_clusterer(k)
            labels = np.asarray(model.fit_predict(Z))
            if len(ks) == 1:
                best = (0.0, k, model, labels)
                break
            value = self._criterion_value(Z, model, labels)
            self.k_scores_[k] = value
            key = value if self.criterion == "silhouette" else -value
            if np.isfinite(key) and (best is None or key > best[0]):
                best = (key, k, model, labels)
            logger.debug("n_clusters=%d: %s=%.4g", k, self.criterion, value)
        if best is None:
            raise DataError(f"no k in {ks[0]}..{ks[-1]} gave a finite {self.criterion}",
                            fix="the points may be identical; check the embeddings or give n_clusters")
        _, self.n_clusters_, self.clusterer_, self.labels_ = best
        self.labels_ = self.labels_.astype(np.int64)
        self.timings_["cluster_cpu_s"] = round(time.process_time() - t0, 3)
        if len(ks) > 1:
            logger.info("n_clusters='auto' (%s over k=%d..%d) chose %d", self.criterion, ks[0], ks[-1], self.n_clusters_)
        self.scores_ = label_free_scores(Z, self.labels_, gmm=self.clusterer_ if self.clusterer == "gmm" else None,
                                         sample_size=self.silhouette_sample, random_state=self.random_state)
        return self

    def fit_predict(self, X: Any, y: Any = None, **kwargs: Any) -> np.ndarray:
        """Fit on ``X`` and return the cluster of every point (``labels_``)."""
        return self.fit(X).labels_

    def fit_transform(self, X: Any, y: Any = None, **kwargs: Any) -> np.ndarray:
        """Fit on ``X`` and return the reduced coordinates the clusterer saw (``embedding_``)."""
        return self.fit(X).embedding_

    def _check_fitted(self) -> None:
        if not hasattr(self, "clusterer_"):
            raise NotFittedClustererError("this EmbeddingClusterer is not fitted yet", fix="call fit(X) first")

    def transform(self, X: Any) -> np.ndarray:
        """The reduced coordinates of new points (scaled and embedded like the fitted ones)."""
        self._check_fitted()
        X = self._validate_points(X, reset=False)
        if self.reducer_ is not None and not hasattr(self.reducer_, "transform"):
            name = type(self.reducer_).__name__
            raise ConfigError(f"the reducer {name} cannot embed new points (it has no transform), so predict "
                              "cannot place them",
                              fix="fit_predict on all points at once, or use reducer='umap', 'pca', 'kpca' or "
                                  "'tsne' (openTSNE's transform)")
        Xs = self._scale(X, fit=False)
        if self.reducer_ is None:
            return Xs
        return np.asarray(self.reducer_.transform(Xs), dtype=np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """Cluster of each new point: scaled, embedded with the fitted reducer, assigned by the clusterer.

        Raises :class:`ConfigError` for an agglomerative clusterer (it cannot assign new
        points) or a reducer that cannot embed them.
        """
        self._check_fitted()
        if not hasattr(self.clusterer_, "predict"):
            raise ConfigError(f"clusterer={self.clusterer!r} cannot assign new points (it has no predict)",
                              fix="fit_predict on all points at once, or use clusterer='gmm' or 'kmeans'")
        Z = self.transform(X)
        return np.asarray(self.clusterer_.predict(Z)).astype(np.int64)

    @available_if(_gmm_only)
    def predict_proba(self, X: Any) -> np.ndarray:
        """Posterior cluster probabilities of new points (only with ``clusterer="gmm"``)."""
        self._check_fitted()
        return np.asarray(self.clusterer_.predict_proba(self.transform(X)))

    def score(self, X: Any, y: Any = None) -> float:
        """Accuracy under the best cluster-to-class matching when ``y`` is given, else the silhouette of ``X``."""
        from reprlab.capabilities.clustering.metrics import cluster_accuracy, silhouette

        pred = self.predict(X)
        if y is not None:
            return cluster_accuracy(y, pred)
        return silhouette(self.transform(X), pred, sample_size=self.silhouette_sample, random_state=self.random_state)
