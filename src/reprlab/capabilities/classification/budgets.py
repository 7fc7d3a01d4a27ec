"""Label budgets: a seeded, class-balanced subset of ``k`` labelled training images.

The subset depends only on the labels, ``k`` and the seed, so every method run at a given
seed (the network trained from scratch, the fine-tuned encoder, the frozen-code baselines)
sees exactly the same labelled images. ``k`` images are split evenly over the classes; when
``k`` is not a multiple of the class count, a seeded choice of classes gets one more. Within
a class the images are the first ones of a seeded permutation of that class, so at one seed
a smaller budget is contained in a larger one (10 labels are among the 100).

Example:
    >>> import torch
    >>> labels = torch.arange(60) % 3
    >>> idx = label_budget(labels, 6, seed=0)
    >>> len(idx), torch.bincount(labels[idx]).tolist()
    (6, [2, 2, 2])
    >>> set(label_budget(labels, 6, seed=0).tolist()) <= set(label_budget(labels, 30, seed=0).tolist())
    True
"""

from __future__ import annotations

from typing import Any

import torch

from reprlab.base.errors import ConfigError
from reprlab.evaluation.classification import num_classes_of  # noqa: F401  (moved there; re-exported)

#: The budgets of the issue's experiments (``None``: every label).
STANDARD_BUDGETS: tuple[int | None, ...] = (10, 100, 1000, 10000, None)


def parse_budget(value: Any, *, where: str = "classify.labels") -> int | None:
    """``"all"``/``None`` -> ``None`` (every label); a positive integer -> itself; else :class:`ConfigError`.

    Example:
        >>> parse_budget("all"), parse_budget(100), parse_budget("1000")
        (None, 100, 1000)
    """
    if value is None or (isinstance(value, str) and value.strip().lower() == "all"):
        return None
    if isinstance(value, bool):
        raise ConfigError(f"{where}={value!r} is not a number of labels", fix=f"e.g. {where}=100 or {where}=all")
    try:
        k = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}={value!r} is not a number of labels", fix=f"e.g. {where}=100 or {where}=all") from None
    if k != value and str(k) != str(value).strip():
        raise ConfigError(f"{where}={value!r} is not a whole number", fix=f"e.g. {where}=100")
    if k < 1:
        raise ConfigError(f"{where}={value!r} must be at least 1", fix=f"e.g. {where}=100 or {where}=all")
    return k


def parse_unlabelled(value: Any) -> int | None | bool:
    """``classify.unlabelled``: ``"none"``/``0``/``False`` -> ``False`` (no unlabelled images),
    ``"all"`` -> ``None`` (every image outside the budget), a positive integer -> itself.

    Example:
        >>> parse_unlabelled("none"), parse_unlabelled("all"), parse_unlabelled(5000)
        (False, None, 5000)
    """
    if value is None or value is False or value == 0 or (isinstance(value, str) and value.strip().lower() in ("none", "0")):
        return False
    return parse_budget(value, where="classify.unlabelled")


def label_budget(labels: torch.Tensor, k: int | None, *, seed: int, n_classes: int | None = None,
                 where: str = "classify.labels") -> torch.Tensor:
    """Sorted indices of a seeded, class-balanced subset of ``k`` of ``labels`` (all indices for ``k=None``).

    Raises :class:`ConfigError` (naming ``where``) when ``k`` is below the number of
    classes, or asks more images of a class than the labels have.

    Example:
        >>> label_budget(torch.tensor([0, 0, 1, 1, 1]), 2, seed=0).tolist()
        [0, 3]
    """
    labels = torch.as_tensor(labels).to(torch.int64)
    n_classes = num_classes_of(labels) if n_classes is None else int(n_classes)
    if k is None:
        return torch.arange(len(labels))
    if k < n_classes:
        raise ConfigError(f"{where}={k} is below the number of classes ({n_classes}): some class would have no label",
                          fix=f"ask for at least {n_classes} labels (one per class), e.g. {where}={10 * n_classes}")
    g = torch.Generator().manual_seed(int(seed) * 7_919 + 104_729)
    quota = torch.full((n_classes,), k // n_classes, dtype=torch.int64)
    quota[torch.randperm(n_classes, generator=g)[: k % n_classes]] += 1
    counts = torch.bincount(labels, minlength=n_classes)
    short = [(c, int(quota[c]), int(counts[c])) for c in range(n_classes) if quota[c] > counts[c]]
    if short:
        c, want, have = min(short, key=lambda t: t[2])
        most = int(counts.min()) * n_classes
        raise ConfigError(f"{where}={k} asks {want} labelled images of class {c}, but the training split has only "
                          f"{have} of it",
                          fix=f"ask for at most {most} labels ({int(counts.min())} per class), or use more training "
                              "data (data.max_train, data.val_fraction)")
    chosen = []
    for c in range(n_classes):
        members = torch.nonzero(labels == c).flatten()
        perm = torch.randperm(len(members), generator=torch.Generator().manual_seed(int(seed) * 1_000_003 + c))
        chosen.append(members[perm[: int(quota[c])]])
    return torch.sort(torch.cat(chosen)).values
