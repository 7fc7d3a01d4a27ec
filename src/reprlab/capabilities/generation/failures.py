"""Naming the classic GAN failures from the per-epoch history (``metrics.csv`` rows).

* ``discriminator_wins``: the discriminator's training loss stays near zero
  (``train/d_loss < d_loss_floor``) while ``D(G(z))`` stays near zero
  (``train/d_fake < d_fake_floor``) for ``patience`` consecutive epochs: the generator gets
  no useful gradient any more;
* ``mode_collapse``: the diversity of the samples on the feature network
  (``*/gen_diversity``: mean pairwise feature distance of samples over that of real images)
  stays below ``diversity_floor`` for ``patience`` consecutive epochs (after the first);
* ``non_finite``: a loss term of an epoch is NaN or infinite (the
  model itself stops a run whose loss becomes non-finite, naming it as a GAN failure).

Each failure carries the first epoch of the stretch (1-based) and advice. They go to
``status.json`` (``failures``), the run's summary line, ``metrics.json``
(``gan/<kind>_epoch``) and the report (``generation/index.json``).

Example:
    >>> rows = [{"epoch": e, "train/d_loss": 0.01, "train/d_fake": 0.01} for e in range(1, 5)]
    >>> [(f.kind, f.epoch) for f in detect_failures(rows, patience=3)]
    [('discriminator_wins', 1)]
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

ADVICE: dict[str, str] = {
    "discriminator_wins": ("lower the discriminator's learning rate (train.groups.discriminator.lr) or raise the "
                           "generator's, add one-sided label smoothing (model.label_smoothing=0.1), instance noise "
                           "(model.instance_noise=0.1) or label flips (model.label_flip=0.05), or use "
                           "model.loss=hinge (spectral normalisation)"),
    "mode_collapse": ("use model.loss=hinge with spectral normalisation, add instance noise or label smoothing, "
                      "lower the learning rates, or give the generator more steps (model.g_steps=2)"),
    "non_finite": ("lower both learning rates (train.groups.*.lr), set train.grad_clip, or use model.loss=hinge "
                   "with spectral normalisation"),
}

TITLES: dict[str, str] = {"discriminator_wins": "the discriminator wins", "mode_collapse": "mode collapse",
                          "non_finite": "non-finite losses"}


@dataclass
class Failure:
    """One detected failure: ``kind``, first ``epoch`` (1-based), what was seen, and advice."""

    kind: str
    epoch: int
    message: str
    advice: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        return f"GAN FAILURE: {TITLES[self.kind]} from epoch {self.epoch} ({self.message}). Advice: {self.advice}"


def _value(row: Mapping[str, Any], *keys: str) -> float | None:
    for k in keys:
        if k in row and row[k] not in (None, ""):
            try:
                return float(row[k])
            except (TypeError, ValueError):
                return None
    return None


def _first_stretch(flags: Sequence[bool], patience: int) -> int | None:
    run = 0
    for i, flag in enumerate(flags):
        run = run + 1 if flag else 0
        if run >= patience:
            return i - patience + 1
    return None


def detect_failures(history: Sequence[Mapping[str, Any]], *, patience: int = 3, d_loss_floor: float = 0.05,
                    d_fake_floor: float = 0.05, diversity_floor: float = 0.25) -> list[Failure]:
    """The failures visible in ``history`` (one dict per epoch, the columns of ``metrics.csv``)."""
    rows = list(history)
    out: list[Failure] = []
    epochs = [int(_value(r, "epoch") or i + 1) for i, r in enumerate(rows)]

    def non_finite(row: Mapping[str, Any]) -> list[str]:
        # the loss terms only: a generation metric is NaN by design in the epochs it is not computed
        return sorted(k for k, v in row.items() if k.startswith(("train/", "val/")) and "/gen_" not in k
                      and isinstance(v, (int, float)) and not math.isfinite(float(v)))

    bad = [i for i, r in enumerate(rows) if non_finite(r)]
    if bad:
        which = non_finite(rows[bad[0]])
        out.append(Failure("non_finite", epochs[bad[0]], f"{', '.join(which[:4])} non-finite", ADVICE["non_finite"]))

    wins = []
    for r in rows:
        d_loss, d_fake = _value(r, "train/d_loss"), _value(r, "train/d_fake")
        wins.append(d_loss is not None and d_fake is not None and d_loss < d_loss_floor and d_fake < d_fake_floor)
    start = _first_stretch(wins, patience)
    if start is not None:
        r = rows[start]
        out.append(Failure("discriminator_wins", epochs[start],
                           f"d_loss={float(r['train/d_loss']):.3g} < {d_loss_floor:g} and D(G(z))="
                           f"{float(r['train/d_fake']):.3g} < {d_fake_floor:g} for {patience}+ epochs",
                           ADVICE["discriminator_wins"]))

    # only the scored epochs (generation.every > 1 leaves the others NaN); the first epoch is never judged
    scored = [(i, d) for i, r in enumerate(rows)
              if (d := _value(r, "val/gen_diversity", "train/gen_diversity")) is not None and math.isfinite(d)]
    start = _first_stretch([i > 0 and d < diversity_floor for i, d in scored], patience)
    if start is not None:
        i, d = scored[start]
        out.append(Failure("mode_collapse", epochs[i],
                           f"sample diversity {d:.3g} < {diversity_floor:g} of the real images' for "
                           f"{patience}+ scored epochs", ADVICE["mode_collapse"]))
    return sorted(out, key=lambda f: f.epoch)
