"""``reprlab models``: the registered models and their options (and the registered tasks)."""

from __future__ import annotations

import argparse
import dataclasses

HELP = "list registered models and their options, and the tasks"


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return repr(f.default)
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return repr(f.default_factory())  # type: ignore[misc]
    return "?"


def run(args: argparse.Namespace) -> int:
    from reprlab.models.registry import get_model_entry, list_models
    from reprlab.tasks import get_task, list_tasks

    for name in list_models():
        cls, config_cls = get_model_entry(name)
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        print(f"{name:<10} {doc}")
        opts = ", ".join(f"{f.name}={_default(f)}" for f in dataclasses.fields(config_cls) if f.name != "input_shape")
        print(f"{'':<10} options: {opts}")
    print()
    for name in list_tasks():
        task = get_task(name)
        print(f"task {name:<12} {(type(task).__doc__ or '').strip().splitlines()[0] if type(task).__doc__ else ''}")
    return 0
