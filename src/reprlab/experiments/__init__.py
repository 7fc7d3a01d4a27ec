"""Experiments: the orchestration that runs tasks end to end (train, resume, evaluate).

Later: searches, cross-validation and sweeps, built on :func:`reprlab.experiments.train.train`.

Example:
    >>> from reprlab.experiments import train, resume, evaluate
"""

from reprlab.experiments.train import TrainResult, evaluate, resume, train

__all__ = ["TrainResult", "evaluate", "resume", "train"]
