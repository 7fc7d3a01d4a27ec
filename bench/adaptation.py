"""Unsupervised domain adaptation on digits (issue 14): source-only / DANN / PixelDA / target-only.

For each ``--task`` (``mnist-usps``, ``usps-mnist``, ``mnist-mnistm``, ``usps-mnistm``, ``svhn-mnist``)
and each ``--methods`` x ``--seeds``, one ``adapt`` run through :func:`reprlab.train`, with the config
``reprlab adapt --source S --target T --method M`` would use (``configs/adapt_S_T[_M].yaml`` or the
built-in defaults) plus this script's caps. Recorded per run: target accuracy of the LABEL-FREE
checkpoint (``adapt.selection``, default source validation accuracy: no target label used), of the
ORACLE checkpoint (the epoch of the best target accuracy: uses the target's labels, shown for
comparison with published numbers, never the default), of the last epoch, the protocol (which
target images adapt and which evaluate, how many, split seed), and the CPU time of the run
(``time.process_time()`` of this process plus ``resource.getrusage(RUSAGE_CHILDREN)``, i.e. all
threads). The table gives mean ± std (ddof=1) over seeds, label-free and oracle in SEPARATE columns.
Results: ``bench/results/adaptation_<tag>.json`` and ``.md``; with ``--tsne`` a t-SNE figure of the
seed-0 runs of each task (``_<task>_tsne.png``: one row per method, by domain and by class).

    python bench/adaptation.py --task mnist-usps --quick                 # a minute: end-to-end check
    python bench/adaptation.py --task mnist-usps usps-mnist mnist-mnistm usps-mnistm --seeds 0 1 2
    python bench/adaptation.py --task mnist-mnistm --methods source_only dann --epochs 5 --max-train 20000

Measured 2026-12-02 (2 shared CPU cores, torch 2.13 CPU, 2 threads; a small version, NOT the issue's
protocol: 3 epochs, 3,000 source and 3,000 target adaptation images, the whole USPS test split)::

    python bench/adaptation.py --task mnist-usps --methods source_only dann target_only --seeds 0 1 2 \
        --epochs 3 --max-train 3000 --max-target 3000 --threads 2

    | task | method | target acc, label-free (source_val) (%) | target acc, ORACLE (target labels) (%) | last epoch (%) | seeds | CPU s / run | protocol |
    |---|---|---|---|---|---|---|---|
    | mnist->usps | source_only | 62.1 ± 2.0 | 62.1 ± 2.0 | 62.1 ± 2.0 | 3 | 46.8 | splits: 3000 adapt / 2007 eval, split seed(s) 0,1,2 |
    | mnist->usps | dann | 67.6 ± 0.6 | 67.6 ± 0.6 | 67.6 ± 0.6 | 3 | 71.6 | splits: 3000 adapt / 2007 eval, split seed(s) 0,1,2 |
    | mnist->usps | target_only | 88.3 ± 0.4 | 88.3 ± 0.4 | 88.3 ± 0.4 | 3 | 44.9 | splits: 3000 adapt / 2007 eval, split seed(s) 0,1,2 |

(In 3 epochs accuracy still rises every epoch, so the label-free, oracle and last checkpoints coincide.)
``--quick`` (1 epoch, 500 / 500 / 500 images, seeds 0 1, all four methods incl. pixelda) ran end to end
in about 4.5 minutes of wall time; its accuracies are at chance (8 SGD steps) and only check the plumbing.
"""

from __future__ import annotations

import argparse
import logging
import math
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, data_dir, save  # noqa: E402

TASKS = {"mnist-usps": ("mnist", "usps"), "usps-mnist": ("usps", "mnist"), "mnist-mnistm": ("mnist", "mnist-m"),
         "usps-mnistm": ("usps", "mnist-m"), "svhn-mnist": ("svhn", "mnist")}
METHODS = ("source_only", "dann", "pixelda", "target_only")


def cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (user + system)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def run_config(source: str, target: str, method: str, args: argparse.Namespace, seed: int) -> dict:
    """The ``reprlab adapt`` config of one run, with this script's caps applied."""
    from reprlab.cli.adapt import build_config
    from reprlab.config import apply_overrides

    ns = argparse.Namespace(source=source, target=target, method=method, selection=args.selection, protocol=None,
                            config=None, seed=seed, epochs=args.epochs, max_train=args.max_train,
                            max_target=args.max_target, device=args.device, data_dir=data_dir(args.data_dir),
                            name=None, output_dir=str(args.output_dir), overrides=[])
    cfg, overrides = build_config(ns)
    overrides += ["eval.figures=false", "eval.report=false", "train.progress=off",
                  f"name={args.tag}_{source}-{target}_{method}_s{seed}"]
    if args.max_eval:
        overrides.append(f"adapt.max_eval={args.max_eval}")
    if args.threads:
        overrides.append(f"train.num_threads={args.threads}")
    overrides += args.set
    return apply_overrides(cfg, overrides)


