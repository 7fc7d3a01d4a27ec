"""Data protocols shared by tasks: splitting one labelled set for domain adaptation.

When a target domain has only one labelled split (MNIST-M's test split, say), the adaptation
protocol uses part of it, without labels, as the adaptation target and keeps the rest, with
labels, for evaluation. :func:`split_for_adaptation` makes that split: seeded, stratified by
class (scikit-learn's ``train_test_split``), and disjoint.

Example:
    >>> import torch
    >>> from reprlab.data import ImageData
    >>> data = ImageData(torch.zeros(20, 3, 8, 8, dtype=torch.uint8), torch.arange(20) % 2)
    >>> adapt, held_out = split_for_adaptation(data, eval_fraction=0.3, seed=0)
    >>> len(adapt), len(held_out), held_out.labels.bincount().tolist()
    (14, 6, [3, 3])
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from reprlab.base.errors import ConfigError, DataError
from reprlab.data.dataset import ImageData


def split_for_adaptation(data: ImageData, *, eval_fraction: float, seed: int) -> tuple[ImageData, ImageData]:
    """Split labelled ``data`` into ``(adaptation part, held-out evaluation part)``.

    The split is stratified by label (each class keeps its share in both parts), seeded by
    ``seed`` (same seed, same split), and the parts are disjoint and together hold every image.
    ``meta["protocol_part"]`` is ``"adapt"`` or ``"eval"``; images keep their order. Raises
    :class:`ConfigError` when ``eval_fraction`` is not in (0, 1), :class:`DataError` when ``data``
    has no labels or a part would not hold at least one image per class.

    Example:
        >>> adapt, held_out = split_for_adaptation(mnistm_test, eval_fraction=0.2, seed=0)  # doctest: +SKIP
        >>> len(adapt), len(held_out)  # doctest: +SKIP
        (7200, 1801)
    """
    if isinstance(eval_fraction, bool) or not isinstance(eval_fraction, (int, float)) \
            or not 0.0 < float(eval_fraction) < 1.0:
        raise ConfigError(f"eval_fraction must be a number strictly between 0 and 1, got {eval_fraction!r}",
                        fix="e.g. eval_fraction=0.2 keeps 20% of the images for evaluation")
    if data.labels is None:
        raise DataError(f"{data.name}: the adaptation split is stratified by class but the images have no labels",
                        fix="use a labelled dataset for the target domain (e.g. mnist-m, svhn, usps)")
    labels = data.labels.numpy()
    index = np.arange(len(data))
    try:
        adapt_idx, eval_idx = train_test_split(index, test_size=float(eval_fraction), random_state=int(seed),
                                               shuffle=True, stratify=labels)
    except ValueError as exc:
        counts = np.bincount(labels)
        raise DataError(f"{data.name}: cannot split {len(data)} images (smallest class: {int(counts[counts > 0].min())}) "
                        f"with eval_fraction={eval_fraction} stratified by class ({exc})",
                        fix="use more images or an eval_fraction that leaves every class in both parts") from exc
    parts = []
    for part, idx in (("adapt", np.sort(adapt_idx)), ("eval", np.sort(eval_idx))):
        sub = data.subset(torch.from_numpy(idx))
        sub.meta.update(protocol_part=part, eval_fraction=float(eval_fraction), protocol_seed=int(seed))
        parts.append(sub)
    return parts[0], parts[1]
