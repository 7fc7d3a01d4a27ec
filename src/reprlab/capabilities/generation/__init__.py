"""Generation: the ``dcgan``'s task, generation metrics on an offline feature network, GAN failure detection.

* :mod:`~reprlab.capabilities.generation.features`: the offline feature network (a small
  classifier of the training labels, or rotation prediction for unlabelled images),
  trained once and cached with a sha256 checksum;
* :mod:`~reprlab.capabilities.generation.metrics`: Fréchet distance and KID (torchmetrics),
  precision / recall of the sample manifold, class coverage, diversity, memorisation;
* :mod:`~reprlab.capabilities.generation.failures`: the discriminator wins, mode collapse,
  non-finite losses;
* :mod:`~reprlab.capabilities.generation.task`: the ``generate`` task, the ``generation``
  config section, the per-epoch monitor and the final report items;
* :mod:`~reprlab.capabilities.generation.plugin`: registers them (and the VAE post-run step).

Example:
    >>> from reprlab.capabilities.generation import frechet_distance
    >>> import torch
    >>> round(frechet_distance(torch.eye(4), torch.eye(4)), 6)
    0.0
"""

from __future__ import annotations

from reprlab.capabilities.generation.failures import Failure, detect_failures
from reprlab.capabilities.generation.features import FeatureNet, extract, feature_network, train_feature_net
from reprlab.capabilities.generation.metrics import (GenerationEvaluator, frechet_distance, kid,
                                                     manifold_precision_recall, metrics_from_features)
from reprlab.capabilities.generation.task import (GenerationConfig, evaluate_generation, generation_report,
                                                  is_generative, sample01, save_grid)

__all__ = ["Failure", "FeatureNet", "GenerationConfig", "GenerationEvaluator", "detect_failures",
           "evaluate_generation", "extract", "feature_network", "frechet_distance", "generation_report",
           "is_generative", "kid", "manifold_precision_recall", "metrics_from_features", "sample01", "save_grid",
           "train_feature_net"]