def one_run(source: str, target: str, method: str, args: argparse.Namespace, seed: int) -> dict:
    import reprlab
    from reprlab.base.errors import ReprlabError

    row = {"task": f"{source}->{target}", "method": method, "seed": seed}
    start_cpu, start_wall = cpu_seconds(), time.perf_counter()
    try:
        result = reprlab.train(run_config(source, target, method, args, seed))
    except ReprlabError as exc:
        row["error"] = str(exc)
        print(f"  {row['task']} {method} seed {seed}: FAILED: {exc}", flush=True)
        return row
    m = result.metrics
    row.update({"run_dir": str(result.run_dir), "cpu_s": round(cpu_seconds() - start_cpu, 1),
                "wall_s": round(time.perf_counter() - start_wall, 1), "label_free_acc": m.get("test/acc"),
                "oracle_acc": m.get("oracle/acc"), "last_acc": m.get("last/acc"),
                "selection": m.get("select/criterion"), "label_free_epoch": m.get("select/epoch"),
                "oracle_epoch": m.get("oracle/epoch"), "epochs": m.get("epochs"),
                "protocol": {k.split("/", 1)[1]: v for k, v in m.items() if k.startswith("adapt/")}})
    print(f"  {row['task']} {method} seed {seed}: label-free {row['label_free_acc']:.4f} (epoch "
          f"{row['label_free_epoch']}), oracle {row['oracle_acc']:.4f} (epoch {row['oracle_epoch']}), "
          f"{row['cpu_s']:.0f} CPU s", flush=True)
    return row


def _mean_std(values: list[float]) -> str:
    if not values:
        return "n/a"
    v = np.array(values, dtype=float) * 100
    return f"{v.mean():.1f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.1f}"


def summarise(rows: list[dict]) -> list[dict]:
    """One line per (task, method): mean ± std of label-free, oracle and last accuracy, seeds, CPU s, protocol."""
    out = []
    for key in dict.fromkeys((r["task"], r["method"]) for r in rows):
        ok = [r for r in rows if (r["task"], r["method"]) == key and "error" not in r]
        failed = [r for r in rows if (r["task"], r["method"]) == key and "error" in r]
        p = ok[0]["protocol"] if ok else {}
        split_seeds = ",".join(str(s) for s in dict.fromkeys(r["protocol"].get("split_seed") for r in ok))
        out.append({"task": key[0], "method": key[1], "label_free": _mean_std([r["label_free_acc"] for r in ok]),
                    "oracle": _mean_std([r["oracle_acc"] for r in ok]), "last": _mean_std([r["last_acc"] for r in ok]),
                    "seeds": len(ok), "failed": len(failed),
                    "cpu_s": round(float(np.mean([r["cpu_s"] for r in ok])), 1) if ok else math.nan,
                    "protocol": (f"{p.get('protocol')}: {p.get('adaptation_images')} adapt / "
                                 f"{p.get('evaluation_images')} eval, split seed(s) {split_seeds}") if p else
                                (failed[0]["error"][:80] if failed else "")})
    return out


def failed_note(row: dict) -> str:
    return f" ({row['failed']} failed)" if row["failed"] else ""


def markdown(table: list[dict], selection: str) -> str:
    lines = [f"| task | method | target acc, label-free ({selection}) (%) | target acc, ORACLE (target labels) (%) | "
             "last epoch (%) | seeds | CPU s / run | protocol |", "|---|---|---|---|---|---|---|---|"]
    for r in table:
        lines.append(f"| {r['task']} | {r['method']} | {r['label_free']} | {r['oracle']} | {r['last']} | "
                     f"{r['seeds']}{failed_note(r)} "
                     f"| {r['cpu_s']} | {r['protocol']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", nargs="+", default=["mnist-usps"], choices=sorted(TASKS))
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: the config's)")
    p.add_argument("--max-train", type=int, default=None, help="cap on source training images")
    p.add_argument("--max-target", type=int, default=None, help="cap on target adaptation images")
    p.add_argument("--max-eval", type=int, default=None, help="cap on target evaluation images")
    p.add_argument("--selection", default=None, help="label-free criterion: source_val (default), entropy, dev, snd, last")
    p.add_argument("--quick", action="store_true", help="1 epoch, 500 source / 500 target / 500 evaluation images")
    p.add_argument("--tsne", action="store_true", help="a t-SNE figure of the seed-0 runs of each task")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--output-dir", type=Path, default=Path("runs") / "bench_adaptation")
    p.add_argument("--tag", default=None)
    p.add_argument("--set", nargs="*", default=[], help="extra key=value overrides for every run")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.quick:
        args.epochs = args.epochs or 1
        args.max_train = args.max_train or 500
        args.max_target = args.max_target or 500
        args.max_eval = args.max_eval or 500
    args.tag = args.tag or ("adaptation_quick" if args.quick else "adaptation_" + "_".join(args.task))
    args.output_dir = args.output_dir / f"{args.tag}-{time.strftime('%Y%m%d-%H%M%S')}"  # run names never collide
    rows = []
    for task in args.task:
        source, target = TASKS[task]
        for method in args.methods:
            for seed in args.seeds:
                rows.append(one_run(source, target, method, args, seed))
        if args.tsne:
            from reprlab.capabilities.adaptation.report import compare_run_embeddings

            dirs = [r["run_dir"] for r in rows if r["task"] == f"{source}->{target}" and r["seed"] == args.seeds[0]
                    and "run_dir" in r]
            if dirs:
                fig = compare_run_embeddings(dirs, RESULTS / f"{args.tag}_{task}_tsne.png", seed=args.seeds[0])
                print(f"t-SNE: {fig}")
    table = summarise(rows)
    # the criterion the runs recorded (the configs choose it, e.g. last for DANN), not an assumed default
    used = sorted({str(r["selection"]) for r in rows if r.get("selection")}) or [args.selection or "source_val"]
    md = markdown(table, "/".join(used))
    path = save(args.tag, {"command": "python bench/adaptation.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                           "rows": rows, "table": table})
    path.with_suffix(".md").write_text(md + "\n")
    print(md)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
