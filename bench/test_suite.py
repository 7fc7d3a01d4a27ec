"""Benchmark of the test suite's wall time: pytest-xdist on every core against one process.

Runs the whole suite (``python -m pytest``, as ``.ci/run`` does) in alternating order: ``-n 0`` (one
process, the baseline) and the ``pyproject.toml`` default (``-n auto``: one worker per core, at most
4). Each round runs both (ABBA order over rounds, so a slow spell of the shared machine hits both
alike). Figure: wall seconds of each, CPU seconds (user + system of pytest and everything it
started) and the ratio xdist / one process per round. Every run must pass, or the script stops.

    python bench/test_suite.py --rounds 1

Results: bench/results/test_suite.json (and printed).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MODES = {"one process": ["-n", "0"], "xdist (default)": []}


def run_suite(extra: list[str]) -> dict:
    """Run the suite once with ``extra`` pytest options; wall and CPU seconds, and the summary line."""
    usage0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *extra], cwd=REPO,
                          capture_output=True, text=True)
    wall, usage = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = (done.stdout.strip().splitlines() or [""])[-1]
    if done.returncode != 0:
        raise SystemExit(f"pytest {' '.join(extra)} failed ({done.returncode}): {summary}\n{done.stdout[-3000:]}")
    cpu = (usage.ru_utime - usage0.ru_utime) + (usage.ru_stime - usage0.ru_stime)
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "summary": summary}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=1, help="rounds of both modes (default 1)")
    p.add_argument("--tag", default="test_suite", help="results file name under bench/results")
    args = p.parse_args()
    rounds = []
    for i in range(args.rounds):
        order = list(MODES) if i % 2 == 0 else list(reversed(MODES))
        row = {}
        for mode in order:
            row[mode] = run_suite(MODES[mode])
            print(f"round {i + 1} {mode}: wall {row[mode]['wall_s']} s, cpu {row[mode]['cpu_s']} s ({row[mode]['summary']})",
                  flush=True)
        row["ratio"] = round(row["xdist (default)"]["wall_s"] / row["one process"]["wall_s"], 3)
        print(f"round {i + 1}: wall xdist / one process = {row['ratio']}", flush=True)
        rounds.append(row)
    print(f"saved {save(args.tag, {'cpu_count': os.cpu_count(), 'rounds': rounds})}")


if __name__ == "__main__":
    main()
