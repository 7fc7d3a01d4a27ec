"""Validation helpers shared by every layer: one clear ``ConfigError`` per bad value.

Each check names the parameter, the value and the fix (scikit-learn's style).

Example:
    >>> check_int("model.latent_dim", 16, minimum=1)
    >>> check_choice("train.optimizer", "adam", ("adam", "sgd"))
    >>> check_float("train.lr", 0.0, minimum=0, exclusive_min=True)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    reprlab.base.errors.ConfigError: train.lr must be > 0, got 0.0. Fix: set train.lr > 0
"""

from __future__ import annotations

from typing import Any

from reprlab.base.errors import ConfigError


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> None:
    """Raise :class:`ConfigError` unless ``value`` is an int within bounds."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {value!r}", fix=f"set {name} to a whole number")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}", fix=f"set {name} to at least {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be <= {maximum}, got {value}", fix=f"set {name} to at most {maximum}")


def check_float(name: str, value: Any, *, minimum: float | None = None, maximum: float | None = None,
                exclusive_min: bool = False) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a finite number within bounds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value in (float("inf"), float("-inf")):
        raise ConfigError(f"{name} must be a finite number, got {value!r}", fix=f"set {name} to a number")
    if minimum is not None and (value <= minimum if exclusive_min else value < minimum):
        op = ">" if exclusive_min else ">="
        raise ConfigError(f"{name} must be {op} {minimum}, got {value}", fix=f"set {name} {op} {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be <= {maximum}, got {value}", fix=f"set {name} to at most {maximum}")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}",
                          fix=f"set {name} to one of {', '.join(choices)}")
