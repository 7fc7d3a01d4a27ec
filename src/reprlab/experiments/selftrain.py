"""Self-training rounds of a ``classify`` run: train, then train again from the run just made.

Round 1 is the configured run. Round ``k`` is the same config with ``model.pretrained`` set to
round ``k - 1``'s run directory, so the classifier starts from the encoder that round trained
(a new head, the FlexMatch memory and the learning-rate schedule start afresh) and learns from
the same labelled images: the budget depends on the seed and the data only. With FixMatch or
FlexMatch on the unlabelled images each round pseudo-labels them with a better model than the
last; on Fashion-MNIST with 100 labels a second round added 0.2 to 1.6 points at each of six seeds
(BENCHMARKS.md, "Few labels: a second self-training round").

Round ``k``'s run directory sits beside round 1's, named ``NAME-roundK``. Nothing here trains:
it is :func:`reprlab.experiments.train.train` called once per round, written here because a
round needs the previous round's run directory, which only exists once that round ends.

Example:
    >>> results = self_train("configs/classify_fixmatch.yaml", rounds=2,  # doctest: +SKIP
    ...                      overrides=["model.pretrained=runs/simclr", "name=fm"])
    >>> [r.run_dir.name for r in results]  # doctest: +SKIP
    ['fm', 'fm-round2']
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

from reprlab.base.errors import ConfigError, RunDirError
from reprlab.config import RunConfig
from reprlab.experiments.train import TrainResult, as_config, train

logger = logging.getLogger(__name__)

#: Model options a round drops from the config before it points ``model.pretrained`` at the previous round:
#: they described round 1's encoder, and follow ``model.pretrained`` again once it names a classifier run.
ENCODER_KEYS: tuple[str, ...] = ("encoder", "encoder_options", "pretrained_source")


def check_rounds(rounds: object, cfg: RunConfig) -> int:
    """``rounds`` as an int, refused unless it is at least 1 and, above 1, the run is a ``classify`` run of a
    ``classifier`` (the only model a run directory can be the pretrained source of).

    Example:
        >>> check_rounds(1, RunConfig.from_dict({}))
        1
        >>> check_rounds(0, RunConfig.from_dict({}))
        Traceback (most recent call last):
        ...
        reprlab.base.errors.ConfigError: rounds=0: at least one round trains. Fix: give rounds=1 (one run) or more (self-training rounds after it)
    """
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ConfigError(f"rounds={rounds!r}: at least one round trains",
                          fix="give rounds=1 (one run) or more (self-training rounds after it)")
    if rounds > 1 and (cfg.task != "classify" or cfg.model.get("name") != "classifier"):
        raise ConfigError(f"rounds={rounds} needs a classify run of a classifier, not task={cfg.task!r} with "
                          f"model.name={cfg.model.get('name')!r}",
                          fix="use task: classify and model.name: classifier (configs/classify_fixmatch.yaml), "
                              "or rounds=1")
    return rounds


def round_name(first: str, k: int) -> str:
    """The run name of round ``k`` after round 1's ``first`` (round 1 keeps its own).

    Example:
        >>> round_name("fm", 1), round_name("fm", 3)
        ('fm', 'fm-round3')
    """
    return first if k == 1 else f"{first}-round{k}"


def next_round(cfg: RunConfig, previous: Path, k: int, first: Path) -> RunConfig:
    """Round ``k``'s config: ``cfg`` with ``model.pretrained=previous`` and the name ``FIRST-roundK`` beside
    ``first`` (round 1's run directory).

    Example:
        >>> cfg = RunConfig.from_dict({"task": "classify", "model": {"name": "classifier", "encoder": "simclr"}})
        >>> nxt = next_round(cfg, Path("runs/a"), 2, Path("runs/a"))
        >>> nxt.model["pretrained"], "encoder" in nxt.model, nxt.name, nxt.output_dir
        ('runs/a', False, 'a-round2', 'runs')
    """
    raw = copy.deepcopy(cfg.to_dict())
    model = {k_: v for k_, v in raw["model"].items() if k_ not in ENCODER_KEYS}
    model["pretrained"] = str(previous)
    raw.update(model=model, name=round_name(first.name, k), output_dir=str(first.parent))
    return RunConfig.from_dict(raw)


def self_train(config: RunConfig | dict | str | Path | None, *, rounds: int = 2,
               overrides: list[str] | tuple[str, ...] = ()) -> list[TrainResult]:
    """Train ``config`` (with ``overrides``) and then ``rounds - 1`` more rounds, each from the previous round's
    run directory (see the module docstring); the results, round 1 first. ``rounds`` and the task are checked
    before any run directory exists."""
    cfg = as_config(config, overrides)
    check_rounds(rounds, cfg)
    if rounds == 1:
        return [train(cfg)]
    if cfg.name:  # a later round's folder left from an earlier try would stop the rounds after round 1 has run
        for k in range(2, rounds + 1):
            taken = Path(cfg.output_dir) / round_name(cfg.name, k)
            if taken.exists():
                raise RunDirError(f"run directory {taken} (round {k}) already exists and is never overwritten",
                                  fix="choose another name=..., or move that folder away")
    asked = RunConfig.from_dict(copy.deepcopy(cfg.to_dict()))  # as given: train() writes the resolved model in
    results = [train(cfg)]
    for k in range(2, rounds + 1):
        logger.info("self-training round %d of %d, from %s", k, rounds, results[-1].run_dir)
        results.append(train(next_round(asked, results[-1].run_dir, k, results[0].run_dir)))
    return results
