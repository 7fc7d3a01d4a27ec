"""Draw PixelDA's translations of the same source images by several finished runs, one row each.

The first row holds the source images (the source dataset's test split, resized and coloured as the
first run was trained), then one row per run (its label-free checkpoint by default), then, with
``--target``, as many target images for comparison. The noise is seeded, so a rerun draws the same.

    python bench/translations.py RUN_WITHOUT_WARP RUN_WITH_WARP --labels "no warp" "affine warp" \\
        --target --out docs/img/pixelda_mnist_usps_warp.png --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main(argv: list[str] | None = None) -> int:
    from reprlab.base.errors import ReprlabError
    from reprlab.capabilities.adaptation.plots import plot_image_rows
    from reprlab.config import RunConfig
    from reprlab.config.core import read_config_file
    from reprlab.data import load_dataset
    from reprlab.runs.model import load_run_model
    from reprlab.runs.rundir import RunDir

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="finished pixelda adapt run directories")
    p.add_argument("--labels", nargs="*", default=None, help="one short row label per run (default: run 1, run 2, ...)")
    p.add_argument("--tag", default="best", help="checkpoint: best (the label-free pick), last or oracle")
    p.add_argument("--n", type=int, default=12, help="images per row")
    p.add_argument("--target", action="store_true", help="add a row of target images")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if args.labels and len(args.labels) != len(args.runs):
        p.error(f"{len(args.labels)} labels for {len(args.runs)} runs: give one label per run, or none")
    try:
        cfg = RunConfig.from_dict(read_config_file(RunDir.open(args.runs[0]).path / "config.yaml"))
        size, channels = cfg.data.resize, cfg.data.channels
        source = load_dataset(cfg.data.name, "test", data_dir=args.data_dir, resize=size, channels=channels)
        x01 = source.float01(slice(0, args.n))
        rows = [(cfg.data.name, x01)]
        labels = args.labels or [f"run {i + 1}" for i in range(len(args.runs))]
        for run, label in zip(args.runs, labels):
            print(f"{label}: {run}")
            model = load_run_model(run, args.tag).eval()
            if not hasattr(model, "translate"):
                raise ReprlabError(f"{run} is not a pixelda run (its model has no translate)",
                                   fix="give the directories of pixelda adapt runs")
            z = model.noise(len(x01), generator=torch.Generator().manual_seed(args.seed))
            with torch.no_grad():
                rows.append((label, (model.translate(x01 * 2 - 1, z) + 1) / 2))
        if args.target:
            target = load_dataset(cfg.adapt.target, "test", data_dir=args.data_dir, resize=size, channels=channels)
            rows.append((cfg.adapt.target, target.float01(slice(0, args.n))))
    except ReprlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(plot_image_rows(rows, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
