"""In-memory batch loading: seeded, shardable across ranks, no worker processes.

Datasets here fit in memory (70,000 MNIST-sized images are 55 MB as uint8), so a
``DataLoader`` with workers only adds overhead. :class:`BatchLoader` draws a seeded
permutation per epoch that does not depend on the number of ranks, and gives rank ``r``
of ``W`` the elements ``perm[r::W]``: step ``i`` of a ``W``-rank run with batch ``b``
sees exactly the images of step ``i`` of a one-rank run with batch ``b*W``.

Example:
    >>> import torch
    >>> from reprlab.data.dataset import ImageData
    >>> data = ImageData(torch.zeros(10, 1, 4, 4, dtype=torch.uint8))
    >>> [b.shape[0] for b in BatchLoader(data, batch_size=4, seed=0).epoch(0)]
    [4, 4, 2]
"""

from __future__ import annotations

from typing import Iterator

import torch

from reprlab.data.dataset import ImageData


def epoch_seed(seed: int, epoch: int) -> int:
    """A seed for epoch ``epoch`` of a run seeded with ``seed`` (stable across resumes)."""
    return (int(seed) * 1_000_003 + int(epoch) * 7_919 + 12_345) % (2**63 - 1)


class BatchLoader:
    """Yield float32 batches in [0, 1] from an :class:`ImageData`, optionally shuffled."""

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

    def epoch(self, epoch: int) -> Iterator[torch.Tensor]:
        """Batches of epoch ``epoch`` as float32 in [0, 1], shape ``(B, C, H, W)``."""
        order = self.indices(epoch)
        stop = len(order) - (len(order) % self.batch_size if self.drop_last else 0)
        for start in range(0, stop, self.batch_size):
            yield self.data.float01(order[start : start + self.batch_size])
