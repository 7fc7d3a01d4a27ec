"""Options and helpers shared by several commands, defined once (one spelling, one default).

Example:
    >>> import argparse
    >>> p = argparse.ArgumentParser()
    >>> add_data_dir(p); add_device(p)
    >>> p.parse_args(["--device", "cpu"]).device
    'cpu'
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from reprlab.base.errors import ConfigError
from reprlab.config import apply_overrides

DEFAULT_DEVICE = "auto"


def add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="folder holding the datasets (else $REPRLAB_DATA, the cache, /usr/share/datasets)")


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=DEFAULT_DEVICE, help=f"auto, cpu, cuda[:N] or mps (default: {DEFAULT_DEVICE})")


def add_checkpoint(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default="best", help="checkpoint tag: best (default), last, epoch_0005, ...")


def add_output_dir(p: argparse.ArgumentParser, *, default: str | None = "runs", aliases: tuple[str, ...] = ()) -> None:
    where = "default: runs" if default else "default from the config: runs"
    p.add_argument("--output-dir", *aliases, dest="output_dir", default=default,
                   help=f"parent folder of the run directory ({where})")


def add_run_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a run directory printed by `reprlab train` or `reprlab detect`")


def key_values(items: list[str], option: str) -> dict | None:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}`` (values parsed as YAML, like config overrides).

    Example:
        >>> key_values(["epochs=10", "init=spectral"], "--clusterer-option")
        {'epochs': 10, 'init': 'spectral'}
    """
    for item in items:
        key = item.partition("=")[0].strip()
        if "=" not in item or not key or "." in key:
            raise ConfigError(f"{option} {item!r} is not of the form key=value", fix=f"e.g. {option} epochs=10")
    return apply_overrides({}, items) or None


def run_location_overrides(args: argparse.Namespace) -> list[str]:
    """``args.overrides`` plus the config overrides of ``--data-dir``, ``--name`` and ``--output-dir`` (when given).

    Example:
        >>> run_location_overrides(argparse.Namespace(overrides=["a.b=1"], data_dir="d", name=None, output_dir="o"))
        ['a.b=1', 'data.data_dir=d', 'output_dir=o']
    """
    overrides = list(getattr(args, "overrides", []) or [])
    for option, key in (("data_dir", "data.data_dir"), ("name", "name"), ("output_dir", "output_dir")):
        if getattr(args, option, None):
            overrides.append(f"{key}={getattr(args, option)}")
    return overrides


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


def print_run_result(result: Any) -> None:
    """The closing lines of a training command: the headline metrics, then the run directory."""
    if getattr(result, "summary", ""):
        print(result.summary)
    print(result.run_dir)
