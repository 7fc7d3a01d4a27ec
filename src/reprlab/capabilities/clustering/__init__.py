"""Clustering of learned embeddings: encode, (scale,) reduce, cluster, score.

* :mod:`~reprlab.capabilities.clustering.metrics`: accuracy under the best cluster-to-class matching
  (Hungarian), NMI (arithmetic normalisation), ARI, the aligned confusion matrix, and the
  label-free silhouette;
* :mod:`~reprlab.capabilities.clustering.estimator`: :class:`EmbeddingClusterer`, a scikit-learn
  estimator (scaling -> reducer -> KMeans / Gaussian mixture / agglomerative / SCAN,
  ``n_clusters`` given or chosen by silhouette or BIC);
* :mod:`~reprlab.capabilities.clustering.scan`: :class:`ScanClusterer`, SCAN-style neighbour-consistency
  clustering of fixed features (restarts combined by consensus), from random starts or,
  with ``init="spectral"``, from the spectral embedding of the neighbour graph;
* :mod:`~reprlab.capabilities.clustering.pipeline`: :func:`cluster_run` on a run directory (writes
  ``RUN_DIR/clustering/``) and :func:`checkpoint_curve` (reconstruction MSE against
  clustering accuracy over a run's checkpoints);
* :mod:`~reprlab.capabilities.clustering.plots`: their figures.

Rotation self-supervision, which helps clustering, is a model option
(``model.rotation_beta``, see :mod:`reprlab.models.base`).

Example:
    >>> import numpy as np
    >>> from reprlab.capabilities.clustering import EmbeddingClusterer, clustering_scores
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(c, 0.2, size=(30, 4)) for c in (0, 4)])
    >>> pred = EmbeddingClusterer(reducer="none", clusterer="kmeans", n_clusters=2).fit_predict(X)
    >>> clustering_scores([0] * 30 + [1] * 30, pred)["acc"]
    1.0
"""

from __future__ import annotations

from reprlab.capabilities.clustering.estimator import CLUSTERERS, COVARIANCE_TYPES, CRITERIA, REDUCERS, SCALINGS, EmbeddingClusterer
from reprlab.capabilities.clustering.metrics import (NMI_NORMALISATION, AlignedConfusion, aligned_confusion_matrix, ari,
                                        cluster_accuracy, clustering_scores, label_free_scores, match_clusters, nmi,
                                        silhouette)
from reprlab.capabilities.clustering.pipeline import SPLITS, checkpoint_curve, cluster_codes, cluster_run
from reprlab.capabilities.clustering.scan import ScanClusterer

__all__ = ["AlignedConfusion", "CLUSTERERS", "COVARIANCE_TYPES", "CRITERIA", "EmbeddingClusterer",
           "NMI_NORMALISATION", "REDUCERS", "SCALINGS", "SPLITS", "ScanClusterer", "aligned_confusion_matrix", "ari",
           "checkpoint_curve", "cluster_accuracy", "cluster_codes", "cluster_run", "clustering_scores",
           "label_free_scores", "match_clusters", "nmi", "silhouette"]
