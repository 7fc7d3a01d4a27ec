"""FixMatch-style consistency on unlabelled images (Sohn et al. 2020), for reprlab classifiers.

A classifier trained with ``semi_supervised="fixmatch"`` sees, at every step, a labelled batch
and an unlabelled one (``batch.target``: the ``classify`` task pairs the labelled budget with
the rest of the training split, labels dropped). The unlabelled images come weakly augmented
(the run's ``data.augment``: flips, small crops); the model predicts them without gradient, and
where the most likely class has a probability of at least ``confidence`` that class becomes a
pseudo-label. A *strongly* augmented view of the same images (:func:`strong_view`: random
resized crop, flip, shift, brightness/contrast, the contrastive encoder's augmentations) must
then predict the pseudo-label (optionally after distribution alignment, :func:`align_distribution`):
the unlabelled loss is the cross-entropy on the confident images,
averaged over the whole unlabelled batch, and the total loss is ``supervised +
unlabelled_weight * unlabelled``.

``semi_supervised="flexmatch"`` (Zhang et al. 2021) is FixMatch with *curriculum pseudo-labelling*: a
threshold per class instead of one (:func:`flexmatch_thresholds`). Each unlabelled image remembers the
class it was last predicted with a probability of at least ``confidence`` (its index in the unlabelled
set travels with the batch, ``batch.target.index``); a class that few images have reached yet (a hard
class, or every class early in training) gets a lower threshold, so more of its images teach the model.
The memory is part of the run's resume state; in a multi-rank run each rank remembers its own shard.

Written here because no maintained PyTorch library without torchvision provides it; the
augmentations are :func:`reprlab.models.simclr.augment_views` (torch ops on whole batches).

Example:
    >>> import torch
    >>> weak = torch.tensor([[4.0, 0.0], [0.1, 0.0]])
    >>> pseudo, mask = pseudo_labels(weak, confidence=0.9)
    >>> pseudo.tolist(), mask.tolist()
    ([0, 0], [1.0, 0.0])
    >>> t = fixmatch_terms(torch.tensor([[3.0, 0.0]]), torch.tensor([0]), torch.tensor([[0.0, 5.0], [5.0, 0.0]]),
    ...                    pseudo, mask, unlabelled_weight=1.0)
    >>> sorted(t), round(float(t["mask_rate"]), 2)
    (['acc', 'loss', 'mask_rate', 'supervised', 'unlabelled', 'xent'], 0.5)
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from reprlab.models.simclr import augment_views

#: ``model.semi_supervised`` values: no unlabelled images, FixMatch consistency, or FixMatch with FlexMatch's
#: per-class thresholds.
SEMI_SUPERVISED: tuple[str, ...] = ("none", "fixmatch", "flexmatch")
#: Strong augmentation of the unlabelled images unless ``model.strong_augment`` says otherwise: the options
#: of :func:`augment_views` and ``cutout`` (see :func:`strong_view`).
STRONG_AUGMENT_DEFAULTS: dict[str, Any] = {"crop_scale": (0.4, 1.0), "translate": 0.1, "brightness": 0.4,
                                           "contrast": 0.4, "flip": 0.5, "cutout": 0.5}


def cutout(x: torch.Tensor, size: float, *, fill: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``x`` with one square of side ``size`` (a fraction of the image side) set to ``fill`` per image, centred
    anywhere in the image (DeVries and Taylor 2017; the part outside the image is dropped).

    Example:
        >>> y = cutout(torch.ones(2, 1, 8, 8), 0.5, fill=0.0, generator=torch.Generator().manual_seed(0))
        >>> y.shape, bool((y == 0).any()), bool((y.sum(dim=(1, 2, 3)) >= 64 - 16).all())
        (torch.Size([2, 1, 8, 8]), True, True)
    """
    if size <= 0:
        return x
    n, _, h, w = x.shape
    cy = (torch.rand(n, generator=generator) * h).to(x.device).view(n, 1, 1)
    cx = (torch.rand(n, generator=generator) * w).to(x.device).view(n, 1, 1)
    ys = torch.arange(h, device=x.device, dtype=torch.float32).view(1, h, 1) + 0.5
    xs = torch.arange(w, device=x.device, dtype=torch.float32).view(1, 1, w) + 0.5
    hole = ((ys - cy).abs() < size * h / 2) & ((xs - cx).abs() < size * w / 2)
    return x.masked_fill(hole.unsqueeze(1), fill)


