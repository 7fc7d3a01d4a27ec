"""Frozen-code baselines: logistic regression and k-nearest neighbours on an encoder's codes (scikit-learn).

Both see exactly the labelled images of the ``classify`` task at the same seed and budget
(:func:`~reprlab.capabilities.classification.task.budget_splits`), encoded by the frozen
encoder (:func:`reprlab.features.embeddings.encode_dataset`), standardised on the labelled
codes. Logistic regression: multinomial, L2 (``C``), lbfgs. k-NN: scikit-learn's
``KNeighborsClassifier`` with distance weights and ``k = min(n_neighbors, the smallest
class count of the labelled set)``, so one label per class means 1-NN.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> Xtr = np.concatenate([rng.normal(c, 0.3, (5, 4)) for c in (0, 3)]); ytr = np.repeat([0, 1], 5)
    >>> Xte = np.concatenate([rng.normal(c, 0.3, (20, 4)) for c in (0, 3)]); yte = np.repeat([0, 1], 20)
    >>> [round(r["acc"], 2) for r in code_baselines(Xtr, ytr, Xte, yte).values()]
    [1.0, 1.0]
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from reprlab.base.errors import ConfigError
from reprlab.features.embeddings import encode_dataset

BASELINES: tuple[str, ...] = ("logreg", "knn")


def _check(X: np.ndarray, y: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y)
    if X.ndim != 2 or len(X) != len(y) or len(X) == 0:
        raise ConfigError(f"{what}: codes of shape {X.shape} do not fit {len(y)} labels", fix="pass (N, d) codes and N labels")
    if not np.isfinite(X).all():
        raise ConfigError(f"{what}: the codes contain NaN or infinite values", fix="check the encoder (it may have diverged)")
    return X, y


def code_baselines(train_codes: Any, train_labels: Any, test_codes: Any, test_labels: Any, *,
                   which: tuple[str, ...] = BASELINES, C: float = 1.0, n_neighbors: int = 10,
                   seed: int = 0) -> dict[str, dict[str, float]]:
    """Fit each baseline of ``which`` on the labelled codes; ``{name: {"acc", "seconds"}}`` on the test codes."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    Xtr, ytr = _check(train_codes, train_labels, "train")
    Xte, yte = _check(test_codes, test_labels, "test")
    unknown = sorted(set(which) - set(BASELINES))
    if unknown:
        raise ConfigError(f"unknown baseline(s) {', '.join(unknown)}", fix=f"choose from {', '.join(BASELINES)}")
    smallest = int(min(c for c in np.bincount(ytr.astype(np.int64)) if c > 0))
    estimators = {
        "logreg": lambda: LogisticRegression(C=C, max_iter=2000, random_state=seed),
        "knn": lambda: KNeighborsClassifier(n_neighbors=max(1, min(int(n_neighbors), smallest)), weights="distance"),
    }
    out: dict[str, dict[str, float]] = {}
    for name in which:
        started = time.process_time()
        clf = make_pipeline(StandardScaler(), estimators[name]()).fit(Xtr, ytr)
        acc = float((clf.predict(Xte) == yte).mean())
        out[name] = {"acc": acc, "seconds": time.process_time() - started}
    return out


def frozen_code_baselines(encoder: Any, train: Any, test: Any, *, which: tuple[str, ...] = BASELINES,
                          batch_size: int = 256, device: Any = "cpu", **options: Any) -> dict[str, dict[str, float]]:
    """Encode the labelled ``train`` and the ``test`` images with ``encoder`` (frozen), then :func:`code_baselines`.

    ``seconds`` includes the encoding of both splits (process CPU time).
    """
    if train.labels is None or test.labels is None:
        raise ConfigError("the baselines need labelled images", fix="use a labelled dataset")
    started = time.process_time()
    Xtr = encode_dataset(encoder, train, batch_size=batch_size, device=device)
    Xte = encode_dataset(encoder, test, batch_size=batch_size, device=device)
    encode_s = time.process_time() - started
    res = code_baselines(Xtr, train.labels.numpy(), Xte, test.labels.numpy(), which=which, **options)
    for r in res.values():
        r["seconds"] += encode_s
    return res
