"""Label-free model selection for domain adaptation, and the epoch callback that records it.

Criteria (none reads a target label):

* ``source_val``: accuracy on the labelled source validation split (the model's ``val/acc``);
* ``entropy``: mean prediction entropy on the unlabelled target adaptation images (lower is better);
* ``dev``: deep embedded validation (You et al., ICML 2019): the source-validation loss weighted
  by the density ratio p_target(x) / p_source(x) of the features, estimated by a domain classifier
  (scikit-learn logistic regression), with the paper's control variate (lower is better);
* ``snd``: soft neighbourhood density (Saito et al., ICCV 2021): the entropy of the softmax over
  the similarities between each target prediction and the others (temperature 0.05; higher is better).

:class:`SelectionCallback` computes them each epoch together with the ORACLE, the accuracy on the
labelled target evaluation images (``oracle/target_acc``), and keeps the ``oracle`` checkpoint
(the epoch of the best target accuracy). The oracle is recorded beside the label-free choice and
never picks the default checkpoint. DEV and SND are hand-written: no maintained library computes
them from logits and features (pytorch-adapt's validators need its own hook framework).

Example:
    >>> import numpy as np
    >>> round(prediction_entropy(np.zeros((4, 2))), 4)  # uniform over 2 classes: log 2
    0.6931
    >>> dev_from_weights(np.ones(5), np.array([1.0, 2.0, 3.0, 4.0, 5.0]))  # equal domains: the mean loss
    3.0
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch

from reprlab.data.dataset import ImageData
from reprlab.evaluation.classification import predict_logits
from reprlab.training.callbacks import Callback
from reprlab.training.checkpoint import save_checkpoint

logger = logging.getLogger(__name__)

ORACLE_KEY = "oracle/target_acc"
SND_TEMPERATURE = 0.05


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def prediction_entropy(logits: np.ndarray) -> float:
    """Mean over images of the entropy (nats) of ``softmax(logits)``.

    Example:
        >>> round(prediction_entropy(np.array([[20.0, 0.0, 0.0]])), 6)
        0.0
    """
    p = _softmax(np.asarray(logits, dtype=np.float64))
    return float(-(p * np.log(np.clip(p, 1e-12, None))).sum(1).mean())


def soft_neighbourhood_density(logits: np.ndarray, *, temperature: float = SND_TEMPERATURE) -> float:
    """SND of Saito et al. (2021): L2-normalised softmax outputs, their pairwise similarities over
    ``temperature`` (self-similarity set to ``-1/temperature``, as in the authors' code), a row-wise
    softmax, and the mean entropy of its rows. Higher: predictions with denser soft neighbourhoods.

    Example:
        >>> round(soft_neighbourhood_density(np.ones((4, 3))), 4)  # identical: each row uniform over 3 others
        1.0986
    """
    p = _softmax(np.asarray(logits, dtype=np.float64))
    p = p / np.linalg.norm(p, axis=1, keepdims=True)
    sim = p @ p.T / temperature
    np.fill_diagonal(sim, -1.0 / temperature)
    q = _softmax(sim)
    return float(-(q * np.log(np.clip(q, 1e-12, None))).sum(1).mean())


def dev_from_weights(weights: np.ndarray, losses: np.ndarray) -> float:
    """Deep embedded validation risk from importance ``weights`` and per-image validation ``losses``:
    ``mean(w*l) + eta*mean(w) - eta`` with ``eta = -Cov(w*l, w) / Var(w)`` (the control variate
    of You et al. 2019, Algorithm 1; ``eta = 0`` when the weights do not vary).

    Example:
        >>> round(dev_from_weights(np.array([0.5, 1.5]), np.array([1.0, 1.0])), 6)  # constant loss: exact
        1.0
    """
    w = np.asarray(weights, dtype=np.float64)
    weighted = w * np.asarray(losses, dtype=np.float64)
    var = float(np.var(w, ddof=1)) if len(w) > 1 else 0.0
    eta = 0.0 if var <= 1e-12 else -float(np.cov(weighted, w, ddof=1)[0, 1]) / var
    return float(weighted.mean() + eta * w.mean() - eta)


def density_ratio(source_features: np.ndarray, target_features: np.ndarray, query: np.ndarray, *,
                  seed: int = 0) -> np.ndarray:
    """``p_target(x) / p_source(x)`` at ``query`` from a logistic-regression domain classifier
    (standardised features; the odds rescaled by n_source / n_target so equal domains give ~1).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> s, t = rng.normal(0, 1, (200, 2)), rng.normal(1, 1, (200, 2))
        >>> w = density_ratio(s, t, np.array([[-2.0, -2.0], [3.0, 3.0]]))
        >>> bool(w[0] < 1 < w[1])
        True
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.concatenate([source_features, target_features]).astype(np.float64)
    d = np.concatenate([np.zeros(len(source_features)), np.ones(len(target_features))])
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, random_state=seed))
    clf.fit(X, d)
    p = np.clip(clf.predict_proba(np.asarray(query, dtype=np.float64))[:, 1], 1e-6, 1 - 1e-6)
    return p / (1 - p) * (len(source_features) / len(target_features))


