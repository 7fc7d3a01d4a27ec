"""The Python API facade: train, resume, evaluate, and the pieces users build with.

Everything here is defined elsewhere (the orchestration in :mod:`reprlab.experiments.train`,
a run's data and model in :mod:`reprlab.runs`); this module only gathers it, and loads
the capability packages so that their config sections, tasks and post-run steps exist.

Example:
    >>> import reprlab.api as api
    >>> callable(api.train) and callable(api.evaluate)
    True
"""

from reprlab.base.errors import TrainingError
from reprlab.base.plugins import load_plugins
from reprlab.config import RunConfig
from reprlab.experiments.cv import cross_validate
from reprlab.experiments.search import tune
from reprlab.experiments.selftrain import self_train
from reprlab.experiments.sweep import sweep
from reprlab.experiments.train import TrainResult, as_config, evaluate, resume, train
from reprlab.runs import (Splits, build_model, load_run_model, load_split, prepare_data,  # noqa: F401
                          resolve_device)

load_plugins()

__all__ = ["RunConfig", "Splits", "TrainResult", "TrainingError", "as_config", "build_model", "cross_validate",
           "evaluate", "load_run_model", "load_split", "prepare_data", "resolve_device", "resume", "self_train",
           "sweep", "train", "tune"]
