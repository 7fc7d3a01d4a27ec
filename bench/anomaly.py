"""Fashion-MNIST one-class anomaly detection: reprlab's detectors against PyOD's AutoEncoder and DeepSVDD.

Protocol: for each class c (0..9), train on the 6,000 training images of class c only and
score all 10,000 test images (class c normal, the other nine classes anomalous); report
the ROC AUC per class, the mean over classes, mean ± std over seeds, and the CPU time
(``time.process_time``: fit + scoring, all threads of the process) and wall time per class.

Methods, all on the same splits in the same process:

* ``reprlab-fast``: preset ``fast``, a cheap model-free setting (k-NN distances of blurred
  pixels and of HOG descriptors) meant to beat PyOD's AutoEncoder in at most twice its time;
* ``reprlab-full``: preset ``full``, the accurate setting (``rotnet``: rotation/flip
  prediction; score = standardised sum of the transformation NLL, the k-NN distance of
  the codes and the two ``fast`` scores);
* ``reprlab-ae``: preset ``ae`` = ``AnomalyDetector()`` with its defaults (a ``conv_ae`` trained for 10
  epochs, reconstruction MSE), the plain autoencoder detector;
* ``pyod-ae``, ``pyod-deepsvdd``: PyOD's ``AutoEncoder()`` and ``DeepSVDD(n_features=784)``
  with their default settings on flattened pixels in [0, 1] (``verbose=0`` and
  ``random_state=seed`` only), installed with ``pip install -e .[bench]``.

Results are appended to ``bench/results/<tag>.json`` after every (method, seed, class),
so an interrupted run continues where it stopped (finished entries are skipped);
``--report`` prints the Markdown tables of BENCHMARKS.md from that file.

    python bench/anomaly.py --methods pyod-ae pyod-deepsvdd reprlab-fast reprlab-full --seeds 0 1 2
    python bench/anomaly.py --methods reprlab-full --seeds 0 --classes 6 --max-test 2000 --tag anomaly-try
    python bench/anomaly.py --report anomaly            # or several tags, e.g. one per seed run in parallel
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from common import RESULTS, data_dir, git_rev, machine
from reprlab.capabilities.anomaly import PRESETS, AnomalyDetector, auroc
from reprlab.data import load_dataset

CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

#: reprlab detector settings: the library's presets (reprlab.capabilities.anomaly.PRESETS, `reprlab detect --preset`).
SETTINGS: dict[str, dict] = {"reprlab-fast": PRESETS["fast"], "reprlab-full": PRESETS["full"], "reprlab-ae": PRESETS["ae"]}
METHODS = ("reprlab-fast", "reprlab-full", "reprlab-ae", "pyod-ae", "pyod-deepsvdd")


def make_detector(method: str, seed: int):
    """A fresh detector with ``fit(X)`` and ``decision_function(X)`` (higher = more anomalous)."""
    if method in SETTINGS:
        return AnomalyDetector(**SETTINGS[method], random_state=seed), "images"
    if method == "pyod-ae":
        from pyod.models.auto_encoder import AutoEncoder

        return AutoEncoder(verbose=0, random_state=seed), "flat"
    if method == "pyod-deepsvdd":
        from pyod.models.deep_svdd import DeepSVDD

        return DeepSVDD(n_features=784, verbose=0, random_state=seed), "flat"
    raise SystemExit(f"unknown method {method}; choose from {', '.join(METHODS)}")


def run_one(method: str, seed: int, c: int, train, test, max_test: int | None) -> dict:
    normal = train.subset(torch.nonzero(train.labels == c).flatten())
    if max_test is not None and max_test < len(test):
        idx = torch.randperm(len(test), generator=torch.Generator().manual_seed(1000 + seed))[:max_test]
        test = test.subset(idx)
    y = (test.labels != c).numpy().astype(int)
    det, kind = make_detector(method, seed)
    x_fit = normal if kind == "images" else normal.float01().flatten(1).numpy()
    x_test = test if kind == "images" else test.float01().flatten(1).numpy()
    if kind == "flat":  # PyOD seeds some of its randomness from the global RNGs
        np.random.seed(seed)
        torch.manual_seed(seed)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    det.fit(x_fit)
    cpu1 = time.process_time()
    scores = np.asarray(det.decision_function(x_test), dtype=float)
    cpu2, wall2 = time.process_time(), time.perf_counter()
    return {"method": method, "seed": seed, "class": c, "auroc": round(auroc(y, scores), 5),
            "fit_cpu_s": round(cpu1 - cpu0, 2), "score_cpu_s": round(cpu2 - cpu1, 2),
            "cpu_s": round(cpu2 - cpu0, 2), "wall_s": round(wall2 - wall0, 2), "n_test": int(len(y)),
            "load": round(os.getloadavg()[0], 2)}


def load_results(path: Path) -> dict:
    if path.exists():
        return json.loads(path.read_text())
    return {"runs": []}


def report(paths: list[Path]) -> str:
    """Markdown tables from one or more results files (e.g. one per seed, run in parallel)."""
    files = [load_results(p) for p in paths]
    data = files[0]
    runs = [r for f in files for r in f["runs"] if r.get("n_test", 10000) == 10000]
    loads = [r["load"] for r in runs if "load" in r]
    methods = [m for m in METHODS if any(r["method"] == m for r in runs)]
    first = min((f.get("first_date", "?") for f in files), default="?")
    last = max((f.get("date", "?") for f in files), default="?")
    lines = [f"Machine: {data.get('machine', '?')}; torch threads: {data.get('threads', '?')}; "
             f"git {data.get('git', '?')}; {first} to {last}; 1-minute load average during the runs "
             f"{min(loads, default=0):.1f} to {max(loads, default=0):.1f}.", ""]
    head = "| class | " + " | ".join(methods) + " |"
    lines += [head, "|---|" + "---|" * len(methods)]
    for c in range(10):
        cells = []
        for m in methods:
            v = [r["auroc"] for r in runs if r["method"] == m and r["class"] == c]
            cells.append(f"{np.mean(v):.3f}" + (f" ± {np.std(v, ddof=1):.3f}" if len(v) > 1 else "") + f" ({len(v)})" if v else "–")
        lines.append(f"| {c} {CLASS_NAMES[c]} | " + " | ".join(cells) + " |")
    summary = []
    for m in methods:
        seeds = sorted({r["seed"] for r in runs if r["method"] == m})
        means = []
        for s in seeds:
            v = [r["auroc"] for r in runs if r["method"] == m and r["seed"] == s]
            if len(v) == 10:
                means.append(np.mean(v))
        cpu = [r["cpu_s"] for r in runs if r["method"] == m]
        wall = [r["wall_s"] for r in runs if r["method"] == m]
        mean_txt = (f"{np.mean(means):.4f} ± {np.std(means, ddof=1):.4f}" if len(means) > 1 else
                    f"{means[0]:.4f}" if means else "incomplete")
        summary.append(f"| {m} | {mean_txt} | {len(means)} | {np.mean(cpu):.1f} | {np.mean(wall):.1f} | {len(cpu)} |")
    lines += ["", "| method | mean AUROC over 10 classes (mean ± std over seeds) | complete seeds | "
              "CPU s per class | wall s per class | runs |", "|---|---|---|---|---|---|"] + summary
    lines += [""] + _goal_checks(runs)
    return "\n".join(lines)


def _goal_checks(runs: list[dict]) -> list[str]:
    """The issue's side-by-side checks: per-class wins over PyOD and the fast setting's time ratio."""
    def per_class(m: str) -> dict[int, float]:
        return {c: float(np.mean(v)) for c in range(10)
                if (v := [r["auroc"] for r in runs if r["method"] == m and r["class"] == c])}

    def cpu(m: str) -> float:
        return float(np.mean([r["cpu_s"] for r in runs if r["method"] == m] or [np.nan]))

    out = []
    pyod = [m for m in ("pyod-ae", "pyod-deepsvdd") if any(r["method"] == m for r in runs)]
    for m in ("reprlab-fast", "reprlab-full"):
        ours = per_class(m)
        if not ours or not pyod:
            continue
        theirs = {p: per_class(p) for p in pyod}
        contested = [c for c in ours if all(c in theirs[p] and theirs[p][c] <= 0.98 for p in pyod)]
        lost = [c for c in contested if any(ours[c] <= theirs[p][c] for p in pyod)]
        out.append(f"- {m}: ahead of {' and '.join(pyod)} on {len(contested) - len(lost)} of the {len(contested)} "
                   f"classes where neither is above 0.98" + (f" (behind or level on {lost})" if lost else "") + ".")
    if "pyod-ae" in pyod and any(r["method"] == "reprlab-fast" for r in runs):
        out.append(f"- CPU time per class, reprlab-fast / pyod-ae: {cpu('reprlab-fast') / cpu('pyod-ae'):.2f}x.")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir")
    p.add_argument("--methods", nargs="*", default=list(METHODS))
    p.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    p.add_argument("--classes", nargs="*", type=int, default=list(range(10)))
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: best CPU efficiency on shared cores)")
    p.add_argument("--max-test", type=int, help="score a seeded subset of the test set (quick trials; not reported)")
    p.add_argument("--tag", default="anomaly", help="results file bench/results/<tag>.json")
    p.add_argument("--report", nargs="*", metavar="TAG",
                   help="print the Markdown tables from the results files of these tags (default: --tag) and exit")
    args = p.parse_args()
    path = RESULTS / f"{args.tag}.json"
    if args.report is not None:
        print(report([RESULTS / f"{t}.json" for t in (args.report or [args.tag])]))
        return
    torch.set_num_threads(args.threads)
    ddir = data_dir(args.data_dir)
    train = load_dataset("fashion-mnist", "train", data_dir=ddir, download=False)
    test = load_dataset("fashion-mnist", "test", data_dir=ddir, download=False)
    data = load_results(path)
    import datetime as _dt

    now = _dt.datetime.now().isoformat(timespec="seconds")
    data.setdefault("first_date", now)
    data.update({"machine": machine(), "threads": args.threads, "git": git_rev(), "settings": {k: str(v) for k, v in SETTINGS.items()}})
    done = {(r["method"], r["seed"], r["class"], r["n_test"]) for r in data["runs"]}
    n_test = args.max_test if args.max_test and args.max_test < len(test) else len(test)
    RESULTS.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        for c in args.classes:
            for m in args.methods:
                if (m, seed, c, n_test) in done:
                    continue
                row = run_one(m, seed, c, train, test, args.max_test)
                print(json.dumps(row), flush=True)
                data["runs"].append(row)
                data["date"] = _dt.datetime.now().isoformat(timespec="seconds")
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(data, indent=1))
                tmp.replace(path)
    print(report([path]))


if __name__ == "__main__":
    main()
