"""The ``adapt`` task: train on a labelled source and unlabelled target, judge on held-out target images.

Data (:meth:`AdaptTask.prepare_data`, everything refused before a run directory exists):

* the run's ``data:`` section is the labelled SOURCE (train and validation splits; its test split
  is not used);
* ``adapt.target`` gives the TARGET. Protocol ``splits`` (``auto`` picks it where the target has a
  train and a test split, or ``adapt.target_test_path`` is given): the target's train split is the
  ADAPTATION set (its labels dropped) and its test split the EVALUATION set. Protocol ``holdout``
  (``auto`` where only one split exists, e.g. the MNIST-M test split): that split is divided with a
  seed, stratified by class, into an adaptation part and a held-out evaluation part
  (``adapt.eval_fraction``, default 0.3) that the model never sees;
* adaptation images identical (by pixel hash) to an evaluation image are removed from the
  adaptation set, and a target whose separate adaptation and evaluation files overlap by more than
  1% of the evaluation images is refused;
* ``method=target_only`` (the upper bound) trains on the adaptation images WITH their labels
  (``data.val_fraction`` of them for validation); ``source_only`` (the lower bound) on the source
  alone; ``dann`` / ``pixelda`` on source batches paired with unlabelled target batches.

Selection: the default (``best``) checkpoint follows the label-free ``adapt.selection``
(:data:`~reprlab.capabilities.adaptation.config.SELECTIONS`); the ``oracle`` checkpoint the best
target accuracy (:class:`~reprlab.capabilities.adaptation.selection.SelectionCallback`).
Final metrics: ``test/*`` (label-free checkpoint), ``oracle/acc`` / ``oracle/epoch``,
``last/acc``, ``adapt/*`` (the protocol and sizes); files under ``RUN/adaptation/``.

Example:
    >>> from reprlab.config import RunConfig
    >>> from reprlab.tasks import get_task
    >>> cfg = RunConfig.from_dict({"task": "adapt", "model": {"name": "classifier"},
    ...                            "adapt": {"target": "usps", "method": "source_only", "selection": "entropy"}})
    >>> get_task("adapt").monitor_for(cfg)
    ('select/target_entropy', 'min')
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from reprlab.base.errors import ConfigError, DataError
from reprlab.capabilities.adaptation.config import OWN_DATA, SELECTIONS
from reprlab.capabilities.adaptation.selection import SelectionCallback
from reprlab.data.dataset import ImageData
from reprlab.data.protocols import split_for_adaptation
from reprlab.evaluation.classification import classification_metrics, num_classes_of, predict
from reprlab.runs import PostRunContext, Splits, load_split, prepare_data
from reprlab.tasks.registry import Task, register_task

logger = logging.getLogger(__name__)

#: Share of the evaluation images that separate adaptation files may repeat before the target is refused.
MAX_OVERLAP = 0.01


@dataclass
class AdaptSplits(Splits):
    """:class:`~reprlab.runs.Splits` plus ``adaptation`` (the unlabelled target adaptation images, also
    for the bounds, which train without them) and ``protocol`` (what was used, for every table)."""

    adaptation: ImageData | None = None
    protocol: dict[str, Any] = field(default_factory=dict)


def apply_preprocess(cfg: Any) -> None:
    """``adapt.preprocess=digits``: data.resize [32, 32] and data.channels 3 where unset, data.scale -1_1."""
    if cfg.adapt.preprocess == "digits":
        if cfg.data.resize is None:
            cfg.data.resize = [32, 32]
        if cfg.data.channels is None:
            cfg.data.channels = 3
        cfg.data.scale = "-1_1"


def _seed_of(cfg: Any) -> int:
    return int(cfg.seed if cfg.adapt.split_seed is None else cfg.adapt.split_seed)


def _drop_labels(data: ImageData) -> ImageData:
    return ImageData(data.images, None, data.name, data.source, data.class_names, dict(data.meta))


def _cap(data: ImageData, n: int | None, seed: int) -> ImageData:
    if n is None or n >= len(data):
        return data
    return data.subset(torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n].sort().values)


def holdout_split(data: ImageData, *, eval_fraction: float, seed: int) -> tuple[ImageData, ImageData]:
    """``(adaptation, evaluation)``: a seeded split of ``data``, stratified by class
    (:func:`reprlab.data.protocols.split_for_adaptation`).

    Example:
        >>> d = ImageData(torch.zeros(20, 1, 4, 4), torch.arange(20) % 2)
        >>> a, e = holdout_split(d, eval_fraction=0.3, seed=0)
        >>> len(a), len(e), e.labels.bincount().tolist()
        (14, 6, [3, 3])
    """
    if data.labels is None:
        raise DataError(f"the target images ({data.name}) have no labels, so no evaluation part can be held out",
                        fix="give the target's labels (adapt.target_labels_path, or a labelled dataset)")
    return split_for_adaptation(data, eval_fraction=eval_fraction, seed=seed)


def image_hashes(data: ImageData) -> list[str]:
    """One BLAKE2 hash per image (its pixel bytes): identical images, identical hashes."""
    flat = data.images.reshape(len(data), -1).contiguous().numpy()
    return [hashlib.blake2b(row.tobytes(), digest_size=16).hexdigest() for row in flat]


def remove_overlap(adaptation: ImageData, evaluation: ImageData, *, separate_files: bool,
                   where: str) -> tuple[ImageData, int]:
    """``adaptation`` without images identical to an evaluation image, and how many were removed.

    Refuses (:class:`DataError`) separate files that repeat more than :data:`MAX_OVERLAP` of the
    evaluation images: the evaluation set would not be held out.
    """
    seen = set(image_hashes(evaluation))
    dup = np.array([h in seen for h in image_hashes(adaptation)])
    n = int(dup.sum())
    if n and separate_files and n > MAX_OVERLAP * len(evaluation):
        raise DataError(f"{n} of the {len(adaptation)} target adaptation images are identical to evaluation images "
                        f"({where}): the evaluation images would be trained on",
                        fix="give evaluation images disjoint from the adaptation images, or drop "
                            "adapt.target_test_path to hold out part of the target (adapt.protocol=holdout)")
    if n == len(adaptation):
        raise DataError(f"every target adaptation image is also an evaluation image ({where})",
                        fix="give separate, disjoint target images")
    if n:
        logger.info("removed %d target adaptation image(s) identical to evaluation images", n)
        adaptation = adaptation.subset(torch.as_tensor(np.flatnonzero(~dup)))
    return adaptation, n


def load_target(cfg: Any) -> tuple[ImageData, ImageData, dict[str, Any]]:
    """The target's adaptation images (labels kept where present; the task drops them), evaluation
    images, and the protocol record. Loaded with the source's resize / channels."""
    a = cfg.adapt
    seed = _seed_of(cfg)
    if a.target in OWN_DATA:
        main = load_split(cfg, "train", name=a.target, path=a.target_path, labels_path=a.target_labels_path)
        if a.target_test_path:
            test = load_split(cfg, "test", name=a.target, path=a.target_test_path, labels_path=a.target_test_labels_path)
            return main, test, {"protocol": "splits", "adaptation_from": str(a.target_path),
                                "evaluation_from": str(a.target_test_path)}
        adaptation, evaluation = holdout_split(main, eval_fraction=a.eval_fraction, seed=seed)
        return adaptation, evaluation, {"protocol": "holdout", "adaptation_from": str(a.target_path),
                                        "evaluation_from": str(a.target_path)}
    train = None
    if a.protocol == "splits":
        train = load_split(cfg, "train", name=a.target)
    elif a.protocol == "auto":
        # a train split present here -> splits; absent but the test split present (MNIST-M's usual copy) ->
        # holdout; neither present -> both loaded as data.download allows (splits)
        if _present(cfg, a.target, "train") or not _present(cfg, a.target, "test"):
            train = load_split(cfg, "train", name=a.target)
        else:
            logger.info("adapt.target=%s has no train split here: protocol holdout on its test split", a.target)
    test = load_split(cfg, "test", name=a.target)
    if train is not None:
        return train, test, {"protocol": "splits", "adaptation_from": f"{a.target} train split (labels dropped)",
                             "evaluation_from": f"{a.target} test split"}
    adaptation, evaluation = holdout_split(test, eval_fraction=a.eval_fraction, seed=seed)
    return adaptation, evaluation, {"protocol": "holdout",
                                    "adaptation_from": f"{a.target} test split, {1 - a.eval_fraction:.0%} (labels dropped)",
                                    "evaluation_from": f"{a.target} test split, held-out {a.eval_fraction:.0%}"}


