"""Scores of a clustering against hidden classes, and label-free scores.

With labels (used only to score, never to fit):

* :func:`cluster_accuracy`: the fraction of points whose cluster maps to their class under
  the best one-to-one matching of clusters to classes (Hungarian algorithm,
  :func:`scipy.optimize.linear_sum_assignment` on the class x cluster contingency table).
  Clusters left without a class (more clusters than classes) count as wrong. For two
  clusters and two classes it equals ``max(acc, 1 - acc)`` of either labelling.
* :func:`nmi`: normalised mutual information with the **arithmetic** normalisation,
  ``NMI = I(Y; C) / ((H(Y) + H(C)) / 2)`` (scikit-learn's
  ``normalized_mutual_info_score(average_method="arithmetic")``, natural logarithms; the
  base cancels).
* :func:`ari`: the adjusted Rand index (chance-corrected pair counting; 0 for random
  labellings, 1 for identical partitions).
* :func:`aligned_confusion_matrix`: classes x clusters counts, clusters reordered so that
  the cluster matched to class ``i`` is column ``i`` (the diagonal holds the matched points).

Without labels: :func:`label_free_scores` (silhouette, on a seeded subsample for large
inputs).

Example:
    >>> y = [0, 0, 1, 1, 2, 2]
    >>> c = [5, 5, 3, 3, 3, 9]          # cluster ids are arbitrary
    >>> round(cluster_accuracy(y, c), 4)
    0.8333
    >>> scores = clustering_scores(y, c)
    >>> sorted(scores)
    ['acc', 'ari', 'n_classes', 'n_clusters', 'n_points', 'nmi']
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from reprlab.base.errors import ConfigError, DataError
from reprlab.base.validation import check_int

logger = logging.getLogger(__name__)

__all__ = ["AlignedConfusion", "aligned_confusion_matrix", "ari", "cluster_accuracy", "clustering_scores",
           "contingency", "label_free_scores", "match_clusters", "nmi", "NMI_NORMALISATION"]

#: The NMI normalisation used everywhere in reprlab (stated in metrics.json too).
NMI_NORMALISATION = "arithmetic"


def _as_labels(values: Any, what: str) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.ndim != 1:
        arr = arr.reshape(-1) if arr.ndim == 2 and 1 in arr.shape else arr
    if arr.ndim != 1:
        raise DataError(f"{what} must be a 1-D array of labels, got shape {arr.shape}", fix="pass one label per point")
    if arr.size == 0:
        raise DataError(f"{what} is empty", fix="pass at least two labelled points")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise DataError(f"{what} contains NaN or infinite values", fix="drop the unlabelled points before scoring")
    return arr


def _check_pair(labels_true: Any, labels_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    y = _as_labels(labels_true, "labels_true")
    c = _as_labels(labels_pred, "labels_pred")
    if y.shape[0] != c.shape[0]:
        raise DataError(f"labels_true has {y.shape[0]} entries but labels_pred has {c.shape[0]}",
                        fix="pass exactly one true label per clustered point (same order, same length)")
    if np.unique(y).size < 2:
        raise DataError(f"labels_true contains a single class ({np.unique(y)[0]!r}): accuracy, NMI and ARI "
                        "cannot tell a good clustering from a bad one",
                        fix="score on data with at least two classes, or use the label-free scores (silhouette, BIC)")
    return y, c


def contingency(labels_true: Any, labels_pred: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts ``(n_classes, n_clusters)`` with the sorted class and cluster ids.

    Example:
        >>> m, classes, clusters = contingency([0, 0, 1], [7, 7, 7])
        >>> m.tolist(), classes.tolist(), clusters.tolist()
        ([[2], [1]], [0, 1], [7])
    """
    y = _as_labels(labels_true, "labels_true")
    c = _as_labels(labels_pred, "labels_pred")
    if y.shape[0] != c.shape[0]:
        raise DataError(f"labels_true has {y.shape[0]} entries but labels_pred has {c.shape[0]}",
                        fix="pass exactly one true label per clustered point (same order, same length)")
    classes, yi = np.unique(y, return_inverse=True)
    clusters, ci = np.unique(c, return_inverse=True)
    table = np.zeros((classes.size, clusters.size), dtype=np.int64)
    np.add.at(table, (yi, ci), 1)
    return table, classes, clusters


def match_clusters(labels_true: Any, labels_pred: Any) -> dict[Any, Any]:
    """The best one-to-one matching ``{cluster id: class id}`` (clusters left over are absent).

    Example:
        >>> match_clusters([0, 0, 1, 1], [1, 1, 0, 0])
        {0: 1, 1: 0}
    """
    table, classes, clusters = contingency(labels_true, labels_pred)
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(table, maximize=True)
    return {clusters[j].item(): classes[i].item() for i, j in sorted(zip(rows, cols), key=lambda t: t[1])}


def cluster_accuracy(labels_true: Any, labels_pred: Any) -> float:
    """Accuracy under the best one-to-one matching of clusters to classes (in ``[0, 1]``).

    Example:
        >>> cluster_accuracy([0, 0, 1, 1], [1, 1, 0, 0])
        1.0
    """
    y, c = _check_pair(labels_true, labels_pred)
    table, _, _ = contingency(y, c)
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / y.shape[0])


