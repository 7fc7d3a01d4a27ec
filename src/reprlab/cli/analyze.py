"""``reprlab analyze``: embeddings, traversals, samples, robustness, kernels... into ``RUN_DIR/analysis/``."""

from __future__ import annotations

import argparse
from pathlib import Path

from reprlab.cli.common import add_checkpoint, add_data_dir, add_device, add_run_dir

HELP = "embeddings, traversals, samples, robustness, kernels... into RUN_DIR/analysis/"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run_dir(p)
    p.add_argument("--what", nargs="+", metavar="ANALYSIS",
                   help="embeddings traversal interpolation samples robustness kernels activations scores "
                        "(default: all the model supports)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="images to analyse (default: test)")
    p.add_argument("--method", nargs="+", default=["pca"], metavar="METHOD",
                   help="embedding methods: pca kpca tsne umap (default: pca)")
    p.add_argument("--components", type=int, default=2, help="embedding dimensions (default: 2)")
    p.add_argument("--max-points", type=int, default=5000, help="subsample the split to at most this many images")
    p.add_argument("--color-by", default="label", choices=("label", "binary", "domain", "none"))
    p.add_argument("--binary-classes", type=int, nargs="+", help="labels that count as 'yes' for --color-by binary")
    p.add_argument("--attribute", default="attribute", help="name of the binary attribute (legend title)")
    p.add_argument("--other-data", help="a second dataset (e.g. mnist) embedded too, for --color-by domain")
    p.add_argument("--image", type=int, default=0, help="image (index among the analysed ones) for traversals")
    p.add_argument("--other-image", type=int, help="second image for the interpolation")
    p.add_argument("--dims", type=int, nargs="+", help="latent dimensions to traverse (default: largest spread)")
    p.add_argument("--kernel", default="rbf", help="kernel PCA kernel: rbf poly sigmoid cosine linear")
    p.add_argument("--gamma", type=float, help="kernel PCA gamma (default 1/n_features)")
    p.add_argument("--perplexity", type=float, default=30.0, help="t-SNE perplexity")
    p.add_argument("--n-neighbors", type=int, default=15, help="UMAP n_neighbors")
    p.add_argument("--max-fit-points", type=int, help="fit the reducer on at most this many points, transform the rest")
    p.add_argument("--n-jobs", type=int, default=1, help="threads for t-SNE / UMAP")
    add_data_dir(p)
    add_checkpoint(p)
    add_device(p)


def run(args: argparse.Namespace) -> int:
    from reprlab.capabilities.analysis import analyze
    from reprlab.reporting.report import write_report

    options = {"kernel": args.kernel, "gamma": args.gamma, "perplexity": args.perplexity,
               "n_neighbors": args.n_neighbors, "max_fit_points": args.max_fit_points, "n_jobs": args.n_jobs}
    index = analyze(args.run_dir, what=args.what, split=args.split, method=args.method, n_components=args.components,
                    max_points=args.max_points, color_by=args.color_by, binary_classes=args.binary_classes,
                    attribute=args.attribute, other_data=args.other_data, image_index=args.image,
                    other_index=args.other_image, dims=args.dims, reducer_options=options, tag=args.checkpoint,
                    data_dir=args.data_dir, device=args.device)
    for item in index["items"]:
        print(f"{item['title']}: {', '.join(item['files'])}")
    if (Path(args.run_dir) / "report.html").exists():
        write_report(args.run_dir)  # the report shows the new analyses
    print(Path(args.run_dir) / "analysis" / "index.json")
    return 0
