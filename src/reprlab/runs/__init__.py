"""Runs: the run directory, a run's data, device and model, and the post-run hooks.

Everything a command needs to open, read or create a run lives here, below the
capabilities (analysis, clustering, anomaly, ...) that use it.

Example:
    >>> from reprlab.runs import RunDir, prepare_data, resolve_device
    >>> resolve_device("cpu").type
    'cpu'
"""

from reprlab.runs.data import CANONICAL_WITH_TEST_SPLIT, Splits, load_split, prepare_data, training_pool
from reprlab.runs.device import resolve_device
from reprlab.runs.model import build_model, load_run_model
from reprlab.runs.rundir import RunDir, default_run_name, environment_info
from reprlab.runs.lock import RunLock, lock_holder
from reprlab.runs.hooks import PostRunContext, list_post_run_hooks, register_post_run_hook, run_post_run_hooks

__all__ = ["CANONICAL_WITH_TEST_SPLIT", "PostRunContext", "RunDir", "Splits", "build_model", "default_run_name",
           "environment_info", "list_post_run_hooks", "load_run_model", "load_split", "prepare_data", "training_pool",
           "register_post_run_hook", "resolve_device", "RunLock", "lock_holder", "run_post_run_hooks"]
