"""Old import path of :mod:`reprlab.capabilities.analysis` (``reprlab.analysis.pipeline`` etc. work too)."""

from reprlab._compat import alias

alias(__name__, "reprlab.capabilities.analysis", ("inside", "latent", "pipeline", "plots"))
