"""Anomaly detection with autoencoders and self-supervised models.

Train on normal images only, score new images (higher = more anomalous) and measure how
well the scores separate anomalies: :class:`AnomalyDetector` (PyOD-style
``fit``/``decision_function``/``predict``), score functions (:mod:`.scores`), metrics
(:mod:`.metrics`), the one-class and user-defined-set protocols (:mod:`.protocols`) and
figures (:mod:`.plots`). See docs/anomaly.md.

Example:
    >>> from reprlab.capabilities.anomaly import AnomalyDetector, auroc
    >>> det = AnomalyDetector(score=("transform", "knn"), model="rotnet", epochs=10)  # doctest: +SKIP
    >>> auroc(y_test, det.fit(normal).decision_function(test))  # doctest: +SKIP
    0.93
"""

from reprlab.capabilities.anomaly.detector import PRESETS, SCORES, AnomalyDetector, default_model_for
from reprlab.capabilities.anomaly.metrics import (auroc, average_precision, check_contamination, evaluate_scores, roc_points,
                                     threshold_at_contamination, threshold_metrics)
from reprlab.capabilities.anomaly.protocols import (DetectionResult, check_no_overlap, detect, load_images, one_class_split,
                                       run_one_class)
from reprlab.capabilities.anomaly.scores import (KMeansScorer, KNNScorer, PCAScorer, latent_codes, negative_elbo,
                                    reconstruction_error, transformation_nll)

__all__ = [
    "PRESETS", "SCORES", "AnomalyDetector", "DetectionResult", "KMeansScorer", "KNNScorer", "PCAScorer", "auroc",
    "average_precision", "check_contamination", "check_no_overlap", "default_model_for", "detect",
    "evaluate_scores", "latent_codes", "load_images", "negative_elbo", "one_class_split", "reconstruction_error",
    "roc_points", "run_one_class", "threshold_at_contamination", "threshold_metrics", "transformation_nll",
]
