"""In-memory batch loading: seeded, shardable across ranks, no worker processes.

Datasets here fit in memory (70,000 MNIST-sized images are 55 MB as uint8), so a
``DataLoader`` with workers only adds overhead. :class:`BatchLoader` draws a seeded
permutation per epoch that does not depend on the number of ranks, and gives rank ``r``
of ``W`` the elements ``perm[r::W]``: step ``i`` of a ``W``-rank run with batch ``b``
sees exactly the images of step ``i`` of a one-rank run with batch ``b*W``. It yields
:class:`~reprlab.data.batch.Batch` objects carrying the labels and domain indices of the
data, where it has them. :class:`PairedLoader` draws a labelled source batch and an
unlabelled target batch at each step (domain adaptation).

Example:
    >>> import torch
    >>> from reprlab.data.dataset import ImageData
    >>> data = ImageData(torch.zeros(10, 1, 4, 4, dtype=torch.uint8), torch.arange(10))
    >>> [len(b) for b in BatchLoader(data, batch_size=4, seed=0).epoch(0)]
    [4, 4, 2]
    >>> next(iter(BatchLoader(data, batch_size=3, shuffle=False).epoch(0))).labels.tolist()
    [0, 1, 2]
"""

from __future__ import annotations

from typing import Iterator

import torch

from reprlab.base.errors import ConfigError
from reprlab.data.batch import Batch
from reprlab.data.dataset import ImageData


def epoch_seed(seed: int, epoch: int) -> int:
    """A seed for epoch ``epoch`` of a run seeded with ``seed`` (stable across resumes)."""
    return (int(seed) * 1_000_003 + int(epoch) * 7_919 + 12_345) % (2**63 - 1)


class BatchLoader:
    """Yield :class:`Batch` objects (float32 images in [0, 1], labels, domains) from an :class:`ImageData`."""

    def __init__(self, data: ImageData, *, batch_size: int, seed: int = 0, shuffle: bool = True,
                 drop_last: bool = False, rank: int = 0, world_size: int = 1) -> None:
        self.data = data
        self.batch_size = int(batch_size)
        self.seed = seed
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size

    def indices(self, epoch: int) -> torch.Tensor:
        """This rank's image indices for ``epoch``, in order."""
        n = len(self.data)
        if self.shuffle:
            g = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        if self.world_size > 1:
            order = order[: (n // self.world_size) * self.world_size]  # equal shards keep ranks in step
            order = order[self.rank :: self.world_size]
        return order

    def __len__(self) -> int:
        n = len(self.data) // self.world_size if self.world_size > 1 else len(self.data)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def batch(self, index: torch.Tensor) -> Batch:
        """The images (and labels, domains) at ``index`` as a :class:`Batch`."""
        d = self.data
        return Batch(d.float01(index), None if d.labels is None else d.labels[index],
                     None if d.domains is None else d.domains[index], index=index)

    def epoch(self, epoch: int) -> Iterator[Batch]:
        """Batches of epoch ``epoch``: images float32 in [0, 1], shape ``(B, C, H, W)``."""
        order = self.indices(epoch)
        stop = len(order) - (len(order) % self.batch_size if self.drop_last else 0)
        for start in range(0, stop, self.batch_size):
            yield self.batch(order[start : start + self.batch_size])


class PairedLoader:
    """A labelled source batch and an unlabelled target batch at every step.

    The target side takes ``target_batch_size`` images per step (``None``: ``batch_size``; FixMatch
    pairs a labelled batch with a several times larger unlabelled one). The epoch is as long as the ``larger`` side (the other side starts again with a new
    seeded order when it runs out) or the ``smaller`` one. The target batch comes as
    ``batch.target``; domains are 0 (source) and 1 (target). Seeding and sharding follow
    :class:`BatchLoader`, so a resumed or multi-rank run replays exactly.

    Example:
        >>> import torch
        >>> from reprlab.data.dataset import ImageData
        >>> src = ImageData(torch.zeros(10, 1, 4, 4), torch.arange(10))
        >>> tgt = ImageData(torch.ones(4, 1, 4, 4))
        >>> steps = list(PairedLoader(src, tgt, batch_size=2, seed=0).epoch(0))
        >>> len(steps), len(steps[0].target), steps[0].target.domains.tolist(), len(steps[0].target.index)
        (5, 2, [1, 1], 2)
    """

    def __init__(self, source: ImageData, target: ImageData, *, batch_size: int, seed: int = 0,
                 epoch_by: str = "larger", rank: int = 0, world_size: int = 1,
                 target_batch_size: int | None = None) -> None:
        if epoch_by not in ("larger", "smaller"):
            raise ConfigError(f"train.paired_epoch must be 'larger' or 'smaller', got {epoch_by!r}",
                              fix="set train.paired_epoch=larger or smaller")
        self.source = BatchLoader(source, batch_size=batch_size, seed=seed, drop_last=True, rank=rank,
                                  world_size=world_size)
        target_batch = batch_size if target_batch_size is None else int(target_batch_size)
        self.target = BatchLoader(target, batch_size=target_batch, seed=seed + 7_777, drop_last=True, rank=rank,
                                  world_size=world_size)
        for side, loader, size, key in (("source", self.source, batch_size, "batch_size"),
                                        ("target", self.target, target_batch, "target_batch_size")):
            if len(loader) == 0:
                raise ConfigError(f"the {side} domain has fewer images per rank than one batch ({size})",
                                  fix=f"lower train.{key} or use more images")
        self.epoch_by = epoch_by

    def __len__(self) -> int:
        pick = max if self.epoch_by == "larger" else min
        return pick(len(self.source), len(self.target))

    @staticmethod
    def _cycle(loader: BatchLoader, epoch: int) -> Iterator[Batch]:
        cycle = 0
        while True:
            yield from loader.epoch(epoch * 1_000 + cycle)
            cycle += 1

    def epoch(self, epoch: int) -> Iterator[Batch]:
        """``len(self)`` source batches, each with ``target`` set."""
        sources, targets = self._cycle(self.source, epoch), self._cycle(self.target, epoch)
        for _ in range(len(self)):
            s, t = next(sources), next(targets)
            yield Batch(s.images, s.labels, torch.zeros(len(s), dtype=torch.int64),
                        Batch(t.images, None, torch.ones(len(t), dtype=torch.int64), index=t.index), s.index)
