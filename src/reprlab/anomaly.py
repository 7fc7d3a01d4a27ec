"""Old import path of :mod:`reprlab.capabilities.anomaly` (``reprlab.anomaly.scores`` etc. work too)."""

from reprlab._compat import alias

alias(__name__, "reprlab.capabilities.anomaly", ("detector", "metrics", "plots", "protocols", "run", "scores"))
