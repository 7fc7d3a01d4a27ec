"""What each label-free selection criterion would have picked, from finished ``adapt`` runs.

Every ``adapt`` run records, per epoch in ``metrics.csv``, the values every criterion reads
(``val/acc`` for ``source_val``, ``select/target_entropy``, ``select/snd``; ``epoch`` for
``last``) and the target accuracy on the evaluation images (``oracle/target_acc``). So the
accuracy a user would have got under each criterion is the recorded target accuracy of the
epoch that criterion picks: no retraining. (``dev`` is recorded only when it is the run's
criterion, so it is shown only where every run has it.) The oracle column picks with the
target's labels and is there to compare with published numbers only.

One line per (task, method): mean ± std (ddof 1) over the runs (seeds) found. The criteria are
reprlab's own (``SELECTIONS``), so a new one appears here without a change.

    python bench/adaptation_criteria.py runs/bench_adaptation/*/ --tag da-criteria
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, save  # noqa: E402
from reprlab.capabilities.adaptation.config import SELECTIONS  # noqa: E402
from reprlab.capabilities.adaptation.selection import ORACLE_KEY  # noqa: E402

#: criterion -> (metrics.csv column, better): reprlab's label-free criteria, plus the oracle
CRITERIA = {**SELECTIONS, "oracle": (ORACLE_KEY, "max")}


def picks(run_dir: Path) -> dict:
    """The run's task, method, seed and, per criterion, (epoch picked, target accuracy there)."""
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    with open(run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    accuracy = [float(r["oracle/target_acc"]) for r in rows]
    out = {"task": f"{cfg['data']['name']}->{cfg['adapt']['target']}", "method": cfg["adapt"]["method"],
           "seed": cfg["seed"], "epochs": len(rows), "run_dir": str(run_dir), "criteria": {}}
    for name, (column, better) in CRITERIA.items():
        values = [float(r[column]) if r.get(column) not in (None, "") else None for r in rows]
        known = [i for i, v in enumerate(values) if v is not None]
        if len(known) != len(rows):
            continue
        # the first epoch reaching the best value, as the checkpointer keeps it
        best = (max if better == "max" else min)(values[i] for i in known)
        i = next(i for i in known if values[i] == best)
        out["criteria"][name] = {"epoch": i + 1, "target_acc": accuracy[i]}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("roots", nargs="+", type=Path, help="run directories, or folders holding them")
    p.add_argument("--tag", default="adaptation_criteria")
    args = p.parse_args()
    runs = sorted({m.parent for root in args.roots for m in ([root / "metrics.csv"] if (root / "metrics.csv").is_file()
                                                              else root.rglob("metrics.csv"))
                   if (m.parent / "config.yaml").is_file()})
    found = [picks(r) for r in runs]
    found = [r for r in found if r["criteria"]]
    shown = [c for c in CRITERIA if any(c in r["criteria"] for r in found)]  # dev only where recorded
    lines = ["| task | method | runs (seeds) | " + " | ".join(shown) + " |", "|---" * (3 + len(shown)) + "|"]
    table = []
    for key in dict.fromkeys((r["task"], r["method"]) for r in found):
        group = [r for r in found if (r["task"], r["method"]) == key]
        cells, row = [], {"task": key[0], "method": key[1], "seeds": sorted(r["seed"] for r in group)}
        for name in shown:
            acc = [r["criteria"][name]["target_acc"] * 100 for r in group if name in r["criteria"]]
            if len(acc) != len(group):
                cells.append("")
                continue
            sd = float(np.std(acc, ddof=1)) if len(acc) > 1 else 0.0
            row[name] = [round(float(np.mean(acc)), 2), round(sd, 2)]
            cells.append(f"{np.mean(acc):.1f} ± {sd:.1f}")
        table.append(row)
        lines.append(f"| {key[0]} | {key[1]} | {len(group)} ({','.join(map(str, row['seeds']))}) | " + " | ".join(cells) + " |")
    md = "\n".join(lines)
    print(md)
    path = save(args.tag, {"command": "python bench/adaptation_criteria.py " + " ".join(sys.argv[1:]),
                           "runs": found, "table": table})
    (RESULTS / f"{args.tag}.md").write_text(md + "\n")
    print(f"results: {path}")


if __name__ == "__main__":
    main()
