"""The ``classify`` task: train a classifier on a (class-balanced, seeded) budget of labels.

Data: the run's splits (:func:`reprlab.runs.prepare_data`), then the training split cut to
``classify.labels`` images (:func:`~reprlab.capabilities.classification.budgets.label_budget`)
and, with ``classify.val_labels``, the validation split too. With ``classify.unlabelled``, the
training images outside the budget (labels dropped) become the run's second stream
(``Splits.target``, paired with every labelled batch) for a semi-supervised model
(``model.semi_supervised=fixmatch`` or ``flexmatch``, :mod:`reprlab.models.semisup`). A run directory given as
``model.pretrained`` of a ``classifier`` is resolved first (its encoder's name, options and
best checkpoint; :func:`~reprlab.capabilities.classification.finetune.resolve_pretrained`),
and ``model.num_classes`` follows the data when not given. Every refusal (no labels, a
budget below the class count or above a class's images, a run without encoder, an encoder
for other image shapes) happens here, before a run directory exists; the pretrained weights
are loaded in :meth:`ClassifyTask.check`.

Best checkpoint by ``val/acc`` (max), or the final epoch with ``classify.selection=last``. Final
metrics on the test split: ``test/acc``, ``test/loss`` (cross-entropy), ``test/balanced_acc``,
``test/acc_class_<i>``; files
``classification/per_class.csv``, ``classification/confusion.csv`` and, with figures on,
the confusion matrix and the learning curves (``figures/loss_curves.png``: loss and accuracy).

Example:
    >>> from reprlab.tasks import get_task
    >>> t = get_task("classify")
    >>> t.monitor, t.mode, t.headline[0]
    ('val/acc', 'max', 'test/acc')
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from reprlab.base.errors import ConfigError
from reprlab.base.io import write_json
from reprlab.capabilities.classification.budgets import label_budget, num_classes_of, parse_budget, parse_unlabelled
from reprlab.capabilities.classification.config import SELECTIONS
# predict / classification_metrics / class_names live in reprlab.evaluation.classification (shared with the
# `adapt` task); they stay importable from here.
from reprlab.data.dataset import ImageData
from reprlab.evaluation.classification import class_names, classification_metrics, predict, write_class_tables
from reprlab.reporting.figures import plot_loss_curves
from reprlab.runs import PostRunContext, Splits
from reprlab.tasks.registry import Task, register_task

logger = logging.getLogger(__name__)


def budget_splits(cfg: Any, splits: Splits) -> tuple[Splits, int]:
    """``splits`` with the training (and, with ``classify.val_labels``, validation) split cut to the budget.

    Returns the new splits and the number of classes. The same function serves the
    ``classify`` task and the frozen-code baselines, so they use the same labelled images.
    """
    train = splits.train
    if train.labels is None:
        raise ConfigError(f"task 'classify' needs labelled images but data.name={cfg.data.name} has no labels",
                          fix="use a labelled dataset, or give data.labels_path for your arrays")
    n_classes = num_classes_of(train.labels, train.class_names)
    c = cfg.classify
    seed = cfg.seed if c.budget_seed is None else c.budget_seed
    full = train
    idx = label_budget(train.labels, parse_budget(c.labels), seed=seed, n_classes=n_classes)
    train = train.subset(idx)
    target = unlabelled_images(cfg, full, idx, seed=seed)
    val = splits.val
    k_val = parse_budget(c.val_labels, where="classify.val_labels")
    if val is not None and k_val is not None:
        if val.labels is None:
            raise ConfigError("the validation split has no labels", fix="use a labelled dataset")
        val = val.subset(label_budget(val.labels, k_val, seed=seed + 1, n_classes=n_classes,
                                      where="classify.val_labels"))
    return Splits(train, val, splits.test, target), n_classes


def unlabelled_images(cfg: Any, train: ImageData, labelled: torch.Tensor, *, seed: int) -> ImageData | None:
    """The training images outside the label budget ``labelled``, labels dropped (``classify.unlabelled``).

    ``None`` when the run asks for none. Refused (:class:`ConfigError`) when the model would not
    use them (``model.semi_supervised=none``), when a semi-supervised model gets none, and when
    more are asked than the split has outside the budget.
    """
    k = parse_unlabelled(cfg.classify.unlabelled)
    semi = str(cfg.model.get("semi_supervised", "none"))
    if k is False:
        if semi != "none":
            raise ConfigError(f"model.semi_supervised={semi} needs unlabelled images, but classify.unlabelled is none",
                              fix="set classify.unlabelled=all (or a number), or model.semi_supervised=none")
        return None
    if semi == "none":
        raise ConfigError(f"classify.unlabelled={cfg.classify.unlabelled} gives unlabelled images, but "
                          "model.semi_supervised is none, so they would not be used",
                          fix="set model.semi_supervised=fixmatch or flexmatch (model.name=classifier), or "
                              "classify.unlabelled=none")
    keep = torch.ones(len(train), dtype=torch.bool)
    keep[labelled] = False
    rest = torch.nonzero(keep).flatten()
    if k is not None:
        if k > len(rest):
            raise ConfigError(f"classify.unlabelled={k} but only {len(rest)} training images lie outside the label budget",
                              fix=f"ask for at most {len(rest)} (or classify.unlabelled=all)")
        rest = rest[torch.randperm(len(rest), generator=torch.Generator().manual_seed(int(seed) + 31))[:k]].sort().values
    if len(rest) == 0:
        raise ConfigError("classify.unlabelled: every training image is labelled, none is left to use unlabelled",
                          fix="lower classify.labels, or set classify.unlabelled=none")
    out = train.subset(rest)
    return ImageData(out.images, None, out.name, out.source, out.class_names, dict(out.meta))


@register_task("classify")
class ClassifyTask(Task):
    """Classify images with few (or all) labels: accuracy, per-class accuracy, confusion matrix."""

    monitor = "val/acc"
    mode = "max"
    headline = ("test/acc", "test/balanced_acc", "test/loss", "classify/num_labels")
    needs_labels = True

    def monitor_for(self, cfg: Any) -> tuple[str, str]:
        """``classify.selection``'s criterion: ``("val/acc", "max")`` or, for ``last``, ``("epoch", "max")``."""
        return SELECTIONS[cfg.classify.selection]

    def prepare_data(self, cfg: Any) -> Splits:
        from reprlab.capabilities.classification.finetune import resolve_pretrained

        resolve_pretrained(cfg)
        splits, n_classes = budget_splits(cfg, super().prepare_data(cfg))
        if "num_classes" not in cfg.model and "num_classes" in model_fields(cfg.model["name"]):
            cfg.model["num_classes"] = n_classes
        return splits

    def check(self, cfg: Any, model: Any, splits: Splits) -> None:
        if not hasattr(model, "logits"):
            raise ConfigError(f"model {cfg.model['name']!r} is not a classifier (no logits)",
                              fix="use model.name=classifier (a head on an encoder) or model.name=resnet18")
        n_classes = num_classes_of(splits.train.labels, splits.train.class_names)
        if model.config.num_classes < n_classes:
            raise ConfigError(f"model.num_classes={model.config.num_classes} but the data has {n_classes} classes",
                              fix=f"set model.num_classes={n_classes} (or drop it: it follows the data)")
        if hasattr(model, "load_pretrained"):
            source = model.load_pretrained()
            logger.info("encoder weights: %s", source)
        if splits.target is not None and hasattr(model, "start_semi_supervised"):
            model.start_semi_supervised(len(splits.target))  # FlexMatch remembers each unlabelled image

    def score(self, cfg: Any, model: Any, test: Any, device: Any, *, max_images: int | None = None) -> dict[str, float]:
        logits, labels = predict(model, test, batch_size=cfg.eval.batch_size, device=device, max_images=max_images)
        return classification_metrics(logits, labels, int(model.config.num_classes))[0]

    def evaluate(self, ctx: PostRunContext, history: list[dict[str, float]]) -> dict[str, float]:
        cfg, model, run = ctx.cfg, ctx.model, ctx.run
        logits, labels = predict(model, ctx.splits.test, batch_size=cfg.eval.batch_size, device=ctx.device,
                                 max_images=cfg.eval.max_images)
        n_classes = int(model.config.num_classes)
        metrics, cm = classification_metrics(logits, labels, n_classes)
        metrics["classify/num_labels"] = int(len(ctx.splits.train))
        metrics["classify/num_val_labels"] = int(len(ctx.splits.val)) if ctx.splits.val is not None else 0
        metrics["classify/num_unlabelled"] = int(len(ctx.splits.target)) if ctx.splits.target is not None else 0
        out = run.path / "classification"
        names = class_names(ctx.splits.test, n_classes)
        write_class_tables(out, cm, names)
        items = [{"key": "classification/tables", "kind": "table", "title": "Per-class accuracy",
                  "caption": f"test accuracy {metrics['test/acc']:.4f} with {len(ctx.splits.train)} labelled images",
                  "files": ["per_class.csv", "confusion.csv"]}]
        if cfg.eval.figures:
            from reprlab.capabilities.classification.plots import plot_confusion_matrix

            plot_loss_curves(history, run.figures / "loss_curves.png")
            plot_confusion_matrix(cm, names, out / "confusion.png")
            items.insert(0, {"key": "classification/confusion", "kind": "figure", "title": "Confusion matrix",
                             "caption": "test split; rows: true class, columns: predicted, cells: share of the row",
                             "files": ["confusion.png"]})
        write_json(out / "index.json", {"items": items, "skipped": []})
        return metrics


def model_fields(name: str) -> set[str]:
    """The config fields of registered model ``name``."""
    import dataclasses

    from reprlab.models.registry import get_model_entry

    return {f.name for f in dataclasses.fields(get_model_entry(name)[1])}
