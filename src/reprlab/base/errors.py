"""User-facing errors.

Every error that a user can cause by bad input (a corrupt file, an unknown name, an
impossible hyperparameter) is raised as a :class:`ReprlabError` subclass whose message
names the problem *and* the fix. The CLI prints the message on one line and exits with
status 2; the Python API lets it propagate (they subclass ``ValueError`` so that
``except ValueError`` in user code keeps working).

Example:
    >>> from reprlab.base.errors import ConfigError
    >>> raise ConfigError("model.latent_dim must be >= 1, got 0", fix="set model.latent_dim=16")
    Traceback (most recent call last):
    ...
    reprlab.base.errors.ConfigError: model.latent_dim must be >= 1, got 0. Fix: set model.latent_dim=16
"""

from __future__ import annotations


class ReprlabError(ValueError):
    """Base class of errors caused by user input; the message says what and how to fix it."""

    def __init__(self, problem: str, *, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        message = problem if fix is None else f"{problem.rstrip('.')}. Fix: {fix}"
        super().__init__(message)


class ConfigError(ReprlabError):
    """A configuration value or hyperparameter is invalid or unknown."""


class DataError(ReprlabError):
    """A dataset is missing, corrupt, truncated, of the wrong shape/dtype, or contains NaN."""


class ModelError(ReprlabError):
    """A model cannot be built for the given input, or fails its one-batch sanity check."""


class TrainingError(ReprlabError):
    """Training cannot continue (non-finite loss, nothing to resume, ...)."""


class RunDirError(ReprlabError):
    """A run directory is missing, incomplete, or would be overwritten."""
