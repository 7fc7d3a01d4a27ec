"""Command-line interface: ``reprlab demo|train|evaluate|datasets|models``.

Every user error prints one line ``error: <problem>. Fix: <fix>`` and exits with
status 2 (no traceback unless ``--debug``). ``reprlab train`` prints the run directory
as its last line of standard output.

Example:
    $ reprlab train configs/conv_ae.yaml model.latent_dim=32 train.epochs=5
    $ reprlab evaluate runs/conv_ae-fashion-mnist-20261123-101500
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Sequence

from reprlab.errors import ReprlabError

logger = logging.getLogger("reprlab")

DEMO_CONFIG = {
    "name": None,
    "data": {"name": "fashion-mnist-sample", "val_fraction": 0.1},
    "model": {"name": "conv_ae", "latent_dim": 32, "channels": [32, 64]},
    "train": {"epochs": 8, "batch_size": 64, "lr": 2e-3, "scheduler": "cosine"},
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="reprlab", description="Unsupervised representation learning on images.")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    p.add_argument("--quiet", action="store_true", help="only warnings and errors on stderr")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("demo", help="train a small conv autoencoder on the embedded Fashion-MNIST sample (~1 min)")
    d.add_argument("--output-dir", default="runs", help="parent folder of the run directory (default: runs)")
    d.add_argument("--epochs", type=int, default=None, help="override the number of epochs")

    t = sub.add_parser("train", help="train a model from a YAML config; prints the run directory last")
    t.add_argument("config", nargs="?", help="YAML config (see configs/); omit with --resume")
    t.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. model.latent_dim=16")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    t.add_argument("--data-dir", help="folder holding the datasets (else $REPRLAB_DATA, the cache, /usr/share/datasets)")
    t.add_argument("--name", help="run directory name (never overwritten)")
    t.add_argument("--output-dir", help="parent folder of the run directory (default from the config: runs)")

    e = sub.add_parser("evaluate", help="reload a run's model and print test metrics as JSON")
    e.add_argument("run_dir")
    e.add_argument("--data", help="evaluate on another dataset's test split (e.g. mnist)")
    e.add_argument("--path", help="arrays file or image folder for --data arrays|folder")
    e.add_argument("--data-dir", help="folder holding the datasets")
    e.add_argument("--checkpoint", default="best", help="checkpoint tag: best (default), last, epoch_0005, ...")
    e.add_argument("--max-images", type=int, help="evaluate at most this many images")

    an = sub.add_parser("analyze", help="embeddings, traversals, samples, robustness, kernels... into RUN_DIR/analysis/")
    an.add_argument("run_dir")
    an.add_argument("--what", nargs="+", metavar="ANALYSIS",
                    help="embeddings traversal interpolation samples robustness kernels activations scores "
                         "(default: all the model supports)")
    an.add_argument("--split", default="test", choices=("train", "val", "test"), help="images to analyse (default: test)")
    an.add_argument("--method", nargs="+", default=["pca"], metavar="METHOD",
                    help="embedding methods: pca kpca tsne umap (default: pca)")
    an.add_argument("--components", type=int, default=2, help="embedding dimensions (default: 2)")
    an.add_argument("--max-points", type=int, default=5000, help="subsample the split to at most this many images")
    an.add_argument("--color-by", default="label", choices=("label", "binary", "domain", "none"))
    an.add_argument("--binary-classes", type=int, nargs="+", help="labels that count as 'yes' for --color-by binary")
    an.add_argument("--attribute", default="attribute", help="name of the binary attribute (legend title)")
    an.add_argument("--other-data", help="a second dataset (e.g. mnist) embedded too, for --color-by domain")
    an.add_argument("--image", type=int, default=0, help="image (index among the analysed ones) for traversals")
    an.add_argument("--other-image", type=int, help="second image for the interpolation")
    an.add_argument("--dims", type=int, nargs="+", help="latent dimensions to traverse (default: largest spread)")
    an.add_argument("--kernel", default="rbf", help="kernel PCA kernel: rbf poly sigmoid cosine linear")
    an.add_argument("--gamma", type=float, help="kernel PCA gamma (default 1/n_features)")
    an.add_argument("--perplexity", type=float, default=30.0, help="t-SNE perplexity")
    an.add_argument("--n-neighbors", type=int, default=15, help="UMAP n_neighbors")
    an.add_argument("--max-fit-points", type=int, help="fit the reducer on at most this many points, transform the rest")
    an.add_argument("--n-jobs", type=int, default=1, help="threads for t-SNE / UMAP")
    an.add_argument("--data-dir", help="folder holding the datasets")
    an.add_argument("--checkpoint", default="best", help="checkpoint tag (default: best)")
    an.add_argument("--device", default="auto", help="auto, cpu, cuda")

    rp = sub.add_parser("report", help="write RUN_DIR/report.html (self-contained); prints its path")
    rp.add_argument("run_dir")
    rp.add_argument("--no-analyze", action="store_true", help="do not run the quick analysis when the run has none")

    cp = sub.add_parser("compare", help="compare runs side by side in one HTML page; prints its path")
    cp.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    cp.add_argument("--out", help="output folder (default: comparison-<time> beside the first run)")

    ds = sub.add_parser("datasets", help="list datasets and where each was found")
    ds.add_argument("--data-dir", help="folder holding the datasets")
    sub.add_parser("models", help="list registered models and their options")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    # overrides may follow options (`train c.yaml --name x a.b=1`): collect them wherever they stand
    stray = [e for e in extra if e.startswith("-") or "=" not in e or args.command != "train"]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if args.command == "train":
        args.overrides = list(args.overrides) + extra
    level = logging.DEBUG if args.debug else (logging.WARNING if args.quiet else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return _dispatch(args)
    except ReprlabError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted. Fix: continue the run with `reprlab train --resume RUN_DIR`", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    from reprlab import api

    if args.command == "demo":
        overrides = [f"output_dir={args.output_dir}"] + ([f"train.epochs={args.epochs}"] if args.epochs else [])
        result = api.train(DEMO_CONFIG, overrides=overrides)
        _print_result(result)
        return 0
    if args.command == "train":
        if args.resume:
            if args.config or args.overrides:
                from reprlab.errors import ConfigError

                raise ConfigError("--resume takes no config or overrides: a run continues with its saved config",
                                  fix=f"run `reprlab train --resume {args.resume}` alone")
            result = api.resume(args.resume)
        else:
            if not args.config:
                from reprlab.errors import ConfigError

                raise ConfigError("no config given", fix="run `reprlab train configs/conv_ae.yaml` (or --resume RUN_DIR)")
            overrides = list(args.overrides)
            if args.data_dir:
                overrides.append(f"data.data_dir={args.data_dir}")
            if args.name:
                overrides.append(f"name={args.name}")
            if args.output_dir:
                overrides.append(f"output_dir={args.output_dir}")
            result = api.train(args.config, overrides=overrides)
        _print_result(result)
        return 0
    if args.command == "evaluate":
        metrics = api.evaluate(args.run_dir, data=args.data, path=args.path, data_dir=args.data_dir,
                               tag=args.checkpoint, max_images=args.max_images)
        print(json.dumps(metrics, indent=2, sort_keys=True))
        return 0
    if args.command == "analyze":
        from reprlab.analysis import analyze

        options = {"kernel": args.kernel, "gamma": args.gamma, "perplexity": args.perplexity,
                   "n_neighbors": args.n_neighbors, "max_fit_points": args.max_fit_points, "n_jobs": args.n_jobs}
        index = analyze(args.run_dir, what=args.what, split=args.split, method=args.method,
                        n_components=args.components, max_points=args.max_points, color_by=args.color_by,
                        binary_classes=args.binary_classes, attribute=args.attribute, other_data=args.other_data,
                        image_index=args.image, other_index=args.other_image, dims=args.dims, reducer_options=options,
                        tag=args.checkpoint, data_dir=args.data_dir, device=args.device)
        for item in index["items"]:
            print(f"{item['title']}: {', '.join(item['files'])}")
        from pathlib import Path

        print(Path(args.run_dir) / "analysis" / "index.json")
        return 0
    if args.command == "report":
        from reprlab.reporting.report import write_report

        print(write_report(args.run_dir, analyze=not args.no_analyze))
        return 0
    if args.command == "compare":
        from reprlab.reporting.report import write_comparison

        print(write_comparison(args.run_dirs, args.out))
        return 0
    if args.command == "datasets":
        from reprlab.data import describe_datasets

        for row in describe_datasets(args.data_dir):
            print(f"{row['name']:<22} {row.get('where', '')}")
        return 0
    if args.command == "models":
        import dataclasses

        from reprlab.models.registry import get_model_entry, list_models

        for name in list_models():
            cls, config_cls = get_model_entry(name)
            doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
            print(f"{name:<10} {doc}")
            opts = ", ".join(f"{f.name}={_default(f)}" for f in dataclasses.fields(config_cls) if f.name != "input_shape")
            print(f"{'':<10} options: {opts}")
        return 0
    raise AssertionError(args.command)  # argparse restricts the choices


def _default(f) -> str:
    import dataclasses

    if f.default is not dataclasses.MISSING:
        return repr(f.default)
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return repr(f.default_factory())  # type: ignore[misc]
    return "?"


def _print_result(result) -> None:
    keys = [k for k in ("test/mse", "test/psnr", "test/ssim", "test/elbo_nats", "test/kl") if k in result.metrics]
    if keys:
        print("  ".join(f"{k}={result.metrics[k]:.4f}" for k in keys))
    print(result.run_dir)


if __name__ == "__main__":
    sys.exit(main())
