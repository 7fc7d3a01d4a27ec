"""Embeddings: encode a dataset with a model and reduce the codes to 2-D (or n-D).

:func:`encode_dataset` turns images into latent codes ``(N, d)``; :class:`Reducer` is a
scikit-learn-style estimator over four methods:

* ``"pca"`` (scikit-learn ``PCA``; randomized solver for large inputs),
* ``"kpca"`` (scikit-learn ``KernelPCA``, ``kernel`` and ``gamma`` configurable). Its
  kernel matrix grows as N², so above ``max_fit_points`` (default 5,000) it is *fitted* on
  a seeded random subsample and every point is then placed with ``KernelPCA.transform``
  (a Nyström-style out-of-sample extension); a warning says so. Asking for a kernel PCA
  fit on more than :data:`KPCA_HARD_LIMIT` points is a :class:`~reprlab.base.errors.ConfigError`.
* ``"tsne"`` (openTSNE, FFT-accelerated; ``transform`` places new points into the
  existing map with ``TSNEEmbedding.transform``),
* ``"umap"`` (umap-learn; ``transform`` supported).

Too few points for ``perplexity`` / ``n_neighbors`` lowers them with a logged notice.

Example:
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(200, 8))
    >>> r = Reducer("pca", n_components=2).fit(X)
    >>> r.transform(X[:5]).shape, r.n_features_in_
    ((5, 2), 8)
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from reprlab.data.dataset import ImageData
from reprlab.base.errors import ConfigError, DataError, ModelError
from reprlab.models.base import to_model_range
from reprlab.base.validation import check_choice, check_float, check_int

logger = logging.getLogger(__name__)

__all__ = ["METHODS", "KPCA_DEFAULT_FIT_POINTS", "KPCA_HARD_LIMIT", "Reducer", "encode_dataset", "reduce"]

METHODS: tuple[str, ...] = ("pca", "kpca", "tsne", "umap")
#: Kernel PCA is fitted on at most this many points unless ``max_fit_points`` says otherwise.
KPCA_DEFAULT_FIT_POINTS = 5000
#: Kernel PCA is never fitted on more points than this (the kernel matrix alone is 3.2 GB).
KPCA_HARD_LIMIT = 20000
KPCA_KERNELS: tuple[str, ...] = ("rbf", "poly", "sigmoid", "cosine", "linear")


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def encode_dataset(model: nn.Module, data: ImageData | torch.Tensor, batch_size: int = 256,
                   device: str | torch.device | None = None) -> np.ndarray:
    """Latent codes of every image of ``data`` as a float32 array ``(N, d)``.

    ``data`` is an :class:`ImageData` or an ``(N, C, H, W)`` tensor in ``[0, 1]``. Images
    are mapped to the model's range and encoded with ``model.encode`` (the posterior mean
    for VAEs) in eval mode without gradients; codes of any shape are flattened per image.
    ``device`` defaults to the model's device. Raises :class:`ModelError` for NaN codes.

    Example:
        >>> import torch
        >>> from reprlab.models import create_model
        >>> m = create_model("fc_ae", input_shape=(1, 8, 8), latent_dim=3)
        >>> encode_dataset(m, torch.rand(10, 1, 8, 8), batch_size=4).shape
        (10, 3)
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}", fix="e.g. batch_size=256")
    if isinstance(data, ImageData):
        n = len(data)
        get = data.float01
        shape = data.shape
    elif isinstance(data, torch.Tensor) and data.ndim == 4:
        n = int(data.shape[0])
        shape = tuple(data.shape[1:])

        def get(index: slice) -> torch.Tensor:
            return data[index].float()
    else:
        raise DataError(f"encode_dataset expects an ImageData or an (N, C, H, W) tensor, got "
                        f"{type(data).__name__}{'' if not hasattr(data, 'shape') else ' of shape ' + str(tuple(data.shape))}",
                        fix="wrap images with reprlab.data.dataset.ImageData(images, labels)")
    expected = getattr(getattr(model, "config", None), "input_shape", None)
    if expected is not None and tuple(expected) != tuple(shape):
        raise ModelError(f"the model was built for images of shape {tuple(expected)} but the data has shape {tuple(shape)}",
                         fix="encode data prepared like the training data (same data.resize / data.channels)")
    dev = torch.device(device) if device is not None else _model_device(model)
    model.to(dev)
    was_training = model.training
    model.eval()
    parts: list[np.ndarray] = []
    try:
        with torch.no_grad():
            for start in range(0, n, batch_size):
                x = to_model_range(get(slice(start, start + batch_size)).to(dev), model)
                z = model.encode(x)
                parts.append(z.reshape(z.shape[0], -1).float().cpu().numpy())
    finally:
        model.train(was_training)
    codes = np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
    if not np.isfinite(codes).all():
        raise ModelError("the model produced NaN or infinite latent codes",
                         fix="the model has diverged or its checkpoint is corrupt; retrain or load another checkpoint")
    return codes


