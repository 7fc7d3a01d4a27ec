"""Typed config sections: pydantic dataclasses built from plain dicts, with one-line errors.

A section is a :func:`section` class (a pydantic v2 dataclass in strict mode: ``true``
is not a number, ``2.5`` is not an integer, ``7`` is not a boolean, ``'yes'`` is not a
boolean either). :func:`build` turns a dict (from YAML and overrides) into a section:
unknown keys get a "did you mean" hint, nested sections are built recursively, the YAML
quirks are repaired by the field's type (:func:`coerce`: ``"1e-3"`` for a float,
``"1_000"`` for an integer), and pydantic's first error becomes one :class:`ConfigError`
naming the dotted key, the value and the fix.

Example:
    >>> @section
    ... class Demo:
    ...     lr: float = 1e-3
    ...     on: bool = False
    >>> build(Demo, {"lr": "1e-4"}, "demo.").lr
    0.0001
    >>> build(Demo, {"on": "maybe"}, "demo.")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    reprlab.base.errors.ConfigError: demo.on must be true or false, got 'maybe'. Fix: set demo.on=true or false
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from typing import Any, Literal, Union

import pydantic
from pydantic import ConfigDict, ValidationError

from reprlab.base.errors import ConfigError, ReprlabError

#: The pydantic settings of every config section: strict types, unknown fields refused.
SECTION_CONFIG = ConfigDict(strict=True, extra="forbid")

_FLOAT_TEXT = re.compile(r"[-+]?(?:\d[\d_]*)?\.?\d*(?:[eE][-+]?\d+)?")
_INT_TEXT = re.compile(r"[-+]?\d+(?:_\d+)+")  # what YAML 1.1 would have read as an integer with separators


def section(cls: type) -> type:
    """Make ``cls`` a config section: a pydantic dataclass with :data:`SECTION_CONFIG`.

    A class that already is a standard-library dataclass is converted as well.
    """
    if is_section(cls):
        return cls
    return pydantic.dataclasses.dataclass(config=SECTION_CONFIG)(cls)


def is_section(cls: Any) -> bool:
    """Whether ``cls`` is a pydantic dataclass (a config section)."""
    return isinstance(cls, type) and pydantic.dataclasses.is_pydantic_dataclass(cls)


def field_types(cls: type) -> dict[str, Any]:
    """The resolved annotation of each field of a section (or of any dataclass)."""
    if is_section(cls):
        return {name: info.annotation for name, info in cls.__pydantic_fields__.items()}
    try:
        return typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - an unresolvable annotation: no coercion for it
        return {f.name: Any for f in dataclasses.fields(cls)}


def unknown_key(key: str, prefix: str, valid: list[str], *, where: str = "") -> ConfigError:
    """The error for an unknown key: the closest valid key, then all of them."""
    close = difflib.get_close_matches(str(key), valid, n=1)
    hint = f"did you mean {prefix}{close[0]}? " if close else ""
    return ConfigError(f"unknown config key {prefix}{key}",
                       fix=f"{hint}valid keys{where}: {', '.join(prefix + k for k in valid)}")


def build(cls: type, raw: Any, prefix: str, *, hidden: tuple[str, ...] = ()) -> Any:
    """Build section ``cls`` from the mapping ``raw``; keys are reported as ``prefix + key``.

    ``hidden`` fields are not settable from ``raw`` (they keep their defaults).
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a mapping, got {raw!r}",
                          fix="see configs/ for examples")
    names = [f.name for f in dataclasses.fields(cls) if f.name not in hidden]
    types_ = field_types(cls)
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in names:
            raise unknown_key(key, prefix, names)
        ann = types_.get(key, Any)
        if is_section(ann):
            value = build(ann, value, f"{prefix}{key}.")
        else:
            value = coerce(ann, value)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except ValidationError as exc:
        raise translate(exc, prefix, types_, kwargs) from None


def coerce(ann: Any, value: Any) -> Any:
    """Repair what YAML and Python hand over for a field of type ``ann``.

    Numeric strings become floats for float fields (``"1e-3"``), ``"1_000"`` becomes an
    integer for integer fields, paths become strings for string fields, and tuples become
    lists for list fields (items are repaired too; a list stays a list). Everything else is left to pydantic.

    Example:
        >>> coerce(float, "1e-3"), coerce(int | None, "1_000"), coerce(str, "0_1"), coerce(list[float], ("1e-1", 2))
        (0.001, 1000, '0_1', [0.1, 2])
    """
    members = _members(ann)
    if isinstance(value, str) and str not in members and Any not in members:
        text = value.strip()
        if float in members and _FLOAT_TEXT.fullmatch(text) and any(c.isdigit() for c in text):
            return float(text)
        if int in members and _INT_TEXT.fullmatch(text):
            return int(text)
        return value
    if isinstance(value, os.PathLike) and str in members:
        return os.fspath(value)
    for m in members:
        origin = typing.get_origin(m)
        if origin in (list, tuple) and isinstance(value, (list, tuple)):
            args = [a for a in typing.get_args(m) if a is not Ellipsis]
            items = [coerce(args[0], v) for v in value] if len(set(args)) == 1 else list(value)
            return items if origin is list or isinstance(value, list) else tuple(items)
    return value


def _members(ann: Any) -> list[Any]:
    if typing.get_origin(ann) in (Union, types.UnionType):
        return [m for a in typing.get_args(ann) for m in _members(a)]
    if typing.get_origin(ann) is typing.Annotated:
        return _members(typing.get_args(ann)[0])
    return [ann]


def expected(ann: Any) -> str:
    """What a value of type ``ann`` is, in words (``true or false``, ``an integer or null``)."""
    members = _members(ann)
    words = [_word(m) for m in members if m is not type(None)]
    text = " or ".join(dict.fromkeys(words))
    return text + (" or null" if type(None) in members else "")


def _word(ann: Any) -> str:
    origin = typing.get_origin(ann)
    if ann is bool:
        return "true or false"
    if ann is int:
        return "an integer"
    if ann is float:
        return "a number"
    if ann is str:
        return "a string"
    if ann is Any:
        return "any value"
    if origin is Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(ann)))
    if origin in (list, tuple):
        args = [a for a in typing.get_args(ann) if a is not Ellipsis]
        plural = {int: "integers", float: "numbers", str: "strings", bool: "booleans"}.get(args[0] if args else Any, "values")
        return f"a list of {plural}"
    if origin is dict or ann is dict or is_section(ann):
        return "a mapping"
    return getattr(ann, "__name__", str(ann))


def translate(exc: ValidationError, prefix: str, types_: dict[str, Any], values: dict[str, Any]) -> ReprlabError:
    """The first error of ``exc`` as one :class:`ConfigError` naming ``prefix + field``, the value and the fix."""
    err = exc.errors()[0]
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, ReprlabError):  # a validator of the section raised our own error
        return cause
    loc = [p for p in err["loc"] if isinstance(p, str)]
    name = loc[0] if loc else ""
    key = f"{prefix}{name}" if name else prefix.rstrip(".") or "config"
    if name in types_ and err["type"] not in ("unexpected_keyword_argument", "missing_argument"):
        ann = types_[name]
        what = expected(ann)
        fix = f"set {key}=true or false" if what == "true or false" else f"set {key} to {what}"
        if str in _members(ann) and isinstance(values.get(name), (int, float)):
            fix += f" (quote it: {key}='{values[name]}')"
        return ConfigError(f"{key} must be {what}, got {values.get(name, err.get('input'))!r}", fix=fix)
    return ConfigError(f"{key}: {err['msg']}, got {err.get('input')!r}", fix=f"see the documentation of {key}")
