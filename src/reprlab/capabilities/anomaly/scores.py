"""Anomaly scores of images under a trained model; higher always means more anomalous.

Per-image scores straight from a model:

* :func:`reconstruction_error`: MSE, L1 or 1 - SSIM between each image and its
  deterministic reconstruction (any registry model);
* :func:`negative_elbo`: ``-ELBO`` in nats per image (variational models);
* :func:`transformation_nll`: the mean negative log-likelihood of the correct
  transformations under a self-supervised transformation classifier (``rotnet``).

Scores in latent space, fitted on the codes of normal images (:func:`latent_codes`) or on
model-free descriptors (:func:`image_descriptors`: blurred pixels, gradient histograms):

* :class:`KNNScorer`: mean distance to the ``k`` nearest normal codes;
* :class:`KMeansScorer`: distance to the nearest KMeans centroid;
* :class:`PCAScorer`: reconstruction error of a PCA of the (standardised) codes.

All functions take images as an :class:`~reprlab.data.dataset.ImageData` or a float
tensor ``(N, C, H, W)`` in ``[0, 1]``; models working in ``(-1, 1)`` get their inputs
mapped. Models run in eval mode without gradients, and their train/eval mode is restored.

Example:
    >>> import torch
    >>> from reprlab.models import create_model
    >>> m = create_model("fc_ae", input_shape=(1, 8, 8), latent_dim=2)
    >>> x = torch.rand(6, 1, 8, 8)
    >>> reconstruction_error(m, x, metric="mse").shape
    (6,)
    >>> KNNScorer(n_neighbors=2).fit(latent_codes(m, x)).score(latent_codes(m, x[:2])).shape
    (2,)
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch import nn

from reprlab.base.errors import ConfigError, DataError, ModelError
from reprlab.base.validation import check_choice, check_int
from reprlab.evaluation.reconstruction import per_image_metrics, reconstruct01, to_model_range
# the descriptors moved to reprlab.features.descriptors; re-exported here, where users imported them
from reprlab.features.descriptors import (as_images01, gaussian_blur, gradient_histograms, image_descriptors,  # noqa: F401
                                          scattering_coefficients)
from reprlab.features.neighbors import knn_search

logger = logging.getLogger(__name__)

__all__ = [
    "KMeansScorer",
    "KNNScorer",
    "PCAScorer",
    "RECONSTRUCTION_METRICS",
    "as_images01",
    "gaussian_blur",
    "gradient_histograms",
    "image_descriptors",
    "latent_codes",
    "negative_elbo",
    "reconstruction_error",
    "scattering_coefficients",
    "transformation_nll",
    "transformation_nll_and_codes",
]

RECONSTRUCTION_METRICS: tuple[str, ...] = ("mse", "l1", "ssim")


# ----------------------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------------------
def _device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _check_shape(model: nn.Module, x: torch.Tensor) -> None:
    expected = getattr(getattr(model, "config", None), "input_shape", None)
    if expected is not None and tuple(expected) != tuple(x.shape[1:]):
        raise ModelError(f"{getattr(model, 'registry_name', type(model).__name__)} expects images of shape "
                         f"{tuple(expected)} but got {tuple(x.shape[1:])}",
                         fix="score images prepared like the training images (same size and channels)")


def _batched(model: nn.Module, images: Any, fn, batch_size: int) -> np.ndarray:
    """Apply ``fn(model, x_model_range) -> (B, ...)`` tensor over batches, in eval mode without gradients."""
    check_int("batch_size", batch_size, minimum=1)
    x = as_images01(images)
    _check_shape(model, x)
    device = _device(model)
    was_training = model.training
    model.eval()
    parts = []
    try:
        with torch.no_grad():
            for start in range(0, x.shape[0], batch_size):
                xb = to_model_range(x[start:start + batch_size].to(device), model)
                out = fn(model, xb)
                if not torch.isfinite(out).all():
                    raise ModelError(f"{getattr(model, 'registry_name', '?')} gives NaN or infinite values for images "
                                     f"{start}..{start + xb.shape[0] - 1}",
                                     fix="the model has diverged; retrain it with a lower learning rate")
                parts.append(out.detach().double().cpu())
    finally:
        model.train(was_training)
    return torch.cat(parts).numpy()


# ----------------------------------------------------------------------------------------
# per-image scores
# ----------------------------------------------------------------------------------------
def reconstruction_error(model: nn.Module, images: Any, *, metric: str = "mse", batch_size: int = 256) -> np.ndarray:
    """Per-image reconstruction error: ``mse``, ``l1`` (means per pixel) or ``ssim`` (1 - SSIM).

    Computed on images in ``[0, 1]`` exactly like :mod:`reprlab.evaluation.reconstruction`.

    Example:
        >>> import torch
        >>> from reprlab.models import create_model
        >>> m = create_model("fc_ae", input_shape=(1, 8, 8), latent_dim=2)
        >>> bool((reconstruction_error(m, torch.rand(3, 1, 8, 8), metric="ssim") >= 0).all())
        True
    """
    check_choice("metric", metric, RECONSTRUCTION_METRICS)
    check_int("batch_size", batch_size, minimum=1)
    x = as_images01(images)
    _check_shape(model, x)
    out = []
    for start in range(0, x.shape[0], batch_size):
        xb = x[start:start + batch_size]
        m = per_image_metrics(xb, reconstruct01(model, xb, batch_size=batch_size))
        out.append((1.0 - m["ssim"]) if metric == "ssim" else m[metric])
    return torch.cat(out).numpy().astype(np.float64)


def negative_elbo(model: nn.Module, images: Any, *, batch_size: int = 256) -> np.ndarray:
    """``-ELBO`` per image in nats (higher = less likely under the VAE = more anomalous).

    Uses ``extras["elbo_per_image"]`` of the model's forward when present; otherwise
    ``model.nll`` and the Gaussian KL of ``extras["mu"]``/``["logvar"]``. In eval mode a
    VAE draws its posterior sample with a fixed seed, so the score is deterministic.

    Example:
        >>> import torch
        >>> from reprlab.models import create_model
        >>> vae = create_model("vae", input_shape=(1, 8, 8), latent_dim=2, arch="fc")
        >>> negative_elbo(vae, torch.rand(4, 1, 8, 8)).shape
        (4,)
    """
    if not getattr(model, "is_variational", False):
        raise ConfigError(f"score 'elbo' needs a variational model, but {getattr(model, 'registry_name', '?')} is not one",
                          fix="use model='vae' or 'beta_vae', or a reconstruction score (mse, l1, ssim)")

    def fn(m: nn.Module, xb: torch.Tensor) -> torch.Tensor:
        out = m(xb)
        if "elbo_per_image" in out.extras:
            return -out.extras["elbo_per_image"].reshape(-1)
        mu, logvar = out.extras.get("mu"), out.extras.get("logvar")
        if mu is None or logvar is None or not hasattr(m, "nll"):
            raise ModelError(f"{m.registry_name} gives no per-image ELBO (extras['elbo_per_image'])",
                             fix="add extras['elbo_per_image'] to the model's forward output")
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(1)
        logits = m.decode_logits(out.extras["z"]) if hasattr(m, "decode_logits") and "z" in out.extras else None
        return m.nll(xb, logits if logits is not None else out.reconstruction, out.reconstruction) + kl

    return _batched(model, images, fn, batch_size)


def transformation_nll(model: nn.Module, images: Any, *, batch_size: int = 256) -> np.ndarray:
    """Mean negative log-likelihood of the correct transformations per image (``rotnet``).

    Example:
        >>> import torch
        >>> from reprlab.models import create_model
        >>> m = create_model("rotnet", input_shape=(1, 8, 8), latent_dim=4, channels=(2,), transforms="rot")
        >>> transformation_nll(m, torch.rand(3, 1, 8, 8)).shape
        (3,)
    """
    if not callable(getattr(model, "transformation_nll", None)):
        raise ConfigError(f"score 'transform' needs a transformation classifier, but "
                          f"{getattr(model, 'registry_name', '?')} is not one",
                          fix="use model='rotnet', or another score (mse, knn, ...)")
    return _batched(model, images, lambda m, xb: m.transformation_nll(xb), batch_size)


def transformation_nll_and_codes(model: nn.Module, images: Any, *, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """:func:`transformation_nll` and the codes of every transformation (``views="all"``) in one pass.

    Example:
        >>> import torch
        >>> from reprlab.models import create_model
        >>> m = create_model("rotnet", input_shape=(1, 8, 8), latent_dim=4, channels=(2,), transforms="rot")
        >>> nll, codes = transformation_nll_and_codes(m, torch.rand(3, 1, 8, 8))
        >>> nll.shape, codes.shape
        ((3,), (3, 16))
    """
    if not callable(getattr(model, "nll_and_embedding", None)):
        raise ConfigError(f"{getattr(model, 'registry_name', '?')} is not a transformation classifier",
                          fix="use model='rotnet'")

    def fn(m: nn.Module, xb: torch.Tensor) -> torch.Tensor:
        nll, codes = m.nll_and_embedding(xb)
        return torch.cat([nll[:, None], codes.flatten(1)], dim=1)

    both = _batched(model, images, fn, batch_size)
    return both[:, 0].copy(), both[:, 1:].copy()


def latent_codes(model: nn.Module, images: Any, *, batch_size: int = 256, views: str = "identity") -> np.ndarray:
    """Codes ``model.encode(x)`` as a float64 ``(N, D)`` array.

    ``views="all"`` asks a transformation classifier (``rotnet``) for the concatenated codes
    of every transformation of each image (:meth:`~reprlab.models.rotnet.RotNet.embed`),
    a richer description for the latent-space scores; other models ignore it.

    Example:
        >>> import torch
        >>> from reprlab.models import create_model
        >>> m = create_model("conv_ae", input_shape=(1, 8, 8), latent_dim=3, channels=(4,))
        >>> latent_codes(m, torch.rand(5, 1, 8, 8)).shape
        (5, 3)
    """
    check_choice("views", views, ("identity", "all"))
    if views == "all" and callable(getattr(model, "embed", None)):
        return _batched(model, images, lambda m, xb: m.embed(xb).flatten(1), batch_size)
    return _batched(model, images, lambda m, xb: m.encode(xb).flatten(1), batch_size)


# ----------------------------------------------------------------------------------------
# latent-space scorers
# ----------------------------------------------------------------------------------------
def _as_codes(z: Any, what: str = "codes") -> np.ndarray:
    a = np.asarray(z, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0:
        raise DataError(f"{what} must be a non-empty (N, D) array, got shape {a.shape}", fix="pass one code per row")
    if not np.isfinite(a).all():
        raise DataError(f"{what} contain NaN or infinite values", fix="check the model (it may have diverged)")
    return a


class _LatentScorer:
    """Base: ``fit(codes)`` on normal codes, ``score(codes)`` (higher = more anomalous)."""

    train_scores_: np.ndarray

    def _check_fitted(self) -> None:
        if not hasattr(self, "train_scores_"):
            raise ConfigError(f"{type(self).__name__} is not fitted", fix="call fit(normal_codes) first")

    def _check_dim(self, z: np.ndarray) -> None:
        if z.shape[1] != self.dim_:
            raise DataError(f"codes have {z.shape[1]} dimensions but the scorer was fitted on {self.dim_}",
                            fix="score codes from the same model as the fitted ones")


class KNNScorer(_LatentScorer):
    """Mean distance to the ``n_neighbors`` nearest normal codes.

    ``metric`` is ``"cosine"`` (1 - cosine similarity; codes are L2-normalised) or
    ``"euclidean"``. The training scores ``train_scores_`` leave each image itself out,
    so thresholds set from them match what unseen normal images get.

    Example:
        >>> z = np.array([[0.0, 1.0], [0.0, 1.1], [1.0, 0.0], [1.1, 0.0]])
        >>> KNNScorer(n_neighbors=1, metric="euclidean").fit(z).score([[0.0, 1.05], [5.0, 5.0]]).round(2).tolist()
        [0.05, 6.34]
    """

    def __init__(self, *, n_neighbors: int = 5, metric: str = "cosine", chunk: int = 2048) -> None:
        check_int("n_neighbors", n_neighbors, minimum=1)
        check_choice("metric", metric, ("cosine", "euclidean"))
        self.n_neighbors, self.metric, self.chunk = n_neighbors, metric, chunk

    def _prep(self, z: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(z).float()

    def _knn(self, q: torch.Tensor, exclude_self: bool) -> np.ndarray:
        distances, _ = knn_search(q, self.ref_, self.n_neighbors, metric=self.metric, exclude_self=exclude_self,
                                  chunk=self.chunk)
        return distances.mean(1).double().numpy()

    def fit(self, codes: Any) -> "KNNScorer":
        z = _as_codes(codes, "normal codes")
        if z.shape[0] < 2:
            raise DataError("k-NN scoring needs at least 2 normal images", fix="fit on more normal images")
        self.dim_ = z.shape[1]
        self.ref_ = self._prep(z)
        self.train_scores_ = self._knn(self.ref_, exclude_self=True)
        return self

    def score(self, codes: Any) -> np.ndarray:
        self._check_fitted()
        z = _as_codes(codes)
        self._check_dim(z)
        return self._knn(self._prep(z), exclude_self=False)


class KMeansScorer(_LatentScorer):
    """Euclidean distance to the nearest of ``n_clusters`` KMeans centroids of the normal codes.

    Example:
        >>> z = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
        >>> s = KMeansScorer(n_clusters=2, random_state=0).fit(z).score([[0.05, 0.0], [2.5, 2.5]])
        >>> bool(s[0] < s[1])
        True
    """

    def __init__(self, *, n_clusters: int = 10, random_state: int | None = 0) -> None:
        check_int("n_clusters", n_clusters, minimum=1)
        self.n_clusters, self.random_state = n_clusters, random_state

    def fit(self, codes: Any) -> "KMeansScorer":
        from sklearn.cluster import KMeans

        z = _as_codes(codes, "normal codes")
        k = min(self.n_clusters, z.shape[0])
        if k < self.n_clusters:
            logger.info("KMeans: %d normal images, so %d clusters instead of %d", z.shape[0], k, self.n_clusters)
        self.dim_ = z.shape[1]
        self.kmeans_ = KMeans(n_clusters=k, n_init=3, random_state=self.random_state).fit(z)
        self.train_scores_ = self.score(z)
        return self

    def score(self, codes: Any) -> np.ndarray:
        if not hasattr(self, "kmeans_"):
            raise ConfigError("KMeansScorer is not fitted", fix="call fit(normal_codes) first")
        z = _as_codes(codes)
        self._check_dim(z)
        return self.kmeans_.transform(z).min(axis=1)


class PCAScorer(_LatentScorer):
    """Squared reconstruction error of the standardised codes under a PCA of the normal codes.

    ``n_components`` is a count or a fraction of variance to keep (default 0.9); the
    codes are standardised with the normal codes' mean and standard deviation first.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> t = rng.normal(size=(200, 1))
        >>> z = np.hstack([t, 2 * t + 0.01 * rng.normal(size=(200, 1))])
        >>> s = PCAScorer(n_components=1).fit(z).score([[1.0, 2.0], [1.0, -2.0]])
        >>> bool(s[0] < s[1])
        True
    """

    def __init__(self, *, n_components: int | float = 0.9, random_state: int | None = 0) -> None:
        if isinstance(n_components, bool) or not isinstance(n_components, (int, float)) or n_components <= 0 or (
                isinstance(n_components, float) and n_components >= 1):
            raise ConfigError(f"n_components must be a positive integer or a fraction in (0, 1), got {n_components!r}",
                              fix="e.g. n_components=0.9 (keep 90% of the variance) or n_components=8")
        self.n_components, self.random_state = n_components, random_state

    def fit(self, codes: Any) -> "PCAScorer":
        from sklearn.decomposition import PCA

        z = _as_codes(codes, "normal codes")
        if z.shape[0] < 2:
            raise DataError("PCA scoring needs at least 2 normal images", fix="fit on more normal images")
        self.dim_ = z.shape[1]
        self.mean_ = z.mean(0)
        self.scale_ = z.std(0)
        self.scale_[self.scale_ < 1e-12] = 1.0
        n = self.n_components
        if isinstance(n, int):
            n = min(n, z.shape[1], z.shape[0])
        self.pca_ = PCA(n_components=n, random_state=self.random_state).fit((z - self.mean_) / self.scale_)
        self.train_scores_ = self.score(z)
        return self

    def score(self, codes: Any) -> np.ndarray:
        if not hasattr(self, "pca_"):
            raise ConfigError("PCAScorer is not fitted", fix="call fit(normal_codes) first")
        z = _as_codes(codes)
        self._check_dim(z)
        s = (z - self.mean_) / self.scale_
        rec = self.pca_.inverse_transform(self.pca_.transform(s))
        return ((s - rec) ** 2).sum(1)
