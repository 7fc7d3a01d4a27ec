"""How well anomaly scores separate anomalies from normal images.

The threshold-free metrics are ROC AUC (:func:`auroc`: the probability that a random
anomaly scores higher than a random normal image, 0.5 for chance) and average precision
(:func:`average_precision`, the area under the precision-recall curve, whose chance level
is the fraction of anomalies). The thresholded ones (:func:`threshold_metrics`) are
precision, recall and F1 of "score > threshold"; :func:`threshold_at_contamination` sets
the threshold so that a given fraction of reference scores lies above it.

Convention everywhere: labels are 1 for anomalies, 0 for normal images, and higher scores
mean more anomalous.

Example:
    >>> import numpy as np
    >>> y = np.array([0, 0, 0, 1, 1])
    >>> s = np.array([0.1, 0.2, 0.3, 0.8, 0.25])
    >>> round(auroc(y, s), 3), round(average_precision(y, s), 3)
    (0.833, 0.833)
    >>> threshold_metrics(y, s, threshold=0.5)
    {'precision': 1.0, 'recall': 0.5, 'f1': 0.6666666666666666, 'threshold': 0.5, 'flagged_fraction': 0.2}
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from reprlab.base.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

__all__ = [
    "auroc",
    "average_precision",
    "check_contamination",
    "evaluate_scores",
    "roc_points",
    "threshold_at_contamination",
    "threshold_metrics",
]


def check_contamination(contamination: Any) -> float:
    """Return ``contamination`` as a float, or raise :class:`ConfigError` unless it is in (0, 0.5].

    Example:
        >>> check_contamination(0.1)
        0.1
    """
    if isinstance(contamination, bool) or not isinstance(contamination, (int, float, np.floating, np.integer)) \
            or not np.isfinite(contamination) or not 0.0 < float(contamination) <= 0.5:
        raise ConfigError(f"contamination must be in (0, 0.5], got {contamination!r}",
                          fix="pass the expected fraction of anomalies, e.g. contamination=0.1 "
                              "(at most 0.5: beyond that the 'anomalies' are the majority)")
    return float(contamination)


def _as_scores(scores: Any, what: str = "scores") -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if s.size == 0:
        raise DataError(f"no {what} given", fix="score at least one image")
    if not np.isfinite(s).all():
        bad = int((~np.isfinite(s)).sum())
        raise DataError(f"{bad} of {s.size} {what} are NaN or infinite",
                        fix="check the model (a diverged model gives NaN scores) and the input images")
    return s


def _as_labels(labels: Any, n: int) -> np.ndarray:
    y = np.asarray(labels).reshape(-1)
    if y.size != n:
        raise DataError(f"{y.size} anomaly labels for {n} scores", fix="pass one label (0 normal, 1 anomaly) per image")
    if y.dtype == bool:
        return y.astype(np.int64)
    values = set(np.unique(y).tolist())
    if not values <= {0, 1}:
        raise DataError(f"anomaly labels must be 0 (normal) or 1 (anomaly), got values {sorted(values)[:6]}",
                        fix="convert class labels to 0/1, e.g. (labels != normal_class).astype(int)")
    return y.astype(np.int64)


def _check_both_classes(y: np.ndarray, metric: str) -> None:
    n_anom = int(y.sum())
    if n_anom == 0 or n_anom == y.size:
        only = "anomalies" if n_anom else "normal images"
        raise DataError(f"{metric} needs both normal and anomalous test images, but all {y.size} are {only}",
                        fix="add test images of the other kind, or ask only for scores and thresholded predictions")


def auroc(labels: Any, scores: Any) -> float:
    """Area under the ROC curve of ``scores`` for ``labels`` (1 = anomaly).

    Raises :class:`DataError` when the labels hold only one class (AUC is undefined).

    Example:
        >>> auroc([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8])
        1.0
    """
    from sklearn.metrics import roc_auc_score

    s = _as_scores(scores)
    y = _as_labels(labels, s.size)
    _check_both_classes(y, "ROC AUC")
    return float(roc_auc_score(y, s))


def average_precision(labels: Any, scores: Any) -> float:
    """Average precision (area under the precision-recall curve, anomalies positive).

    Example:
        >>> average_precision([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8])
        1.0
    """
    from sklearn.metrics import average_precision_score

    s = _as_scores(scores)
    y = _as_labels(labels, s.size)
    _check_both_classes(y, "average precision")
    return float(average_precision_score(y, s))


def roc_points(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates of the ROC curve.

    Example:
        >>> fpr, tpr = roc_points([0, 1], [0.0, 1.0])
        >>> fpr.tolist(), tpr.tolist()
        ([0.0, 0.0, 1.0], [0.0, 1.0, 1.0])
    """
    from sklearn.metrics import roc_curve

    s = _as_scores(scores)
    y = _as_labels(labels, s.size)
    _check_both_classes(y, "a ROC curve")
    fpr, tpr, _ = roc_curve(y, s)
    return fpr, tpr


def threshold_at_contamination(reference_scores: Any, contamination: float) -> float:
    """The score above which a fraction ``contamination`` of ``reference_scores`` lies.

    This is how PyOD sets ``threshold_``: the ``100 * (1 - contamination)`` percentile of
    the training scores.

    Example:
        >>> round(threshold_at_contamination(np.arange(100.0), 0.1), 6)
        89.1
    """
    c = check_contamination(contamination)
    s = _as_scores(reference_scores, "reference scores")
    return float(np.percentile(s, 100.0 * (1.0 - c)))


def threshold_metrics(labels: Any, scores: Any, *, threshold: float) -> dict[str, float]:
    """Precision, recall and F1 of flagging ``scores > threshold`` as anomalies.

    Precision is 0 when nothing is flagged (scikit-learn's ``zero_division=0``).

    Example:
        >>> threshold_metrics([0, 1, 1], [0.2, 0.9, 0.1], threshold=0.5)["recall"]
        0.5
    """
    from sklearn.metrics import precision_recall_fscore_support

    s = _as_scores(scores)
    y = _as_labels(labels, s.size)
    pred = (s > float(threshold)).astype(np.int64)
    p, r, f, _ = precision_recall_fscore_support(y, pred, average="binary", pos_label=1, zero_division=0)
    return {"precision": float(p), "recall": float(r), "f1": float(f), "threshold": float(threshold),
            "flagged_fraction": float(pred.mean())}


def evaluate_scores(labels: Any, scores: Any, *, threshold: float | None = None) -> dict[str, float]:
    """ROC AUC, average precision and (with ``threshold``) precision/recall/F1, in one dict.

    Also reports ``anomaly_fraction`` and ``num_images`` of the test set.

    Example:
        >>> m = evaluate_scores([0, 0, 1, 1], [0.1, 0.3, 0.2, 0.9], threshold=0.25)
        >>> m["auroc"], m["f1"]
        (0.75, 0.5)
    """
    s = _as_scores(scores)
    y = _as_labels(labels, s.size)
    out = {"auroc": auroc(y, s), "average_precision": average_precision(y, s),
           "anomaly_fraction": float(y.mean()), "num_images": int(y.size)}
    if threshold is not None:
        out.update(threshold_metrics(y, s, threshold=threshold))
    return out
