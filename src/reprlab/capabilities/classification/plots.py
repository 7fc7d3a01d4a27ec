"""Figures of the classification capability: the confusion matrix, and accuracy against the number of labels.

:func:`summarise` turns result rows (one per method, budget and seed) into the table of
mean ± std over seeds that :func:`plot_accuracy_vs_labels` draws: one line per method on a
log axis of labels, the band showing ± one standard deviation.

Example:
    >>> rows = [{"method": "scratch", "labels": 100, "seed": s, "acc": a} for s, a in ((0, 0.7), (1, 0.72))]
    >>> table = summarise(rows)
    >>> table[0]["method"], table[0]["labels"], round(table[0]["mean"], 3), table[0]["n_seeds"]
    ('scratch', 100, 0.71, 2)
    >>> plot_accuracy_vs_labels(rows, "/tmp/reprlab_acc_vs_labels.png").name
    'reprlab_acc_vs_labels.png'
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from reprlab.base.errors import ReprlabError
from reprlab.reporting.classification import plot_confusion_matrix  # noqa: F401  (re-exported)
from reprlab.reporting.style import PAGE_WIDTH, category_style, new_figure, save_figure, style_context


def summarise(rows: Sequence[Mapping[str, Any]], *, metric: str = "acc") -> list[dict[str, Any]]:
    """Mean, std (``ddof=1``; 0 for one seed), seed count and mean CPU seconds per ``(method, labels)``.

    Rows have ``method``, ``labels`` (an int, or ``None``/``"all"`` for every label), ``seed``
    and ``metric`` (and optionally ``seconds``). Methods keep their first-seen order;
    budgets are sorted ("all" last).
    """
    groups: dict[tuple[str, Any], list[Mapping[str, Any]]] = defaultdict(list)
    order: list[str] = []
    for r in rows:
        if r["method"] not in order:
            order.append(r["method"])
        groups[(r["method"], _budget_key(r["labels"]))].append(r)
    out = []
    for (method, labels), members in sorted(groups.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1])):
        values = np.array([float(m[metric]) for m in members])
        seconds = [float(m["seconds"]) for m in members if m.get("seconds") is not None]
        out.append({"method": method, "labels": members[0]["labels"] if labels != math.inf else "all",
                    "mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                    "n_seeds": len(values), "seconds": float(np.mean(seconds)) if seconds else None})
    return out


def _budget_key(labels: Any) -> float:
    return math.inf if labels is None or str(labels).lower() == "all" else float(labels)


def markdown_table(table: Sequence[Mapping[str, Any]]) -> str:
    """The :func:`summarise` table as Markdown (accuracy in %, mean ± std, seeds, CPU seconds).

    Example:
        >>> print(markdown_table([{"method": "knn", "labels": 10, "mean": 0.5, "std": 0.01, "n_seeds": 3, "seconds": 1.0}]))
        | method | labels | accuracy (%) | seeds | CPU s |
        |---|---|---|---|---|
        | knn | 10 | 50.0 ± 1.0 | 3 | 1.0 |
    """
    lines = ["| method | labels | accuracy (%) | seeds | CPU s |", "|---|---|---|---|---|"]
    for r in table:
        sec = "" if r.get("seconds") is None else f"{r['seconds']:.1f}"
        lines.append(f"| {r['method']} | {r['labels']} | {100 * r['mean']:.1f} ± {100 * r['std']:.1f} | "
                     f"{r['n_seeds']} | {sec} |")
    return "\n".join(lines)


def plot_accuracy_vs_labels(rows: Sequence[Mapping[str, Any]], path: str | Path, *, metric: str = "acc",
                            title: str = "Accuracy against the number of labels") -> Path:
    """One line per method: mean ``metric`` over seeds against the number of labels (log axis), ± std band.

    ``"all"`` budgets are drawn at the largest number of labels seen in the rows'
    ``num_labels`` (or 10x the largest budget when unknown). Raises :class:`ReprlabError`
    for no rows.
    """
    if not rows:
        raise ReprlabError("no results to plot", fix="run at least one method at one budget")
    table = summarise(rows, metric=metric)
    finite = [float(r["labels"]) for r in table if r["labels"] != "all"]
    known_all = [float(r["num_labels"]) for r in rows if _budget_key(r["labels"]) == math.inf and r.get("num_labels")]
    all_x = max(known_all) if known_all else (10 * max(finite) if finite else 1.0)
    with style_context():
        fig = new_figure(width=min(PAGE_WIDTH, 6.0), height=3.6)
        ax = fig.add_subplot()
        for i, method in enumerate(dict.fromkeys(r["method"] for r in table)):
            pts = [r for r in table if r["method"] == method]
            x = np.array([all_x if r["labels"] == "all" else float(r["labels"]) for r in pts])
            y = np.array([100 * r["mean"] for r in pts])
            s = np.array([100 * r["std"] for r in pts])
            colour, marker = category_style(i)
            ax.plot(x, y, marker=marker, color=colour, label=method)
            if (s > 0).any():
                ax.fill_between(x, y - s, y + s, color=colour, alpha=0.2, linewidth=0)
        ax.set_xscale("log")
        ax.set_xlabel("labelled training images")
        ax.set_ylabel(f"test {metric} (%)")
        ax.set_title(title)
        ax.legend(loc="lower right")
        fig.tight_layout()
        return save_figure(fig, path)
