"""Generation metrics on offline features: Fréchet distance, KID, precision/recall, class coverage, memorisation.

All metrics compare *generated* images with *real* ones in the feature space of the
run's offline :class:`~reprlab.capabilities.generation.features.FeatureNet` (trained on
the real training images; see that module):

* ``fd``: the Fréchet distance between Gaussians fitted to real and generated features
  (torchmetrics' ``FrechetInceptionDistance`` with our network as its custom ``feature``
  module; the features are computed once and passed through an identity module so the
  same features serve every metric);
* ``kid`` / ``kid_std``: the kernel (polynomial, degree 3) distance of torchmetrics'
  ``KernelInceptionDistance``, mean and std over seeded subsets;
* ``precision`` / ``recall`` (Kynkäänniemi et al. 2019): the share of generated images
  inside the real manifold (union of balls around each real feature with the radius of its
  ``k``-th nearest real neighbour), and the share of real images inside the generated
  manifold. The radii come from :func:`reprlab.features.neighbors.knn_search`; the ball
  membership is a chunked distance matrix (exact, like the authors' code);
* ``coverage`` / ``max_class_share`` (labelled data): the samples' classes as predicted by
  the feature network's head; ``coverage`` is the share of classes that receive at least
  half of their fair share ``1 / (2 K)`` of the samples; ``class_shares`` (in the details)
  the share of each class. The evaluator adds the same for the *real* reference images
  (``real_max_class_share``, ``real_class_shares``): the yardstick a sample share is read
  against, since an imperfect classifier does not split even a balanced real set evenly;
* ``diversity``: mean pairwise feature distance among the samples over that among real
  images (near 1 for a healthy generator, near 0 under mode collapse);
* memorisation (with training features): each sample's distance to its nearest training
  image against the test images' distances to theirs: ``memorisation_ratio`` is the ratio
  of the medians (< 1: samples are closer to the training set than new real images are)
  and ``memorised_share`` the share of samples closer than the 5th percentile of the test
  images' distances (about 0.05 without memorisation).

Example:
    >>> import torch
    >>> real = torch.randn(200, 8)
    >>> m = metrics_from_features(real[:100], real[100:], k=3)
    >>> sorted(m)[:4], m["fd"] < 5
    (['diversity', 'fd', 'kid', 'kid_std'], True)
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from reprlab.base.errors import ConfigError, DataError
from reprlab.base.validation import check_int
from reprlab.capabilities.generation.features import FeatureNet, extract
from reprlab.data.dataset import ImageData
from reprlab.features.neighbors import knn_search

logger = logging.getLogger(__name__)

__all__ = ["GenerationEvaluator", "kid", "frechet_distance", "manifold_precision_recall", "metrics_from_features"]


class _Precomputed(nn.Module):
    """Identity 'feature extractor' for torchmetrics: we hand it features computed once."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = int(num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _check_features(name: str, f: torch.Tensor, minimum: int = 2) -> torch.Tensor:
    f = torch.as_tensor(f, dtype=torch.float32)
    if f.ndim != 2 or f.shape[0] < minimum:
        raise DataError(f"{name} must be at least {minimum} feature vectors (N, d), got shape {tuple(f.shape)}",
                        fix=f"generate or pass at least {minimum} images")
    if not torch.isfinite(f).all():
        raise DataError(f"{name} contain NaN or infinite values (non-finite generated images?)",
                        fix="check the generator's output; a diverged GAN produces NaN")
    return f


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (torchmetrics).

    Example:
        >>> x = torch.randn(500, 4, generator=torch.Generator().manual_seed(0))
        >>> round(frechet_distance(x, x), 4), frechet_distance(x, x + 3) > 30
        (0.0, True)
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    real, fake = _check_features("real features", real), _check_features("generated features", fake)
    metric = FrechetInceptionDistance(feature=_Precomputed(real.shape[1]), normalize=True)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    return max(0.0, float(metric.compute()))


