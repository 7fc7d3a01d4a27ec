"""Old import path of :mod:`reprlab.capabilities.clustering` (``reprlab.clustering.pipeline`` etc. work too)."""

from reprlab._compat import alias

alias(__name__, "reprlab.capabilities.clustering", ("estimator", "metrics", "pipeline", "plots", "scan"))