def nmi(labels_true: Any, labels_pred: Any) -> float:
    """Normalised mutual information, arithmetic normalisation ``I / ((H(Y) + H(C)) / 2)``.

    Example:
        >>> nmi([0, 0, 1, 1], [1, 1, 0, 0])
        1.0
    """
    from sklearn.metrics import normalized_mutual_info_score

    y, c = _check_pair(labels_true, labels_pred)
    return float(normalized_mutual_info_score(y, c, average_method=NMI_NORMALISATION))


def ari(labels_true: Any, labels_pred: Any) -> float:
    """Adjusted Rand index (1 for identical partitions, about 0 for random ones).

    Example:
        >>> ari([0, 0, 1, 1], [1, 1, 0, 0])
        1.0
    """
    from sklearn.metrics import adjusted_rand_score

    y, c = _check_pair(labels_true, labels_pred)
    return float(adjusted_rand_score(y, c))


@dataclass
class AlignedConfusion:
    """A confusion matrix whose columns (clusters) are ordered by their matched class.

    ``matrix[i, j]`` counts points of class ``classes[i]`` in cluster ``clusters[j]``;
    ``clusters[i]`` is the cluster matched to ``classes[i]`` for ``i < n_matched``, and
    unmatched clusters follow.
    """

    matrix: np.ndarray
    classes: np.ndarray
    clusters: np.ndarray
    n_matched: int


def aligned_confusion_matrix(labels_true: Any, labels_pred: Any) -> AlignedConfusion:
    """Classes x clusters counts with each class's matched cluster on the diagonal.

    Rows are the classes in sorted order; classes that got no cluster (fewer clusters
    than classes) are moved after the matched ones.

    Example:
        >>> cm = aligned_confusion_matrix([0, 0, 1, 1, 1], [4, 4, 2, 2, 4])
        >>> cm.matrix.tolist(), cm.clusters.tolist()
        ([[2, 0], [1, 2]], [4, 2])
    """
    y, c = _check_pair(labels_true, labels_pred)
    table, classes, clusters = contingency(y, c)
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(table, maximize=True)
    order = np.argsort(rows)
    rows, cols = rows[order], cols[order]
    row_order = list(rows) + [i for i in range(classes.size) if i not in set(rows)]
    col_order = list(cols) + [j for j in range(clusters.size) if j not in set(cols)]
    return AlignedConfusion(table[np.ix_(row_order, col_order)], classes[row_order], clusters[col_order], len(rows))


def clustering_scores(labels_true: Any, labels_pred: Any) -> dict[str, float]:
    """``acc``, ``nmi`` (arithmetic), ``ari`` and the counts, as a JSON-ready dict.

    Example:
        >>> clustering_scores([0, 1, 0, 1], [0, 1, 0, 1])["acc"]
        1.0
    """
    y, c = _check_pair(labels_true, labels_pred)
    return {"acc": cluster_accuracy(y, c), "nmi": nmi(y, c), "ari": ari(y, c), "n_points": int(y.shape[0]),
            "n_classes": int(np.unique(y).size), "n_clusters": int(np.unique(c).size)}


def silhouette(X: Any, labels: Any, *, sample_size: int | None = 5000, random_state: int | None = 0) -> float:
    """Mean silhouette coefficient (Euclidean) of ``labels`` on ``X``, on a seeded subsample.

    ``sample_size`` caps the points used (the score is O(N²)); ``None`` uses all. Returns
    NaN when there is a single cluster or every point is its own cluster.

    Example:
        >>> import numpy as np
        >>> X = np.r_[np.zeros((5, 2)), np.ones((5, 2)) * 10] + np.random.default_rng(0).normal(0, .1, (10, 2))
        >>> silhouette(X, [0] * 5 + [1] * 5) > 0.9
        True
    """
    from sklearn.metrics import silhouette_score

    X = np.asarray(X, dtype=np.float64)
    lab = _as_labels(labels, "labels")
    if lab.shape[0] != X.shape[0]:
        raise DataError(f"{lab.shape[0]} labels for {X.shape[0]} points", fix="pass one cluster label per point")
    k = np.unique(lab).size
    if k < 2 or k >= X.shape[0]:
        return float("nan")
    n = X.shape[0]
    if sample_size is not None and n > sample_size:
        rng = np.random.default_rng(random_state)
        idx = rng.choice(n, size=int(sample_size), replace=False)
        if np.unique(lab[idx]).size < 2:
            return float("nan")
        return float(silhouette_score(X[idx], lab[idx]))
    return float(silhouette_score(X, lab))


def label_free_scores(X: Any, labels: Any, *, gmm: Any = None, sample_size: int | None = 5000,
                      random_state: int | None = 0) -> dict[str, float]:
    """Scores that need no labels: ``silhouette`` always, ``bic`` when a fitted mixture is given.

    ``X`` is the space the clusters were found in (the reduced embedding).

    Example:
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(40, 2))
        >>> sorted(label_free_scores(X, np.arange(40) % 2))
        ['silhouette']
    """
    if sample_size is not None:
        check_int("silhouette_sample", sample_size, minimum=10)
    out = {"silhouette": silhouette(X, labels, sample_size=sample_size, random_state=random_state)}
    if gmm is not None:
        if not hasattr(gmm, "bic"):
            raise ConfigError("BIC needs a fitted Gaussian mixture", fix="use clusterer='gmm'")
        out["bic"] = float(gmm.bic(np.asarray(X, dtype=np.float64)))
    return out