def deep_embedded_validation(source_features: np.ndarray, target_features: np.ndarray, val_features: np.ndarray,
                             val_losses: np.ndarray, *, seed: int = 0) -> float:
    """DEV (You et al. 2019): :func:`dev_from_weights` with :func:`density_ratio` weights of the
    source-validation images (domain classifier fitted on source-training and target features)."""
    return dev_from_weights(density_ratio(source_features, target_features, val_features, seed=seed), val_losses)


def _cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    z = logits - logits.max(1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
    return -log_p[np.arange(len(labels)), labels]


def _first(data: ImageData | None, n: int, seed: int) -> ImageData | None:
    if data is None or len(data) <= n:
        return data
    return data.subset(torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n].sort().values)


class SelectionCallback(Callback):
    """Each epoch: the label-free criteria and the oracle target accuracy into the epoch's row (so
    ``metrics.csv`` and the checkpointer see them), and the ``oracle`` checkpoint on improvement.

    ``adaptation``: unlabelled target images (entropy, SND, DEV); ``evaluation``: the labelled target
    evaluation images (oracle only); ``source_train`` / ``source_val``: labelled source images (DEV).
    ``criteria``: which label-free criteria to compute (``entropy``, ``snd``, ``dev``).
    """

    def __init__(self, *, adaptation: ImageData | None, evaluation: ImageData, source_train: ImageData | None,
                 source_val: ImageData | None, checkpoints: Any = None, criteria: tuple[str, ...] = ("entropy", "snd"),
                 max_images: int = 1000, batch_size: int = 256, device: Any = "cpu", seed: int = 0) -> None:
        self.adaptation = _first(adaptation, max_images, seed)
        self.evaluation = evaluation
        self.source_train = _first(source_train, max_images, seed + 1)
        self.source_val = _first(source_val, max_images, seed + 2)
        self.checkpoints = checkpoints
        self.criteria = tuple(criteria)
        self.batch_size, self.device, self.seed = batch_size, device, seed
        self.best_oracle = -math.inf
        self.oracle_epoch = -1

    def values(self, model: torch.nn.Module) -> dict[str, float]:
        """The criteria and the oracle of ``model`` now."""
        kw = {"batch_size": self.batch_size, "device": self.device}
        row: dict[str, float] = {}
        if self.adaptation is not None and ({"entropy", "snd"} & set(self.criteria)):
            logits = predict_logits(model, self.adaptation, **kw)
            if "entropy" in self.criteria:
                row["select/target_entropy"] = prediction_entropy(logits)
            if "snd" in self.criteria:
                row["select/snd"] = soft_neighbourhood_density(logits)
        if "dev" in self.criteria and self.adaptation is not None and self.source_train is not None \
                and self.source_val is not None and self.source_val.labels is not None:
            feats = {k: predict_logits(model, d, method="features", **kw)
                     for k, d in (("s", self.source_train), ("t", self.adaptation), ("v", self.source_val))}
            val_logits = predict_logits(model, self.source_val, **kw)
            losses = _cross_entropy(val_logits, self.source_val.labels.numpy())
            row["select/dev"] = deep_embedded_validation(feats["s"], feats["t"], feats["v"], losses, seed=self.seed)
        eval_logits = predict_logits(model, self.evaluation, **kw)
        row[ORACLE_KEY] = float((eval_logits.argmax(1) == self.evaluation.labels.numpy()).mean())
        return row

    def on_epoch_end(self, trainer, epoch: int, row: dict[str, float]) -> None:
        values = self.values(trainer.eval_model)
        row.update(values)
        if values[ORACLE_KEY] > self.best_oracle:
            self.best_oracle, self.oracle_epoch = values[ORACLE_KEY], epoch
            if self.checkpoints is not None:
                save_checkpoint(self.checkpoints, "oracle", trainer.eval_model)

    def state_dict(self) -> dict[str, Any]:
        return {"best_oracle": self.best_oracle, "oracle_epoch": self.oracle_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_oracle, self.oracle_epoch = float(state["best_oracle"]), int(state["oracle_epoch"])


__all__ = ["ORACLE_KEY", "SelectionCallback", "deep_embedded_validation", "density_ratio", "dev_from_weights",
           "prediction_entropy", "soft_neighbourhood_density"]
