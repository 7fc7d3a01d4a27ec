"""The ``classify`` config section: the label budget of a ``classify`` run.

Example:
    >>> from reprlab.config import RunConfig
    >>> RunConfig.from_dict({"task": "classify", "classify": {"labels": 100}}).classify.labels
    100
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reprlab.base.validation import check_choice, check_int
from reprlab.capabilities.classification.budgets import parse_budget, parse_unlabelled
from reprlab.config import register_section
from reprlab.tasks import FINAL_EPOCH


#: What ``classify.selection`` keeps as the best checkpoint: (monitored key, mode).
SELECTIONS: dict[str, tuple[str, str]] = {"val": ("val/acc", "max"), "last": FINAL_EPOCH}


@register_section("classify")
@dataclass
class ClassifyConfig:
    """``labels``: labelled training images (an integer or ``all``), class-balanced and seeded;
    ``budget_seed``: the seed of that choice (``None``: the run's ``seed``), so methods compared
    at one seed share the subset; ``val_labels``: a class-balanced subset of the validation
    split of this size for choosing the best checkpoint (``None``: the whole split; few-label
    studies keep it small, as the labels it uses are labels too); ``unlabelled``: training images
    outside the budget, labels dropped, paired with every labelled batch for a semi-supervised
    model (``model.semi_supervised=fixmatch``): ``none`` (default), ``all``, or a number (a
    seeded choice); ``selection``: the checkpoint the run keeps as ``best`` and scores on the test
    split, ``val`` (default: the best validation accuracy) or ``last`` (the final epoch, as
    FixMatch's authors report; with ``data.val_fraction=0`` the run then uses no label beyond
    ``labels``). Only ``task: classify`` reads this section.
    """

    labels: Any = "all"
    budget_seed: int | None = None
    val_labels: Any = None
    unlabelled: Any = "none"
    selection: str = "val"

    def validate(self) -> None:
        parse_budget(self.labels, where="classify.labels")
        if self.val_labels is not None:
            parse_budget(self.val_labels, where="classify.val_labels")
        parse_unlabelled(self.unlabelled)
        check_choice("classify.selection", self.selection, tuple(SELECTIONS))
        if self.budget_seed is not None:
            check_int("classify.budget_seed", self.budget_seed, minimum=0)
