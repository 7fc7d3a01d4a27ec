"""Old import paths kept working after the layered layout (``reprlab.analysis`` -> ``reprlab.capabilities.analysis``).

:func:`alias` makes an old module name point at the new module object (and each listed
submodule likewise), so ``from reprlab.clustering.pipeline import cluster_run`` and
``from reprlab.capabilities.clustering.pipeline import cluster_run`` give the same
function, never a second copy of the module.

Example:
    >>> import reprlab.clustering, reprlab.capabilities.clustering
    >>> reprlab.clustering is reprlab.capabilities.clustering
    True
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType


def alias(old: str, new: str, submodules: tuple[str, ...] = ()) -> ModuleType:
    """Register module ``new`` (and ``new.sub`` for each of ``submodules``) under the name ``old``."""
    module = importlib.import_module(new)
    sys.modules[old] = module
    for sub in submodules:
        sys.modules[f"{old}.{sub}"] = importlib.import_module(f"{new}.{sub}")
    return module