def _as_2d(X: Any, what: str = "X") -> np.ndarray:
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{what} must be a numeric array", fix="pass an (n_points, n_features) array") from None
    if arr.ndim == 0:
        raise DataError(f"{what} must be an (n_points, n_features) array, got a scalar",
                        fix="pass an (n_points, n_features) array")
    if arr.ndim == 1:
        arr = arr[:, None]
    elif arr.ndim > 2:
        arr = arr.reshape(arr.shape[0], -1)
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"{what} is empty (shape {arr.shape})", fix="pass at least a few points with features")
    if not np.isfinite(arr).all():
        raise DataError(f"{what} contains NaN or infinite values", fix="remove those points before reducing")
    return arr


class Reducer:
    """Dimensionality reduction with a scikit-learn-style interface (fit / transform).

    ``method`` is ``"pca"``, ``"kpca"``, ``"tsne"`` (openTSNE) or ``"umap"``.
    ``max_fit_points`` caps the number of points the method is fitted on (a seeded random
    subsample; the rest is placed with ``transform``); ``None`` means no cap except for
    kernel PCA, whose default cap is :data:`KPCA_DEFAULT_FIT_POINTS`. ``n_jobs`` threads
    are used by t-SNE and UMAP (UMAP is single-threaded when ``random_state`` is set,
    which keeps it reproducible).

    Fitted attributes: ``estimator_`` (the underlying model), ``embedding_`` (coordinates
    of the fitted points), ``fit_indices_`` (their rows in the fitted ``X``; ``None`` when all
    were used), ``n_features_in_``, ``n_fit_points_`` and the effective ``perplexity_`` /
    ``n_neighbors_``.

    Example:
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(300, 5))
        >>> r = Reducer("kpca", gamma=0.1, max_fit_points=100)
        >>> r.fit_transform(X).shape, r.n_fit_points_
        ((300, 2), 100)
    """

    def __init__(self, method: str = "pca", n_components: int = 2, *, kernel: str = "rbf",
                 gamma: float | None = None, perplexity: float = 30.0, n_neighbors: int = 15,
                 min_dist: float = 0.1, max_fit_points: int | None = None, n_jobs: int = 1,
                 random_state: int | None = 0) -> None:
        self.method = method
        self.n_components = n_components
        self.kernel = kernel
        self.gamma = gamma
        self.perplexity = perplexity
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.max_fit_points = max_fit_points
        self.n_jobs = n_jobs
        self.random_state = random_state

    # -- sklearn plumbing ------------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments (scikit-learn convention)."""
        return {k: getattr(self, k) for k in ("method", "n_components", "kernel", "gamma", "perplexity",
                                              "n_neighbors", "min_dist", "max_fit_points", "n_jobs", "random_state")}

    def set_params(self, **params: Any) -> "Reducer":
        """Set constructor arguments (scikit-learn convention)."""
        valid = self.get_params()
        for key, value in params.items():
            if key not in valid:
                raise ConfigError(f"Reducer has no parameter {key!r}", fix=f"use one of {', '.join(valid)}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        return f"Reducer(method={self.method!r}, n_components={self.n_components})"

    # -- validation ------------------------------------------------------------------------
    def _validate(self, n: int, d: int) -> None:

        check_choice("method", self.method, METHODS)
        check_int("n_components", self.n_components, minimum=1)
        check_int("n_jobs", self.n_jobs, minimum=-1)
        if self.max_fit_points is not None:
            check_int("max_fit_points", self.max_fit_points, minimum=2)
        if self.method == "pca" and self.n_components > min(n, d):
            raise ConfigError(f"PCA cannot give {self.n_components} components from {n} points with {d} features",
                              fix=f"set n_components to at most {min(n, d)}")
        if self.method == "kpca":
            check_choice("kernel", self.kernel, KPCA_KERNELS)
            if self.gamma is not None:
                check_float("gamma", self.gamma, minimum=0.0, exclusive_min=True)
            if self.max_fit_points is not None and self.max_fit_points > KPCA_HARD_LIMIT and n > KPCA_HARD_LIMIT:
                gib = min(n, self.max_fit_points) ** 2 * 8 / 2**30
                raise ConfigError(f"kernel PCA on {min(n, self.max_fit_points)} points needs a {gib:.0f} GiB kernel matrix",
                                  fix=f"set max_fit_points to at most {KPCA_HARD_LIMIT} (the rest is placed with "
                                      f"transform), or leave it unset for the automatic {KPCA_DEFAULT_FIT_POINTS}-point "
                                      f"subsample, or use method=pca/tsne/umap")
        if self.method == "tsne":
            check_float("perplexity", self.perplexity, minimum=0.0, exclusive_min=True)
        if self.method == "umap":
            check_int("n_neighbors", self.n_neighbors, minimum=2)
            check_float("min_dist", self.min_dist, minimum=0.0)
        if self.method in ("tsne", "umap", "kpca") and n < 4:
            raise ConfigError(f"{self.method} needs at least 4 points, got {n}", fix="give it at least 4 points (e.g. more images), or use method=pca")
        if self.method in ("tsne", "umap") and self.n_components >= n - 1:
            raise ConfigError(f"{self.method} cannot embed {n} points in {self.n_components} dimensions",
                              fix="use more points or fewer components")

    def _fit_limit(self) -> int | None:
        if self.max_fit_points is not None:
            return int(self.max_fit_points)
        return KPCA_DEFAULT_FIT_POINTS if self.method == "kpca" else None

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> "Reducer":
        """Fit on ``X`` ``(n_points, n_features)``; returns ``self``."""
        self._fit(X)
        return self

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit on ``X`` and return the coordinates of every row of ``X`` ``(n_points, n_components)``."""
        X = _as_2d(X)
        self._fit(X)
        if self.fit_indices_ is None:
            return self.embedding_.copy()
        out = np.empty((X.shape[0], self.embedding_.shape[1]), dtype=np.float64)
        rest = np.setdiff1d(np.arange(X.shape[0]), self.fit_indices_)
        out[self.fit_indices_] = self.embedding_
        if rest.size:
            out[rest] = self.transform(X[rest])
        return out

    def _fit(self, X: Any) -> None:
        X = _as_2d(X)
        n, d = X.shape
        self._validate(n, d)
        limit = self._fit_limit()
        self.fit_indices_: np.ndarray | None = None
        Xfit = X
        if limit is not None and n > limit:
            rng = np.random.default_rng(self.random_state)
            self.fit_indices_ = np.sort(rng.choice(n, size=limit, replace=False))
            Xfit = X[self.fit_indices_]
            logger.warning("%s: fitting on a random subsample of %d of %d points (max_fit_points=%d); the other "
                           "%d points are placed with transform", self.method, limit, n, limit, n - limit)
        self.n_features_in_ = d
        self.n_fit_points_ = int(Xfit.shape[0])
        self.perplexity_ = None
        self.n_neighbors_ = None
        fit = getattr(self, f"_fit_{self.method}")
        self.embedding_ = np.asarray(fit(Xfit), dtype=np.float64)

    def _fit_pca(self, X: np.ndarray) -> np.ndarray:
        from sklearn.decomposition import PCA

        solver = "randomized" if X.shape[0] > 2000 and self.n_components < min(X.shape) // 2 else "full"
        self.estimator_ = PCA(n_components=self.n_components, svd_solver=solver, random_state=self.random_state)
        return self.estimator_.fit_transform(X)

    def _fit_kpca(self, X: np.ndarray) -> np.ndarray:
        from sklearn.decomposition import KernelPCA

        n_comp = min(self.n_components, X.shape[0] - 1)
        solver = "randomized" if X.shape[0] > 1000 and n_comp < 20 else "auto"
        self.estimator_ = KernelPCA(n_components=n_comp, kernel=self.kernel, gamma=self.gamma,
                                    eigen_solver=solver, random_state=self.random_state)
        return self.estimator_.fit_transform(X)

    def _fit_tsne(self, X: np.ndarray) -> np.ndarray:
        import openTSNE

        n = X.shape[0]
        perplexity = float(self.perplexity)
        max_perp = (n - 1) / 3.0
        if perplexity > max_perp:
            logger.warning("tsne: perplexity %.3g is too high for %d points; using %.3g instead",
                           perplexity, n, max_perp)
            perplexity = max_perp
        self.perplexity_ = perplexity
        gradient = "auto" if self.n_components <= 2 else "bh"  # openTSNE: BH below 10,000 points, FFT above
        tsne = openTSNE.TSNE(n_components=self.n_components, perplexity=perplexity, n_jobs=self.n_jobs,
                             random_state=self.random_state, negative_gradient_method=gradient, verbose=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.estimator_ = tsne.fit(X.astype(np.float32) if n > 20000 else X)
        return np.asarray(self.estimator_)

    def _fit_umap(self, X: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import umap

            n = X.shape[0]
            k = int(self.n_neighbors)
            if k >= n:
                logger.warning("umap: n_neighbors %d is too high for %d points; using %d instead", k, n, n - 1)
                k = n - 1
            self.n_neighbors_ = k
            self.estimator_ = umap.UMAP(n_components=self.n_components, n_neighbors=k, min_dist=self.min_dist,
                                        random_state=self.random_state,
                                        n_jobs=1 if self.random_state is not None else self.n_jobs)
            return self.estimator_.fit_transform(X.astype(np.float32))

    # -- transform -------------------------------------------------------------------------
    def transform(self, X: Any) -> np.ndarray:
        """Coordinates of new points in the fitted map ``(n_points, n_components)``.

        t-SNE places them with openTSNE's ``TSNEEmbedding.transform`` (the existing map is
        kept fixed); PCA, kernel PCA and UMAP use their own ``transform``.
        """
        if not hasattr(self, "estimator_"):
            raise ConfigError("this Reducer is not fitted yet", fix="call fit(X) or fit_transform(X) first")
        X = _as_2d(X)
        if X.shape[1] != self.n_features_in_:
            raise DataError(f"X has {X.shape[1]} features but the Reducer was fitted on {self.n_features_in_}",
                            fix="transform codes of the same model (same latent size)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.method == "tsne":
                perplexity = min(5.0, max(1.0, (self.n_fit_points_ - 1) / 3.0))
                k = min(25, self.n_fit_points_ - 1)
                out = self.estimator_.transform(X, perplexity=perplexity, k=k)
            elif self.method == "umap":
                out = self.estimator_.transform(X.astype(np.float32))
            elif self.method == "kpca":
                # the kernel against the fitted points is (n, n_fit): transform in chunks of ~256 MB
                step = max(1, int(2**25 // max(1, self.n_fit_points_)))
                out = np.concatenate([self.estimator_.transform(X[i:i + step]) for i in range(0, X.shape[0], step)])
            else:
                out = self.estimator_.transform(X)
        return np.asarray(out, dtype=np.float64)


def reduce(X: Any, method: str = "pca", n_components: int = 2, **options: Any) -> np.ndarray:
    """Shortcut: ``Reducer(method, n_components, **options).fit_transform(X)``.

    Example:
        >>> import numpy as np
        >>> reduce(np.eye(5), "pca").shape
        (5, 2)
    """
    return Reducer(method, n_components, **options).fit_transform(X)
