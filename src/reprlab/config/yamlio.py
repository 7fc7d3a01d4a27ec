"""Reading config YAML the way a user means it.

PyYAML implements YAML 1.1, which reads some plain scalars in ways nobody writing a config
expects: ``0_1`` and ``-1_1`` (the two ``data.scale`` choices) become the integers 1 and
-11 (underscores are digit separators, a leading 0 means octal: ``010`` is 8), ``1:30``
becomes 90 (base 60), and ``1e-3`` stays a string (1.1 floats need a dot). This loader
keeps PyYAML's safe loader and replaces only its number rules with those of YAML 1.2's
core schema (what every other modern YAML reader uses): integers are plain decimal
(``010`` is 10) or ``0x``/``0o``, floats may use an exponent without a dot, and anything else, ``0_1``
included, stays a string. Typed config fields turn ``1_000`` back into 1000 (see
:func:`reprlab.config.typed.coerce`). Written here because PyYAML has no 1.2 mode and a
second YAML library for two regular expressions is not worth it.

Example:
    >>> parse_value("0_1"), parse_value("-1_1"), parse_value("1e-3"), parse_value("010")
    ('0_1', '-1_1', 0.001, 10)
    >>> load_yaml("lr: 2.0e-3\\nscale: -1_1\\nepochs: 10\\nsizes: [8, 16]\\nflag: on")
    {'lr': 0.002, 'scale': '-1_1', 'epochs': 10, 'sizes': [8, 16], 'flag': True}
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"


class ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 core-schema numbers (see the module docstring)."""

    def construct_yaml_int(self, node: yaml.Node) -> int:  # type: ignore[override]
        text = self.construct_scalar(node).lower()  # type: ignore[arg-type]
        sign = -1 if text.startswith("-") else 1
        text = text.lstrip("+-")
        if text.startswith("0x"):
            return sign * int(text[2:], 16)
        if text.startswith("0o"):
            return sign * int(text[2:], 8)
        return sign * int(text)


ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
ConfigLoader.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?[0-9]+|0x[0-9a-fA-F]+|0o[0-7]+)$"), list("-+0123456789"))
ConfigLoader.add_implicit_resolver(
    _FLOAT, re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))
ConfigLoader.add_constructor(_INT, ConfigLoader.construct_yaml_int)


class ConfigDumper(yaml.SafeDumper):
    """PyYAML's safe dumper that also quotes strings :class:`ConfigLoader` would read as numbers (``'1e-3'``).

    Strings that YAML 1.1 reads as numbers (``'0_1'``) stay quoted too, so plain
    ``yaml.safe_load`` reads the file back the same.
    """


for _tag, _rx in {(t, r) for rs in ConfigLoader.yaml_implicit_resolvers.values() for t, r in rs if t in (_INT, _FLOAT)}:
    ConfigDumper.add_implicit_resolver(_tag, _rx, list("-+0123456789."))


def dump_yaml(data: Any) -> str:
    """YAML text that both :func:`load_yaml` and ``yaml.safe_load`` read back as ``data``."""
    return yaml.dump(data, Dumper=ConfigDumper, sort_keys=False)


def load_yaml(text: str) -> Any:
    """Parse config YAML text (see the module docstring for the number rules)."""
    return yaml.load(text, Loader=ConfigLoader)  # noqa: S506 - a SafeLoader subclass


def parse_value(text: str) -> Any:
    """The value of an override's right-hand side: YAML (``[8, 16]``, ``null``, ``1e-3``), else the text itself."""
    if not text.strip():
        return None
    try:
        return load_yaml(text)
    except yaml.YAMLError:
        return text
