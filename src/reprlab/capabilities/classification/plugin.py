"""What the classification capability adds: the ``classify`` config section and the ``classify`` task.

Loaded through the ``reprlab.plugins`` entry point (see :mod:`reprlab.base.plugins`).

Example:
    >>> from reprlab.tasks import list_tasks
    >>> "classify" in list_tasks()
    True
"""

from __future__ import annotations

from reprlab.capabilities.classification import config as _config  # noqa: F401  (registers the `classify` section)
from reprlab.capabilities.classification import task as _task  # noqa: F401  (registers the `classify` task)
