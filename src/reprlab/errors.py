"""Old import path of :mod:`reprlab.base.errors` (kept: users catch these errors)."""

from reprlab.base.errors import ConfigError, DataError, ModelError, ReprlabError, RunDirError, TrainingError  # noqa: F401

__all__ = ["ConfigError", "DataError", "ModelError", "ReprlabError", "RunDirError", "TrainingError"]
