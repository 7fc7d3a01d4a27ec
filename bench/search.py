"""Benchmark of ``reprlab tune``: pruning's CPU saving, and one worker against two.

1. The same search (same sampler seed, so the same trial parameters while TPE is still in its random
   start-up phase) with ``--pruner none`` and with each of ``--pruners`` (median by default, or any
   name of ``reprlab tune --pruner``; ``NAME:KEY=VALUE,...`` sets the pruner's options, e.g.
   ``percentile:n_warmup_steps=0``; ``--skip-unpruned`` leaves the unpruned search out):
   best value, CPU time (the tune process and its workers), wall time, trials pruned. With several
   ``--search-seeds`` the comparison is repeated per sampler seed, which shows how far the best value
   of a 20-trial search moves with the seed alone (the noise a pruned search is judged against).
2. ``--workers 1`` against ``--workers 2`` on one shared storage (a journal file by default, or the
   PostgreSQL URL of ``--storage``): wall time, CPU time, and the trial count check (every trial
   complete, one run directory each, none run twice).

Every figure comes from running ``reprlab tune`` as a subprocess and reading its study back.

    python bench/search.py                                # the small version (embedded sample, minutes)
    python bench/search.py --data fashion-mnist --max-train 60000 --trials 20 --epochs 10   # the full one
    python bench/search.py --only workers --storage postgresql://USER:PASS@HOST:5432/DB
    python bench/search.py --only pruning --search-seeds 0 1 2 --pruners median median:n_warmup_steps=0
    python bench/search.py --only pruning --search-seeds 2 --pruners percentile:n_warmup_steps=0 --skip-unpruned

Results: bench/results/search.json (and printed).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir, save  # noqa: E402

SPACE = {"model.latent_dim": {"type": "int", "low": 8, "high": 32, "step": 8},
         "train.batch_size": [32, 64, 128],
         "model.dropout": {"type": "float", "low": 0.0, "high": 0.3},
         "train.lr": {"type": "float", "low": 3e-4, "high": 1e-2, "log": True},
         "train.weight_decay": {"type": "float", "low": 1e-6, "high": 1e-3, "log": True}}


def pruner_args(spec: str) -> tuple[str, list[str]]:
    """``NAME[:KEY=VALUE,...]`` -> the pruner name and its ``search.pruner_options.KEY=VALUE`` overrides.

    Example:
        >>> pruner_args("median:n_warmup_steps=0")
        ('median', ['search.pruner_options.n_warmup_steps=0'])
    """
    name, _, options = spec.partition(":")
    return name, [f"search.pruner_options.{kv}" for kv in options.split(",") if kv]


def base_config(args, root: Path) -> dict:
    data = {"name": args.data, "max_train": args.max_train, "max_test": args.max_test}
    if args.data_dir:
        data["data_dir"] = args.data_dir
    return {"seed": 0, "output_dir": str(root / "runs"),
            "data": data,
            "model": {"name": "conv_ae", "latent_dim": 16, "channels": [16, 32], "upsample": "pixelshuffle"},
            "train": {"epochs": args.epochs, "batch_size": 64, "lr": 2e-3, "progress": "off", "num_threads": 1},
            "eval": {"figures": False, "report": False},
            "search": {"trials": args.trials, "space": SPACE, "seed": 0}}


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_tune(config: Path, *extra: str) -> dict:
    """Run ``reprlab tune CONFIG EXTRA`` and return wall / CPU seconds and the study summary."""
    cmd = [sys.executable, "-m", "reprlab", "--quiet", "tune", str(config), *extra]
    cpu0, t0 = cpu_children(), time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, cpu_children() - cpu0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    study_dir = Path(done.stdout.strip().splitlines()[-1])
    summary = json.loads((study_dir / "study.json").read_text())
    epochs, epoch_s = 0, 0.0  # the training epochs all trials ran, and their seconds (metrics.csv time_s)
    for path in (study_dir / "trials").glob("*/metrics.csv"):
        with open(path) as f:
            rows = list(csv.DictReader(f))
        epochs += len(rows)
        epoch_s += sum(float(r["time_s"]) for r in rows)
    return {"command": " ".join(["reprlab", "tune", config.name, *extra]), "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1), "best_value": summary["best_value"], "counts": summary["counts"],
            "epochs_run": epochs, "epoch_seconds": round(epoch_s, 1), "study_dir": str(study_dir)}


def trial_check(study_dir: Path, storage: str, name: str) -> dict:
    """Every trial complete, one run directory each (none run twice, none lost)."""
    import optuna

    from reprlab.experiments.search import open_storage

    trials = optuna.load_study(study_name=name, storage=open_storage(storage)).trials
    run_dirs = [t.user_attrs.get("run_dir") for t in trials]
    on_disk = sorted(str(p) for p in (study_dir / "trials").iterdir())
    return {"trials": len(trials), "complete": sum(t.state.name == "COMPLETE" for t in trials),
            "distinct_run_dirs": len(set(run_dirs)), "run_dirs_on_disk": len(on_disk),
            "workers_seen": len({t.user_attrs.get("pid") for t in trials})}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="fashion-mnist-sample")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--max-train", type=int, default=800)
    p.add_argument("--max-test", type=int, default=200)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--trials", type=int, default=6)
    p.add_argument("--worker-trials", type=int, default=4, help="trials of the 1-vs-2-worker comparison")
    p.add_argument("--storage", default=None, help="shared storage of the worker comparison (default: a journal file)")
    p.add_argument("--only", choices=("pruning", "workers"), default=None)
    p.add_argument("--pruners", nargs="+", default=["median"],
                   help="pruners compared with the unpruned search: median, percentile, hyperband, successive_halving, "
                        "or NAME:KEY=VALUE,... "
                        "with the pruner's options (default: median)")
    p.add_argument("--search-seeds", nargs="+", type=int, default=[0],
                   help="sampler seeds (search.seed): the comparison is repeated for each (default: 0)")
    p.add_argument("--skip-unpruned", action="store_true",
                   help="run only the pruned searches (their unpruned baselines already measured on this machine)")
    p.add_argument("--tag", default="search", help="name of the results file under bench/results (default search)")
    args = p.parse_args()
    args.data_dir = data_dir(args.data_dir) if args.data != "fashion-mnist-sample" else args.data_dir
    root = Path(tempfile.mkdtemp(prefix="bench-search-"))
    cfg = base_config(args, root)
    config = root / "bench_search.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    results: dict = {"config": cfg, "cpu_count": os.cpu_count()}
    if args.only in (None, "pruning"):
        results["pruning"] = {}
        for seed in args.search_seeds:
            per_seed = results["pruning"][f"seed{seed}"] = {}
            seed_arg = [f"search.seed={seed}"]
            unpruned = None if args.skip_unpruned else run_tune(config, "--study-name", f"unpruned-s{seed}",
                                                                "--pruner", "none", *seed_arg)
            if unpruned is not None:
                per_seed["none"] = unpruned
            for spec in args.pruners:
                name, options = pruner_args(spec)
                tag = re.sub(r"[^A-Za-z0-9_]+", "-", spec)
                pruned = per_seed[spec] = run_tune(config, "--study-name", f"pruned-{tag}-s{seed}", "--pruner", name,
                                                   *seed_arg, *options)
                if unpruned is not None:
                    pruned["cpu_saving"] = round(1 - pruned["cpu_s"] / unpruned["cpu_s"], 3)
            for spec, r in per_seed.items():
                print(f"seed {seed} pruner={spec}: best={r['best_value']:.5g} cpu={r['cpu_s']}s wall={r['wall_s']}s "
                      f"epochs={r['epochs_run']} ({r['epoch_seconds']}s) pruned={r['counts'].get('pruned', 0)}"
                      + (f" saving={r['cpu_saving']:.0%}" if "cpu_saving" in r else ""))
        if len(args.search_seeds) > 1 and not args.skip_unpruned:
            summary = results["pruning"]["summary"] = {}
            for spec in ("none", *args.pruners):
                runs = [results["pruning"][f"seed{s}"][spec] for s in args.search_seeds]
                best = [r["best_value"] for r in runs]
                cpu = sum(r["cpu_s"] for r in runs)
                summary[spec] = {"best_mean": statistics.mean(best), "best_std": statistics.stdev(best),
                                 "cpu_s_total": round(cpu, 1)}
            base = summary["none"]["cpu_s_total"]
            for spec, row in summary.items():
                row["cpu_saving"] = round(1 - row["cpu_s_total"] / base, 3)
                print(f"over seeds {args.search_seeds}: pruner={spec}: best {row['best_mean']:.5g} +- "
                      f"{row['best_std']:.2g}, cpu {row['cpu_s_total']}s, saving {row['cpu_saving']:.0%}")
    if args.only in (None, "workers"):
        rows = {}
        for workers in (1, 2):
            name = f"workers{workers}"
            storage = args.storage or f"journal:{root / f'{name}.log'}"
            extra = ["--study-name", name, "--trials", str(args.worker_trials), "--workers", str(workers),
                     "--storage", storage, "--pruner", "none"]
            row = run_tune(config, *extra)
            row["command"] = row["command"].replace(storage, "STORAGE")
            row["check"] = trial_check(Path(row["study_dir"]), storage, name)
            rows[workers] = row
            print(f"workers={workers}: wall={row['wall_s']}s cpu={row['cpu_s']}s check={row['check']}")
        results["workers"] = {"storage": "postgresql" if args.storage else "journal", "one": rows[1], "two": rows[2],
                              "wall_ratio_2_over_1": round(rows[2]["wall_s"] / rows[1]["wall_s"], 3)}
        print(f"wall(2 workers) / wall(1 worker) = {results['workers']['wall_ratio_2_over_1']}")
    print(f"saved {save(args.tag, results)}")


if __name__ == "__main__":
    main()
