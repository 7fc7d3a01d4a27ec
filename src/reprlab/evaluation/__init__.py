"""Evaluation of trained models: reconstruction quality per image and on average.

Example:
    >>> from reprlab.evaluation import evaluate_reconstruction, per_image_metrics
"""

from reprlab.evaluation.reconstruction import (
    ReconstructionReport,
    evaluate_reconstruction,
    from_model_range,
    per_image_metrics,
    reconstruct01,
    to_model_range,
)

__all__ = [
    "ReconstructionReport",
    "evaluate_reconstruction",
    "from_model_range",
    "per_image_metrics",
    "reconstruct01",
    "to_model_range",
]