def kid(real: torch.Tensor, fake: torch.Tensor, *, subsets: int = 50, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (mean, std over ``subsets`` seeded subsets), via torchmetrics."""
    from torchmetrics.image.kid import KernelInceptionDistance

    real, fake = _check_features("real features", real), _check_features("generated features", fake)
    size = min(int(subset_size), real.shape[0], fake.shape[0])
    with warnings.catch_warnings():  # "KID keeps all features in memory": ours are a few thousand vectors
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(feature=_Precomputed(real.shape[1]), subsets=subsets, subset_size=size,
                                         normalize=True)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))  # torchmetrics draws the subsets from the global generator
        mean, std = metric.compute()
    return float(mean), float(std)


def _inside_any_ball(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    inside = []
    for start in range(0, points.shape[0], chunk):
        d = torch.cdist(points[start:start + chunk], centres)
        inside.append((d <= radii[None, :]).any(1))
    return torch.cat(inside)


def manifold_precision_recall(real: torch.Tensor, fake: torch.Tensor, *, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with ``k``-NN radii.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> a, b = torch.randn(300, 2, generator=g), torch.randn(300, 2, generator=g)
        >>> p, r = manifold_precision_recall(a, b)
        >>> p > 0.8 and r > 0.8
        True
    """
    real, fake = _check_features("real features", real, k + 1), _check_features("generated features", fake, k + 1)
    r_real = knn_search(real, real, k, exclude_self=True)[0][:, -1]
    r_fake = knn_search(fake, fake, k, exclude_self=True)[0][:, -1]
    precision = _inside_any_ball(fake, real, r_real).float().mean()
    recall = _inside_any_ball(real, fake, r_fake).float().mean()
    return float(precision), float(recall)


def _mean_pairwise(f: torch.Tensor, max_points: int = 1000) -> float:
    f = f[:max_points]
    d = torch.cdist(f, f)
    n = f.shape[0]
    return float(d.sum() / max(1, n * (n - 1)))


def metrics_from_features(real: torch.Tensor, fake: torch.Tensor, *, k: int = 3, kid_subsets: int = 50,
                          seed: int = 0, fake_logits: torch.Tensor | None = None, num_classes: int | None = None,
                          train: torch.Tensor | None = None, real_nn_train: torch.Tensor | None = None
                          ) -> dict[str, Any]:
    """Every generation metric from feature sets (see the module docstring).

    ``fake_logits`` (with ``num_classes``) adds class coverage; ``train`` (training features)
    with ``real_nn_train`` (the real images' distances to their nearest training image) adds
    the memorisation check. Returns floats, plus ``class_shares`` (a list) when coverage is on.
    """
    real, fake = _check_features("real features", real), _check_features("generated features", fake)
    out: dict[str, Any] = {"fd": frechet_distance(real, fake)}
    out["kid"], out["kid_std"] = kid(real, fake, subsets=kid_subsets, seed=seed)
    out["precision"], out["recall"] = manifold_precision_recall(real, fake, k=k)
    out["diversity"] = _mean_pairwise(fake) / max(_mean_pairwise(real), 1e-12)
    if fake_logits is not None and num_classes:
        pred = fake_logits.argmax(1)
        shares = torch.bincount(pred, minlength=int(num_classes)).float() / len(pred)
        out["coverage"] = int((shares >= 0.5 / num_classes).sum()) / int(num_classes)
        out["max_class_share"] = float(shares.max())
        out["class_shares"] = [round(float(s), 4) for s in shares]
    if train is not None and real_nn_train is not None:
        d_fake = knn_search(fake, train, 1)[0][:, 0]
        out["memorisation_ratio"] = float(d_fake.median() / real_nn_train.median().clamp_min(1e-12))
        out["memorised_share"] = float((d_fake < torch.quantile(real_nn_train, 0.05)).float().mean())
    return out


@dataclass
class GenerationEvaluator:
    """Scores generated images against fixed real images with a feature network.

    ``real`` are the reference images (the test split, in [0, 1]); ``train`` (optional)
    the training images for the memorisation check. Real features are computed once, so
    one evaluator can score every epoch of a run.

    Example:
        >>> import torch
        >>> from reprlab.data.dataset import ImageData
        >>> from reprlab.capabilities.generation.features import train_feature_net
        >>> data = ImageData(torch.rand(80, 1, 12, 12), torch.arange(80) % 2)
        >>> ev = GenerationEvaluator(train_feature_net(data, epochs=1, width=4, feature_dim=8), data, kid_subsets=5)
        >>> sorted(ev.evaluate(torch.rand(40, 1, 12, 12)))[:3]
        ['class_shares', 'coverage', 'diversity']
    """

    net: FeatureNet
    real: ImageData | torch.Tensor
    train: ImageData | torch.Tensor | None = None
    k: int = 3
    kid_subsets: int = 50
    seed: int = 0
    max_real: int | None = 5000
    max_train: int | None = 20000
    real_features: torch.Tensor = field(init=False)
    real_class_shares: list[float] | None = field(init=False, default=None)
    train_features: torch.Tensor | None = field(init=False, default=None)
    real_nn_train: torch.Tensor | None = field(init=False, default=None)
    train_images: torch.Tensor | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        check_int("k", self.k, minimum=1)
        real = self._images(self.real, self.max_real)
        self.real_features, real_logits = extract(self.net, real, logits=True)
        if self.labelled:
            shares = torch.bincount(real_logits.argmax(1), minlength=self.net.num_outputs).float() / len(real_logits)
            self.real_class_shares = [round(float(v), 4) for v in shares]
        if self.train is not None:
            self.train_images = self._images(self.train, self.max_train)
            self.train_features = extract(self.net, self.train_images)
            self.real_nn_train = knn_search(self.real_features, self.train_features, 1)[0][:, 0]

    def _images(self, data: ImageData | torch.Tensor, limit: int | None) -> torch.Tensor:
        x = data.float01() if isinstance(data, ImageData) else torch.as_tensor(data).float()
        if limit is not None and x.shape[0] > limit:
            idx = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(self.seed))[:limit]
            x = x[idx]
        return x

    @property
    def labelled(self) -> bool:
        return self.net.objective == "classes"

    def features(self, images01: torch.Tensor) -> torch.Tensor:
        return extract(self.net, images01)

    def evaluate(self, samples01: torch.Tensor, *, details: bool = True) -> dict[str, Any]:
        """Every metric of ``samples01`` (generated images in [0, 1]); ``details`` keeps ``class_shares``."""
        x = torch.as_tensor(samples01).float()
        if x.ndim != 4:
            raise DataError(f"generated images must be (N, C, H, W), got shape {tuple(x.shape)}",
                            fix="pass a batch of images")
        if x.shape[0] <= self.k:
            raise ConfigError(f"{x.shape[0]} generated images are too few for k={self.k} neighbours",
                              fix="generate more samples (generation.n_samples)")
        feats, logits = extract(self.net, x, logits=True)
        out = metrics_from_features(self.real_features, feats, k=self.k, kid_subsets=self.kid_subsets, seed=self.seed,
                                    fake_logits=logits if self.labelled else None,
                                    num_classes=self.net.num_outputs if self.labelled else None,
                                    train=self.train_features, real_nn_train=self.real_nn_train)
        if self.real_class_shares is not None:
            out["real_max_class_share"] = max(self.real_class_shares)
            if details:
                out["real_class_shares"] = list(self.real_class_shares)
        if not details:
            out.pop("class_shares", None)
        return out

    def nearest_training(self, samples01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Distance and index (into ``train_images``) of each sample's nearest training image."""
        if self.train_features is None:
            raise ConfigError("the memorisation check needs the training images", fix="pass train= to the evaluator")
        d, i = knn_search(self.features(samples01), self.train_features, 1)
        return d[:, 0], i[:, 0]