def _present(cfg: Any, name: str, split: str) -> bool:
    """Whether split ``split`` of dataset ``name`` is on disk (nothing is downloaded to find out)."""
    from reprlab.data.sources import locate

    try:
        locate(name, split, data_dir=cfg.data.data_dir, download=False)
    except DataError:
        return False
    return True


def prepare_adaptation(cfg: Any) -> AdaptSplits:
    """The splits of an ``adapt`` run (see the module docstring); also fills ``model.num_classes`` and,
    for the bounds, ``model.adapt_weight=0`` where the model has those options."""
    a = cfg.adapt
    apply_preprocess(cfg)
    seed = _seed_of(cfg)
    adaptation, evaluation, protocol = load_target(cfg)
    if evaluation.labels is None:
        raise DataError(f"the target evaluation images (adapt.target={a.target}) have no labels",
                        fix="give their labels (adapt.target_test_labels_path, or a labelled dataset)")
    evaluation = _cap(evaluation, a.max_eval, seed + 11)
    adaptation = _cap(adaptation, a.max_target, seed + 12)
    adaptation, removed = remove_overlap(adaptation, evaluation, separate_files=protocol["protocol"] == "splits",
                                         where=f"adapt.target={a.target}")
    n_target = num_classes_of(evaluation.labels, evaluation.class_names)
    if a.method == "target_only":
        if adaptation.labels is None:
            raise DataError(f"adapt.method=target_only trains with the target's labels, but the adaptation images "
                            f"(adapt.target={a.target}) have none",
                            fix="give their labels (adapt.target_labels_path) or choose another adapt.method")
        n_val = int(round(len(adaptation) * cfg.data.val_fraction))
        perm = torch.randperm(len(adaptation), generator=torch.Generator().manual_seed(seed + 13))
        train, val = adaptation.subset(perm[n_val:].sort().values), (adaptation.subset(perm[:n_val].sort().values)
                                                                      if n_val else None)
        n_classes = max(n_target, num_classes_of(train.labels, train.class_names))
        splits = AdaptSplits(train, val, evaluation, target=None, adaptation=_drop_labels(adaptation))
    else:
        source = prepare_data(cfg)
        if source.train.labels is None:
            raise ConfigError(f"the source data.name={cfg.data.name} has no labels",
                              fix="use a labelled source dataset, or give data.labels_path for your arrays")
        n_source = num_classes_of(source.train.labels, source.train.class_names)
        if n_source != n_target:
            raise ConfigError(f"the source data.name={cfg.data.name} has {n_source} classes but the target "
                              f"adapt.target={a.target} has {n_target}",
                              fix="adapt between datasets with the same classes (e.g. digits 0-9 on both sides)")
        if source.train.shape != evaluation.shape:
            raise ConfigError(f"source images have shape {source.train.shape} but target images {evaluation.shape}",
                              fix="set data.resize=[H,W] and data.channels (they apply to both domains), or "
                                  "adapt.preprocess=digits")
        unlabelled = _drop_labels(adaptation)
        n_classes = n_source
        splits = AdaptSplits(source.train, source.val, evaluation,
                             target=unlabelled if a.method in ("dann", "pixelda") else None, adaptation=unlabelled)
    splits.protocol = {**protocol, "target": a.target, "method": a.method, "adaptation_images": len(adaptation),
                       "evaluation_images": len(evaluation), "eval_fraction": float(a.eval_fraction)
                       if protocol["protocol"] == "holdout" else None, "split_seed": seed,
                       "duplicates_removed": removed, "selection": a.selection, "source": cfg.data.name,
                       "source_train_images": len(splits.train), "classes": n_classes}
    fields = _model_fields(cfg.model["name"])
    if "num_classes" in fields and "num_classes" not in cfg.model:
        cfg.model["num_classes"] = n_classes
    if a.method in ("source_only", "target_only") and "adapt_weight" in fields:
        cfg.model["adapt_weight"] = 0.0
    return splits


