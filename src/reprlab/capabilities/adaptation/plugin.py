"""What the adaptation capability adds: the ``adapt`` config section and the ``adapt`` task.

Loaded through the ``reprlab.plugins`` entry point (see :mod:`reprlab.base.plugins`).

Example:
    >>> from reprlab.tasks import list_tasks
    >>> "adapt" in list_tasks()
    True
"""

from __future__ import annotations

from reprlab.capabilities.adaptation import config as _config  # noqa: F401  (registers the `adapt` section)
from reprlab.capabilities.adaptation import task as _task  # noqa: F401  (registers the `adapt` task)
