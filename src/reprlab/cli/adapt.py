"""``reprlab adapt --source mnist --target mnist-m --method dann``: a domain-adaptation run in one command.

The config comes from ``--config``, else ``configs/adapt_<source>_<target>.yaml`` (beside the
checkout, or under the working directory) when present, else the built-in defaults
(:func:`reprlab.capabilities.adaptation.config.adapt_config`); then ``--method``, ``--seed``,
``--epochs`` and the other options, then trailing ``key=value`` overrides. Trains through
:func:`reprlab.experiments.train.train` and prints the headline metrics and the run directory last.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from reprlab.cli.common import add_data_dir, add_device, add_output_dir, print_run_result, run_location_overrides

logger = logging.getLogger(__name__)

HELP = ("domain adaptation: train on a labelled source and an unlabelled target (source_only, dann, pixelda, "
        "target_only); prints the run directory last")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. adapt.max_target=2000")
    p.add_argument("--source", default="mnist", help="labelled source dataset (default mnist)")
    p.add_argument("--target", required=True, help="target dataset: mnist-m, usps, mnist, svhn, arrays or folder")
    p.add_argument("--method", default=None, help="source_only, dann (default), pixelda or target_only")
    p.add_argument("--selection", default=None, help="label-free checkpoint criterion: source_val, entropy, dev, snd, last")
    p.add_argument("--protocol", default=None, help="auto (default), splits or holdout")
    p.add_argument("--config", default=None, help="a YAML config to start from (default: configs/adapt_SOURCE_TARGET.yaml "
                                                   "when present, else built-in defaults)")
    p.add_argument("--seed", type=int, default=None, help="seed of the run and of the target split")
    p.add_argument("--epochs", type=int, default=None, help="training epochs")
    p.add_argument("--max-train", type=int, default=None, help="cap on the source training images")
    p.add_argument("--max-target", type=int, default=None, help="cap on the target adaptation images")
    add_data_dir(p)
    add_device(p)
    p.add_argument("--name", help="run directory name (never overwritten)")
    add_output_dir(p, default=None)


def config_path(source: str, target: str, method: str | None = None) -> Path | None:
    """``configs/adapt_<source>_<target>_<method>.yaml``, else ``configs/adapt_<source>_<target>.yaml``
    (dashes dropped: ``mnist-m`` -> ``mnistm``), under the working directory or beside the checkout.

    Example:
        >>> config_path("nosuch", "data") is None
        True
    """
    stem = f"adapt_{source.replace('-', '')}_{target.replace('-', '')}"
    names = ([f"{stem}_{method}.yaml"] if method else []) + [f"{stem}.yaml"]
    for name in names:
        for root in (Path.cwd(), Path(__file__).resolve().parents[3]):
            if (root / "configs" / name).is_file():
                return root / "configs" / name
    return None


def build_config(args: argparse.Namespace) -> tuple[dict, list[str]]:
    """The config dict and the overrides of ``args`` (options first, then the trailing ``key=value``)."""
    from reprlab.capabilities.adaptation.config import METHOD_MODELS, adapt_config
    from reprlab.config.core import read_config_file

    path = Path(args.config) if args.config else config_path(args.source, args.target, args.method)
    defaults = adapt_config(args.source, args.target, args.method or "dann")
    if path is not None:
        cfg = read_config_file(path)
        cfg.setdefault("task", "adapt")
        cfg.setdefault("data", {})["name"] = args.source
        cfg.setdefault("adapt", {})["target"] = args.target
        model = (cfg.get("model") or {}).get("name")
        needed = METHOD_MODELS.get(args.method or "", [])
        if (needed and model not in needed) or (args.method in ("source_only", "target_only") and model == "pixelda"):
            # e.g. --method pixelda with a DANN config: that method's default network and optimiser
            logger.info("%s: model %s does not train --method %s; using the defaults' model and optimiser",
                        path, model, args.method)
            cfg["model"], cfg["train"] = defaults["model"], {**cfg.get("train", {}), **defaults["train"]}
    else:
        cfg = defaults
    options = []
    for value, key in ((args.method, "adapt.method"), (args.selection, "adapt.selection"),
                       (args.protocol, "adapt.protocol"), (args.seed, "seed"), (args.epochs, "train.epochs"),
                       (args.max_train, "data.max_train"), (args.max_target, "adapt.max_target"),
                       (args.device if args.device != "auto" else None, "train.device")):
        if value is not None:
            options.append(f"{key}={value}")
    if args.method in ("source_only", "target_only") and isinstance(cfg.get("model"), dict):
        cfg["model"].pop("adapt_weight", None)  # the bounds train the same network without adaptation
    return cfg, options + run_location_overrides(args)


def run(args: argparse.Namespace) -> int:
    from reprlab.experiments.train import train

    from reprlab.config import apply_overrides

    cfg, overrides = build_config(args)
    # overrides go into the raw dict: the defaults alone may not validate (e.g. arrays without a path yet)
    print_run_result(train(apply_overrides(cfg, overrides)))
    return 0
