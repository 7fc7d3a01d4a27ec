"""Figures shared by the tasks that classify: the confusion matrix.

Example:
    >>> plot_confusion_matrix([[3, 1], [0, 4]], ["a", "b"], "/tmp/reprlab_confusion_doc.png").name
    'reprlab_confusion_doc.png'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from reprlab.base.errors import ReprlabError
from reprlab.reporting.style import PAGE_WIDTH, bare_axis, new_figure, save_figure, style_context


def plot_confusion_matrix(matrix: Any, class_names: Sequence[str], path: str | Path, *,
                          title: str = "Confusion matrix (test)") -> Path:
    """Row-normalised confusion matrix (rows: true class) with the share of each cell written in it.

    Example:
        >>> plot_confusion_matrix([[3, 1], [0, 4]], ["a", "b"], "/tmp/reprlab_confusion.png").suffix
        '.png'
    """
    cm = np.asarray(matrix, dtype=float)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(class_names):
        raise ReprlabError(f"a confusion matrix of shape {cm.shape} does not fit {len(class_names)} class names",
                           fix="pass the square matrix of the classes named")
    share = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    n = len(class_names)
    with style_context():
        fig = new_figure(width=min(PAGE_WIDTH, 1.2 + 0.5 * n), height=1.0 + 0.45 * n)
        ax = fig.add_subplot()
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        bare_axis(ax, keep_ticks=True)
        ax.set_xticks(range(n), [str(c) for c in class_names], rotation=60, ha="right")
        ax.set_yticks(range(n), [str(c) for c in class_names])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        if n <= 20:
            for i in range(n):
                for j in range(n):
                    if cm[i, j]:
                        ax.text(j, i, f"{share[i, j]:.2f}".lstrip("0") if share[i, j] < 1 else "1",
                                ha="center", va="center", fontsize=6,
                                color="white" if share[i, j] > 0.5 else "black")
        ax.set_title(title)
        fig.tight_layout()
        return save_figure(fig, path)
