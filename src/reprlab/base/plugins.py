"""Loading the packages that extend reprlab (config sections, tasks, post-run hooks).

The capability packages register what they add (a config section, a task, a post-run
hook) when imported. Lower layers must not import them, so they are found through the
``reprlab.plugins`` entry-point group (declared in ``pyproject.toml``; third-party
packages can add their own) and imported on first need: :func:`load_plugins` is called by
the config when it meets a section it does not know yet, and by the run orchestration.
Written by hand because it is the standard ``importlib.metadata`` plugin idiom in a few
lines; no library is needed for it.

Example:
    >>> names = load_plugins()
    >>> "clustering" in names
    True
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points

logger = logging.getLogger(__name__)

#: The built-in plugins, used when the package metadata is not installed (a plain source checkout).
BUILTIN_PLUGINS: dict[str, str] = {
    "analysis": "reprlab.capabilities.analysis.plugin",
    "clustering": "reprlab.capabilities.clustering.plugin",
    "classification": "reprlab.capabilities.classification.plugin",
    "generation": "reprlab.capabilities.generation.plugin",
    "adaptation": "reprlab.capabilities.adaptation.plugin",
}

_LOADED: list[str] = []


def load_plugins() -> list[str]:
    """Import every ``reprlab.plugins`` entry point once; returns the names loaded so far."""
    if _LOADED:
        return list(_LOADED)
    found = {ep.name: ep.value for ep in entry_points(group="reprlab.plugins")}
    for name, module in {**BUILTIN_PLUGINS, **found}.items():
        importlib.import_module(module.split(":")[0])
        _LOADED.append(name)
    return list(_LOADED)
