"""reprlab: unsupervised representation learning on images.

Train autoencoders and VAEs on standard datasets or your own images, then measure and
look at what they learned. Heavy submodules load lazily, so ``import reprlab`` is quick
and configures neither logging nor random state.

Example:
    >>> import reprlab
    >>> "conv_ae" in reprlab.list_models()
    True
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "train": "reprlab.api", "resume": "reprlab.api", "evaluate": "reprlab.api", "load_run_model": "reprlab.api",
    "prepare_data": "reprlab.api", "build_model": "reprlab.api", "tune": "reprlab.api", "cross_validate": "reprlab.api",
    "sweep": "reprlab.api",
    "RunConfig": "reprlab.api",
    "create_model": "reprlab.models", "list_models": "reprlab.models", "load_model": "reprlab.models",
    "save_model": "reprlab.models",
    "load_dataset": "reprlab.data", "list_datasets": "reprlab.data", "ImageData": "reprlab.data.dataset",
    "Trainer": "reprlab.training.engine", "list_tasks": "reprlab.tasks", "register_task": "reprlab.tasks",
    "evaluate_reconstruction": "reprlab.evaluation",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'reprlab' has no attribute {name!r}")
