"""``reprlab experiment``: run a recipe (``run PATH|NAME``) or list the recipes (``list``)."""

from __future__ import annotations

import argparse

from reprlab.cli.common import add_data_dir

HELP = "run an experiment recipe (experiments/NAME.yaml) end to end, or list them"

#: Exit status of ``reprlab experiment run --strict`` when an expectation fails.
EXIT_EXPECTATION = 1


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    r = sub.add_parser("run", help="run a recipe (reusing finished steps); prints the report path last")
    r.add_argument("recipe", help="recipe YAML, or the name of one under experiments/")
    r.add_argument("overrides", nargs="*", help="key=value on the recipe (data.name=arrays) or run.KEY=V on every run")
    r.add_argument("--quick", action="store_true", help="tiny data, a few epochs: the whole recipe in about a minute")
    add_data_dir(r)
    r.add_argument("--output-dir", default="runs", help="parent folder of OUT/NAME (default: runs)")
    r.add_argument("--seed", type=int, help="seed of every run (default: the recipe's)")
    r.add_argument("--strict", action="store_true",
                   help=f"exit with status {EXIT_EXPECTATION} when an expectation fails (default: print it and exit 0)")
    sub.add_parser("list", help="list the recipes with their budgets")


def run(args: argparse.Namespace) -> int:
    import textwrap

    from reprlab.experiments.recipes import list_recipe_files, load, run_recipe

    if args.action == "list":
        for path in list_recipe_files():
            r = load(path)
            print(f"{r.name:<28} {r.budget.get('cpu_minutes'):>5} CPU-min  {textwrap.shorten(r.description, 100)}")
        return 0
    result = run_recipe(args.recipe, quick=args.quick, overrides=args.overrides, seed=args.seed,
                        data_dir=args.data_dir, output_dir=args.output_dir)
    for t in result.tables:
        print(f"\n{t['title']}")
        label_width = max([16] + [len(row["label"]) for row in t["rows"]])
        widths = [max(14, len(c)) for c in t["columns"]]
        print("  ".join([" " * label_width] + [f"{c:>{w}}" for c, w in zip(t["columns"], widths)]))
        for row in t["rows"]:
            if row.get("skipped"):
                print(f"{row['label']:<{label_width}}  not run: {row['skipped']}")
                continue
            cells = [f"{v:>{w}.4g}" if isinstance(v, (int, float)) else f"{v!s:>{w}}" for v, w in zip(row["cells"], widths)]
            print("  ".join([f"{row['label']:<{label_width}}"] + cells))
    print()
    print(result.expectation_lines())
    skipped = f", {len(result.skipped)} skipped ({'; '.join(f'{n}: {why}' for n, why in result.skipped.items())})" \
        if result.skipped else ""
    print(f"\n{len(result.trained)} step(s) run, {len(result.reused)} reused{skipped}, {result.seconds:.1f} s")
    print(result.report)
    if args.strict and result.failed_expectations:
        return EXIT_EXPECTATION
    return 0