def strong_view(x: torch.Tensor, *, value_range: tuple[float, float], options: dict[str, Any] | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """A strongly augmented copy of ``x`` ``(N, C, H, W)``: :func:`augment_views` and then :func:`cutout`
    (filled with the range's low end, the background), with :data:`STRONG_AUGMENT_DEFAULTS` updated by
    ``options``."""
    opts = {**STRONG_AUGMENT_DEFAULTS, **(options or {})}
    size = float(opts.pop("cutout"))
    if not 0 <= size <= 1:
        raise ValueError(f"cutout={size} is not a fraction of the image side in [0, 1]")
    out = augment_views(x, generator=generator, value_range=value_range, **opts)
    return cutout(out, size, fill=value_range[0], generator=generator)


def check_strong_augment(options: Any) -> dict[str, Any]:
    """``options`` as a dict after one trial call on a tiny batch; ``ValueError`` naming the bad key otherwise."""
    import inspect

    if not isinstance(options, dict):
        raise ValueError(f"strong_augment must be a mapping of augmentation options, got {options!r}")
    known = {k for k in inspect.signature(augment_views).parameters if k not in ("x", "generator", "value_range")}
    known.add("cutout")
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"strong_augment has an unknown option {unknown[0]!r}; known: {', '.join(sorted(known))}")
    g = torch.Generator().manual_seed(0)  # a local generator: checking a config leaves the global RNG alone
    try:
        strong_view(torch.rand(2, 1, 4, 4, generator=g), value_range=(0.0, 1.0), options=options, generator=g)
    except (ValueError, RuntimeError, IndexError, TypeError) as exc:
        raise ValueError(f"strong_augment={options!r} cannot be applied: {str(exc).splitlines()[0]}") from None
    return dict(options)


@torch.no_grad()
def align_distribution(probs: torch.Tensor, running_mean: torch.Tensor, *, momentum: float = 0.99) -> torch.Tensor:
    """Distribution alignment (ReMixMatch, Berthelot et al. 2020) towards a uniform class prior.

    ``running_mean`` (the moving average of the predicted class distribution, updated in place
    with ``momentum``) divides ``probs``, and the rows are renormalised: classes the model
    over-predicts on unlabelled images lose confidence, so fewer wrong pseudo-labels of them pass
    the threshold. The prior is uniform, as the label budgets are class-balanced.

    Example:
        >>> rm = torch.tensor([0.8, 0.2])
        >>> [round(v, 2) for v in align_distribution(torch.tensor([[0.6, 0.4]]), rm, momentum=0.0)[0].tolist()]
        [0.27, 0.73]
        >>> [round(v, 2) for v in rm.tolist()]
        [0.6, 0.4]
    """
    aligned = probs / running_mean.clamp_min(1e-6)
    aligned = aligned / aligned.sum(dim=1, keepdim=True)
    running_mean.mul_(momentum).add_(probs.mean(dim=0), alpha=1 - momentum)
    return aligned