def _model_fields(name: str) -> set[str]:
    import dataclasses

    from reprlab.models.registry import get_model_entry

    return {f.name for f in dataclasses.fields(get_model_entry(name)[1])}


def protocol_line(protocol: dict[str, Any]) -> str:
    """One sentence naming the protocol, for captions and tables.

    Example:
        >>> protocol_line({"protocol": "holdout", "target": "mnist-m", "adaptation_images": 6301,
        ...                "evaluation_images": 2700, "split_seed": 0, "eval_fraction": 0.3})
        'protocol holdout: 6301 unlabelled mnist-m adaptation images, 2700 held-out evaluation images (eval_fraction 0.3, split seed 0)'
    """
    extra = f"eval_fraction {protocol['eval_fraction']}, " if protocol.get("eval_fraction") else ""
    return (f"protocol {protocol['protocol']}: {protocol['adaptation_images']} unlabelled {protocol['target']} "
            f"adaptation images, {protocol['evaluation_images']} held-out evaluation images "
            f"({extra}split seed {protocol['split_seed']})")


@register_task("adapt")
class AdaptTask(Task):
    """Unsupervised domain adaptation: labelled source, unlabelled target; label-free and oracle selection."""

    description = "domain adaptation (labelled source, unlabelled target)"
    monitor = "val/acc"
    mode = "max"
    headline = ("test/acc", "oracle/acc", "last/acc", "test/balanced_acc")
    needs_labels = True
    needs_domains = True

    def monitor_for(self, cfg: Any) -> tuple[str, str]:
        return SELECTIONS[cfg.adapt.selection]

    def prepare_data(self, cfg: Any) -> AdaptSplits:
        return prepare_adaptation(cfg)

    def check(self, cfg: Any, model: Any, splits: Splits) -> None:
        name = cfg.model["name"]
        for attr in ("logits", "features"):
            if not hasattr(model, attr):
                raise ConfigError(f"model {name!r} has no {attr}(): task adapt needs a classifier with features",
                                  fix="use model.name=dann (adapt.method=dann, source_only or target_only) or pixelda")
        if cfg.adapt.method == "pixelda" and not hasattr(model, "translate"):
            raise ConfigError(f"adapt.method=pixelda needs a model with translate(), not {name!r}",
                              fix="set model.name=pixelda")
        n_classes = int((getattr(splits, "protocol", {}) or {}).get("classes") or
                        num_classes_of(splits.test.labels, splits.test.class_names))
        have = getattr(model.config, "num_classes", None)
        if have is not None and have < n_classes:
            raise ConfigError(f"model.num_classes={have} but the data has {n_classes} classes",
                              fix=f"set model.num_classes={n_classes} (or drop it: it follows the data)")

        if cfg.adapt.compare_with:  # drawn after training: refuse a wrong run now, not after the epochs
            from reprlab.runs import load_run_model

            other = load_run_model(cfg.adapt.compare_with)
            if tuple(other.config.input_shape) != tuple(model.config.input_shape) or not hasattr(other, "features"):
                raise ConfigError(f"adapt.compare_with={cfg.adapt.compare_with} holds a model for images "
                                  f"{tuple(other.config.input_shape)} (features: {hasattr(other, 'features')}), but "
                                  f"this run's are {tuple(model.config.input_shape)}",
                                  fix="compare with a source-only adapt run of the same source and preprocessing")

    def callbacks(self, cfg: Any, splits: Splits, run: Any, device: Any) -> list:
        criteria = ("entropy", "snd") + (("dev",) if cfg.adapt.selection == "dev" else ())
        return [SelectionCallback(adaptation=getattr(splits, "adaptation", splits.target), evaluation=splits.test,
                                  source_train=splits.train, source_val=splits.val,
                                  checkpoints=run.checkpoints if run is not None else None, criteria=criteria,
                                  max_images=cfg.adapt.select_images, batch_size=cfg.eval.batch_size, device=device,
                                  seed=_seed_of(cfg))]

    def score(self, cfg: Any, model: Any, test: Any, device: Any, *, max_images: int | None = None) -> dict[str, float]:
        logits, labels = predict(model, test, batch_size=cfg.eval.batch_size, device=device, max_images=max_images)
        return classification_metrics(logits, labels, _n_classes(model, labels))[0]

    def status(self, metrics: dict[str, float], run: Any = None) -> dict[str, Any]:
        return {"adapt": {k.split("/", 1)[1]: v for k, v in metrics.items() if k.startswith("adapt/")}}

    def evaluate(self, ctx: PostRunContext, history: list[dict[str, float]]) -> dict[str, float]:
        from reprlab.capabilities.adaptation.report import write_adaptation_report

        return write_adaptation_report(ctx, history)


def _n_classes(model: Any, labels: np.ndarray) -> int:
    return int(getattr(model.config, "num_classes", 0) or (int(labels.max()) + 1))


__all__ = ["AdaptSplits", "AdaptTask", "apply_preprocess", "holdout_split", "image_hashes", "load_target",
           "prepare_adaptation", "protocol_line", "remove_overlap"]
