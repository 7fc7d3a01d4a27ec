"""Tasks: what a run is for and how it is judged (see :mod:`reprlab.tasks.registry`).

Example:
    >>> from reprlab.tasks import list_tasks
    >>> "reconstruct" in list_tasks()
    True
"""

from reprlab.tasks import health, reconstruct  # noqa: F401  (register the health hook and the built-in task)
from reprlab.tasks.registry import FINAL_EPOCH, Task, get_task, list_tasks, register_task, unregister_task

__all__ = ["FINAL_EPOCH", "Task", "get_task", "list_tasks", "register_task", "unregister_task"]
