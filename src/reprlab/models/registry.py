"""Model registry: ``@register_model``, :func:`create_model`, :func:`list_models`.

Each model is registered with a config dataclass; ``create_model(name, **kwargs)``
builds the config (validating every field) and then the model. No if/elif loading:
saved models record their registry name and config, and :func:`reprlab.models.io.load_model`
rebuilds them through this registry.

Example:
    >>> from reprlab.models import create_model, list_models
    >>> "conv_ae" in list_models()
    True
    >>> model = create_model("conv_ae", input_shape=(1, 28, 28), latent_dim=16)
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, Callable

from reprlab.base.errors import ConfigError

_MODELS: dict[str, tuple[type, type]] = {}


def register_model(name: str, *, config: type) -> Callable[[type], type]:
    """Class decorator registering ``cls`` under ``name`` with its config dataclass."""

    def wrap(cls: type) -> type:
        if name in _MODELS:
            raise RuntimeError(f"model {name!r} registered twice")
        _MODELS[name] = (cls, config)
        cls.registry_name = name
        return cls

    return wrap


def _ensure_loaded() -> None:
    # Importing the zoo modules runs their @register_model decorators.
    from reprlab.models import zoo  # noqa: F401


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    _ensure_loaded()
    return sorted(_MODELS)


def get_model_entry(name: str) -> tuple[type, type]:
    """Return ``(model_class, config_class)`` for ``name`` or raise a :class:`ConfigError`."""
    _ensure_loaded()
    if name not in _MODELS:
        close = difflib.get_close_matches(name, _MODELS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"unknown model {name!r}",
                          fix=f"{hint}choose one of: {', '.join(sorted(_MODELS))} (see `reprlab models`)")
    return _MODELS[name]


def make_config(name: str, **kwargs: Any):
    """Build and validate the config dataclass of model ``name`` from keyword arguments."""
    _, config_cls = get_model_entry(name)
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(kwargs) - fields)
    if unknown:
        raise ConfigError(f"model {name!r} has no option(s) {', '.join(unknown)}",
                          fix=f"use only: {', '.join(sorted(fields))}")
    try:
        return config_cls(**kwargs)
    except TypeError as exc:  # a missing required field
        raise ConfigError(f"model {name!r}: {exc}", fix="pass every required option (input_shape is set from the data)") from None


def create_model(name: str, **kwargs: Any):
    """Build model ``name``; keyword arguments are fields of its config dataclass.

    Example:
        >>> m = create_model("vae", input_shape=(1, 28, 28), latent_dim=8)
        >>> m.config.latent_dim
        8
    """
    cls, _ = get_model_entry(name)
    return cls(make_config(name, **kwargs))
