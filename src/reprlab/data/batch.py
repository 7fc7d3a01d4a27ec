"""The batch object every loader yields: images and, where present, labels and a domain index.

A two-domain step (domain adaptation) carries the unlabelled target batch in ``target``.

Example:
    >>> import torch
    >>> b = Batch(torch.rand(4, 1, 8, 8), labels=torch.tensor([0, 1, 0, 1]))
    >>> len(b), b.labels.tolist(), b.target is None
    (4, [0, 1, 0, 1], True)
    >>> b.to("cpu").images.shape
    torch.Size([4, 1, 8, 8])
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch


@dataclass
class Batch:
    """``images`` float32 ``(B, C, H, W)`` in the model's range; optional int64 ``labels`` and ``domains``;
    ``target``: the paired target-domain batch of a two-domain step; ``index``: int64 positions of the images
    in their dataset (set by the loaders; FlexMatch remembers each unlabelled image by it)."""

    images: torch.Tensor
    labels: torch.Tensor | None = None
    domains: torch.Tensor | None = None
    target: "Batch | None" = None
    index: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "Batch":
        """The same batch on ``device``."""
        move = (lambda t: None if t is None else t.to(device, non_blocking=non_blocking))
        return Batch(move(self.images), move(self.labels), move(self.domains),
                     None if self.target is None else self.target.to(device, non_blocking), move(self.index))

    def map_images(self, fn) -> "Batch":
        """A copy with ``fn`` applied to the images (and to the target's)."""
        return replace(self, images=fn(self.images), target=None if self.target is None else self.target.map_images(fn))
