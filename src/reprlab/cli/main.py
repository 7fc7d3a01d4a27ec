"""The ``reprlab`` entry point: the parser built from the command modules, logging, and one-line errors."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from reprlab.base.errors import ReprlabError

logger = logging.getLogger("reprlab")

#: Command name -> module under reprlab.cli (each has HELP, add_arguments(parser) and run(args)).
COMMANDS: tuple[str, ...] = ("demo", "train", "evaluate", "analyze", "cluster", "report", "compare", "detect",
                             "datasets", "models", "tune", "cv", "sweep", "finetune",
                             "sample", "adapt", "experiment")


def _add_global_options(p: argparse.ArgumentParser, *, top: bool) -> None:
    # accepted before and after the command: `reprlab --debug train ...` and `reprlab train ... --debug`
    default = False if top else argparse.SUPPRESS
    p.add_argument("--debug", action="store_true", default=default, help="show tracebacks and debug logging")
    p.add_argument("--quiet", action="store_true", default=default, help="only warnings and errors on stderr")


def build_parser() -> argparse.ArgumentParser:
    """The whole ``reprlab`` parser."""
    from reprlab import __version__

    p = argparse.ArgumentParser(prog="reprlab", description="Unsupervised representation learning on images.")
    p.add_argument("--version", action="version", version=f"reprlab {__version__}")
    _add_global_options(p, top=True)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"reprlab.cli.{name}")
        cp = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cp)
        _add_global_options(cp, top=False)
    return p


def _configure_logging(level: int) -> None:
    """reprlab's own log lines at ``level``; third-party INFO chatter (fonts, numba, ...) only with --debug."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger().setLevel(logging.DEBUG if level == logging.DEBUG else logging.WARNING)
    logging.getLogger("reprlab").setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``reprlab`` with ``argv``; returns the exit status (2 for a user error)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # overrides may follow options (`train c.yaml --name x a.b=1`): collect them wherever they stand
    positional = {"train": "overrides", "finetune": "overrides", "adapt": "overrides", "tune": "overrides", "cv": "overrides",
                  "sweep": "axes", "experiment": "overrides"}.get(args.command)
    stray = [e for e in extra if e.startswith("-") or "=" not in e or positional is None]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if positional:
        setattr(args, positional, list(getattr(args, positional, None) or []) + extra)
    _configure_logging(logging.DEBUG if args.debug else (logging.WARNING if args.quiet else logging.INFO))
    code = _run_command(args, positional)
    if "torch.distributed" in sys.modules:  # a torchrun worker leaves without the gloo teardown abort
        from reprlab.training.distributed import exit_distributed_process
        exit_distributed_process(code)
    return code


def _run_command(args: argparse.Namespace, positional: str | None) -> int:
    try:
        return importlib.import_module(f"reprlab.cli.{args.command}").run(args)
    except ReprlabError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        fix = ("run the same command again: finished trials, folds and combinations are kept" if positional and args.command != "train"
               else "continue the run with `reprlab train --resume RUN_DIR`")
        print(f"error: interrupted. Fix: {fix}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
