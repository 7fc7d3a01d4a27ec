"""The one k-nearest-neighbour search of reprlab (exact, chunked, in torch).

Used by the anomaly k-NN score (distances to normal codes), by SCAN's neighbour mining
(indices of each point's nearest other points) and by the generation metrics. Exact
brute force in chunks is what these sizes need (at most 70,000 points): scikit-learn's
``NearestNeighbors`` does the same with more copies, so this stays a few lines of torch.

Example:
    >>> import torch
    >>> x = torch.tensor([[0.0, 1.0], [0.0, 1.1], [1.0, 0.0]])
    >>> d, i = knn_search(x, x, 1, metric="euclidean", exclude_self=True)
    >>> i.ravel().tolist(), [round(v, 2) for v in d.ravel().tolist()]
    ([1, 0, 0], [0.1, 0.1, 1.41])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from reprlab.base.validation import check_choice, check_int

METRICS: tuple[str, ...] = ("euclidean", "cosine")


def knn_search(query: Any, reference: Any, k: int, *, metric: str = "euclidean", exclude_self: bool = False,
               chunk: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances and indices ``(Nq, k)`` of each query's ``k`` nearest reference points, nearest first.

    ``metric``: ``euclidean`` or ``cosine`` (1 - cosine similarity). With ``exclude_self``
    the query *is* the reference set and a point is not its own neighbour (query ``i`` skips
    reference ``i``). ``k`` is capped at the number of candidates.
    """
    check_choice("metric", metric, METRICS)
    q = torch.as_tensor(np.asarray(query) if not isinstance(query, torch.Tensor) else query, dtype=torch.float32)
    r = torch.as_tensor(np.asarray(reference) if not isinstance(reference, torch.Tensor) else reference,
                        dtype=torch.float32)
    check_int("k", int(k), minimum=1)
    k = min(int(k), r.shape[0] - int(exclude_self))
    check_int("k (neighbours available)", k, minimum=1)
    if metric == "cosine":
        q, r = torch.nn.functional.normalize(q, dim=1), torch.nn.functional.normalize(r, dim=1)
    r_sq = (r ** 2).sum(1)
    dists, idx = [], []
    for start in range(0, q.shape[0], chunk):
        qb = q[start:start + chunk]
        if metric == "cosine":
            d = 1.0 - qb @ r.T
        else:
            d = ((qb ** 2).sum(1, keepdim=True) + r_sq[None] - 2 * qb @ r.T).clamp_min(0).sqrt()
        if exclude_self:
            rows = torch.arange(qb.shape[0])
            d[rows, rows + start] = float("inf")
        top = d.topk(k, dim=1, largest=False)
        dists.append(top.values)
        idx.append(top.indices)
    return torch.cat(dists), torch.cat(idx)
