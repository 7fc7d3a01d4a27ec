"""The one figure style of reprlab: Okabe-Ito colours, readable fonts, page-sized figures.

Figures are built as :class:`matplotlib.figure.Figure` objects with an Agg canvas
attached, so nothing here touches the global matplotlib backend (importing reprlab never
calls ``matplotlib.use``) and plotting works headless and in notebooks alike. The style is
applied with :func:`style_context` around figure creation *and* saving.

Example:
    >>> from reprlab.reporting.style import new_figure, save_figure, style_context
    >>> with style_context():
    ...     fig = new_figure(width=3, height=2)
    ...     ax = fig.add_subplot()
    ...     _ = ax.plot([0, 1], [1, 0])
    ...     path = save_figure(fig, "/tmp/reprlab_style_example.png")
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from reprlab.base.io import atomic_write

logger = logging.getLogger(__name__)

__all__ = [
    "OKABE_ITO",
    "PALETTE",
    "PAGE_WIDTH",
    "DPI",
    "RC_PARAMS",
    "color",
    "style_context",
    "new_figure",
    "save_figure",
]

#: Okabe & Ito (2008) colour-blind-safe palette.
OKABE_ITO: dict[str, str] = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "vermillion": "#D55E00",
    "sky_blue": "#56B4E9",
    "reddish_purple": "#CC79A7",
    "yellow": "#F0E442",
    "black": "#000000",
}

#: Cycle order: high-contrast colours first, yellow (weak on white) last; then four well-separated
#: extra colours (brown, grey, dark purple, olive from matplotlib's tab10 / Tol's palettes) so the
#: 10 classes of Fashion-MNIST / MNIST (and up to 12 categories) all get distinct colours.
PALETTE: tuple[str, ...] = (
    OKABE_ITO["blue"], OKABE_ITO["orange"], OKABE_ITO["green"], OKABE_ITO["vermillion"],
    OKABE_ITO["sky_blue"], OKABE_ITO["reddish_purple"], OKABE_ITO["black"], OKABE_ITO["yellow"],
    "#8C564B", "#999999", "#6A3D9A", "#7F7F00",
)

#: Roles used consistently across figures.
ROLE_COLORS: dict[str, str] = {
    "train": OKABE_ITO["blue"],
    "val": OKABE_ITO["orange"],
    "test": OKABE_ITO["green"],
    "mean": OKABE_ITO["vermillion"],
    "median": OKABE_ITO["black"],
}

#: Width of a figure spanning a page's text column, inches (A4/Letter with margins).
PAGE_WIDTH: float = 6.5
#: Resolution of saved PNGs.
DPI: int = 150

RC_PARAMS: dict[str, object] = {
    "axes.prop_cycle": matplotlib.cycler(color=list(PALETTE)),
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica", "Liberation Sans"],
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "figure.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.6,
    "lines.markersize": 3.5,
    "legend.frameon": False,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.05,
    "savefig.facecolor": "white",
    "figure.facecolor": "white",
    "image.cmap": "gray",
    "image.interpolation": "nearest",
}


MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*")


def category_style(i: int) -> tuple[str, str]:
    """Colour and marker of category ``i``: the palette's colours, then new marker shapes.

    Example:
        >>> category_style(0)[1], category_style(len(PALETTE))[1]
        ('o', 's')
    """
    return PALETTE[i % len(PALETTE)], MARKERS[(i // len(PALETTE)) % len(MARKERS)]


def color(role_or_index: str | int) -> str:
    """Colour for a role (``"train"``, ``"val"``, ``"test"``, ``"mean"``...) or a cycle index.

    Example:
        >>> color("train"), color(1)
        ('#0072B2', '#E69F00')
    """
    if isinstance(role_or_index, int):
        return PALETTE[role_or_index % len(PALETTE)]
    return ROLE_COLORS.get(role_or_index, PALETTE[0])


@contextlib.contextmanager
def style_context() -> Iterator[None]:
    """Apply reprlab's rc parameters temporarily (global rcParams are restored on exit).

    Example:
        >>> with style_context():
        ...     fig = new_figure()
    """
    with matplotlib.rc_context(RC_PARAMS):
        yield


def bare_axis(ax: Any, *, keep_ticks: bool = False) -> None:
    """Strip an axis that shows an image: no grid, no frame and (unless ``keep_ticks``) no ticks.

    Example:
        >>> ax = new_figure(width=2, height=2).subplots()
        >>> bare_axis(ax)
        >>> ax.get_xticks().tolist(), any(s.get_visible() for s in ax.spines.values())
        ([], False)
    """
    if not keep_ticks:
        ax.set_xticks([])
        ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)


def new_figure(*, width: float = PAGE_WIDTH, height: float = 3.0) -> Figure:
    """A new Figure with an Agg canvas (no pyplot, no global backend switch).

    ``width`` is capped at :data:`PAGE_WIDTH` so the figure fits a page at 100 %.
    Call inside :func:`style_context` so the style applies.

    Example:
        >>> fig = new_figure(width=4, height=2)
        >>> [round(float(v), 1) for v in fig.get_size_inches()]
        [4.0, 2.0]
    """
    fig = Figure(figsize=(min(float(width), PAGE_WIDTH), float(height)), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Atomically save ``fig`` as PNG at ``path`` (parent folders are created).

    Example:
        >>> with style_context():
        ...     fig = new_figure(width=2, height=2)
        ...     p = save_figure(fig, "/tmp/reprlab_empty.png")
    """
    path = Path(path)

    def write(tmp: str) -> None:
        with matplotlib.rc_context(RC_PARAMS):
            fig.savefig(tmp, format="png")

    atomic_write(path, write)
    logger.debug("saved figure %s", path)
    return path
