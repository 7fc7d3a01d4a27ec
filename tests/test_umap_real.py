"""The real UMAP (umap-learn, numba-compiled), the default reducer of ``reprlab cluster``.

Elsewhere the suite replaces ``umap.UMAP`` by a stand-in to stay fast; this one small test runs
the real thing end to end: default :class:`EmbeddingClusterer` (UMAP to 10 dimensions, then a
GMM) on 200 points of four Gaussian blobs.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import gaussian_blobs

pytestmark = pytest.mark.usefixtures("single_thread")


def test_default_clusterer_runs_real_umap_and_recovers_blobs():
    import umap

    from reprlab.capabilities.clustering import EmbeddingClusterer
    from reprlab.capabilities.clustering.pipeline import cluster_codes
    from reprlab.features.embeddings import Reducer

    assert EmbeddingClusterer().reducer == "umap"  # the default of `reprlab cluster` and the `cluster` section
    X, y = gaussian_blobs(k=4, n_per=50, d=16, seed=3)
    est, metrics = cluster_codes(X, y, n_clusters=4, random_state=0)
    assert isinstance(est.reducer_, Reducer) and isinstance(est.reducer_.estimator_, umap.UMAP)
    assert est.embedding_.shape == (200, 10) and np.isfinite(est.embedding_).all()
    assert metrics["acc"] >= 0.98 and metrics["ari"] >= 0.95