@torch.no_grad()
def flexmatch_thresholds(selected: torch.Tensor, n_classes: int, *, confidence: float) -> torch.Tensor:
    """FlexMatch's per-class thresholds ``(n_classes,)`` (Zhang et al. 2021, with threshold warm-up and the
    non-linear mapping ``x / (2 - x)``).

    ``selected`` holds, for every unlabelled image, the class it was last predicted with a probability of
    at least ``confidence``, or -1 if never. With ``sigma_c`` the number of images selected for class
    ``c`` and ``unused`` the number never selected, the learning effect is
    ``beta_c = sigma_c / max(max_c sigma_c, unused)`` and the threshold ``confidence * beta_c / (2 - beta_c)``:
    the best-learned class keeps ``confidence`` once most images are selected; at the start (every image
    unused) every threshold is 0.

    Example:
        >>> selected = torch.tensor([0, 0, 0, 0, 1, 1, -1, -1])  # class 0 learned twice as well as class 1
        >>> [round(v, 3) for v in flexmatch_thresholds(selected, 3, confidence=0.9).tolist()]
        [0.9, 0.3, 0.0]
        >>> flexmatch_thresholds(torch.full((5,), -1), 2, confidence=0.9).tolist()
        [0.0, 0.0]
    """
    counts = torch.bincount(selected.long() + 1, minlength=n_classes + 1).float()
    unused, per_class = counts[0], counts[1:n_classes + 1]
    beta = per_class / torch.maximum(per_class.max(), unused).clamp_min(1.0)
    return confidence * beta / (2.0 - beta)


@torch.no_grad()
def pseudo_labels(weak_logits: torch.Tensor, *, confidence: float, running_mean: torch.Tensor | None = None,
                  selected: torch.Tensor | None = None,
                  index: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The most likely class of each weak view and a float mask: 1 where its probability is ``>= confidence``
    (after :func:`align_distribution` when ``running_mean`` is given).

    With ``selected`` (FlexMatch's memory of the unlabelled set, see :func:`flexmatch_thresholds`) and
    ``index`` (the batch's positions in that set), the threshold is the pseudo-label's class threshold,
    computed before this batch; then ``selected`` is updated in place where the probability reaches
    ``confidence``.

    Example:
        >>> selected = torch.tensor([0, 0, -1, -1])
        >>> weak = torch.log(torch.tensor([[0.6, 0.4], [0.3, 0.7]]))
        >>> pseudo, mask = pseudo_labels(weak, confidence=0.65, selected=selected, index=torch.tensor([2, 3]))
        >>> mask.tolist(), selected.tolist()  # thresholds: class 0 0.65, class 1 (never selected) 0
        ([0.0, 1.0], [0, 0, -1, 1])
    """
    probs = torch.softmax(weak_logits.float(), dim=1)
    if running_mean is not None:
        probs = align_distribution(probs, running_mean)
    top, pseudo = probs.max(dim=1)
    if selected is None:
        return pseudo, (top >= confidence).float()
    if index is None or index.shape[0] != top.shape[0]:
        raise ValueError("FlexMatch needs the unlabelled images' indices (batch.target.index), one per image")
    thresholds = flexmatch_thresholds(selected, probs.shape[1], confidence=confidence).to(top.device)
    mask = (top >= thresholds[pseudo]).float()
    sure = top >= confidence
    selected[index[sure].to(selected.device)] = pseudo[sure].to(selected.device)
    return pseudo, mask


def fixmatch_terms(labelled_logits: torch.Tensor, labels: torch.Tensor, strong_logits: torch.Tensor,
                   pseudo: torch.Tensor, mask: torch.Tensor, *, unlabelled_weight: float,
                   label_smoothing: float = 0.0) -> dict[str, torch.Tensor]:
    """The loss terms of one FixMatch step: ``loss = supervised + unlabelled_weight * unlabelled``.

    ``supervised`` (and ``xent``, ``acc``) on the labelled batch as
    :func:`reprlab.models.resnet18.classification_terms`; ``unlabelled`` the cross-entropy of the
    strong views against the pseudo-labels ``pseudo`` (:func:`pseudo_labels`), weighted by
    ``mask`` and averaged over the whole unlabelled batch; ``mask_rate`` the share of unlabelled
    images confident enough to count.
    """
    from reprlab.models.resnet18 import classification_terms

    terms = classification_terms(labelled_logits, labels, label_smoothing=label_smoothing)
    unlabelled = (F.cross_entropy(strong_logits.float(), pseudo, reduction="none") * mask).mean()
    terms["supervised"] = terms["loss"]
    terms["unlabelled"] = unlabelled
    terms["mask_rate"] = mask.mean()
    terms["loss"] = terms["loss"] + unlabelled_weight * unlabelled
    return terms
