"""The bottom layer: errors, validation helpers, file I/O and plugin loading.

Nothing here imports any other part of reprlab.

Example:
    >>> from reprlab.base import ConfigError, check_int
    >>> check_int("seed", 0, minimum=0)
"""

from reprlab.base.errors import ConfigError, DataError, ModelError, ReprlabError, RunDirError, TrainingError
from reprlab.base.io import atomic_write, read_json, write_json, write_text
from reprlab.base.validation import check_choice, check_float, check_int

__all__ = ["ConfigError", "DataError", "ModelError", "ReprlabError", "RunDirError", "TrainingError", "atomic_write",
           "check_choice", "check_float", "check_int", "read_json", "write_json", "write_text"]
