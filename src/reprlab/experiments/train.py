"""The one run orchestration: train, resume and evaluate any task from a config.

``train`` runs every task through the same path: config (validated whole), task, data,
model, one-batch sanity check, run directory, trainer, final evaluation (the task's),
post-run hooks (registered by the packages that own them: analysis, clustering, ...),
``metrics.json``, the report, ``status.json``. A failure anywhere after the run directory
exists ends the run ``failed`` with the error recorded.

Example:
    >>> import reprlab
    >>> result = reprlab.train({"model": {"name": "conv_ae", "latent_dim": 16},
    ...                         "train": {"epochs": 2}}, overrides=["data.max_train=512"])  # doctest: +SKIP
    >>> result.metrics["test/psnr"]  # doctest: +SKIP
    17.9
    >>> reprlab.evaluate(result.run_dir)["test/ssim"]  # doctest: +SKIP
    0.61
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from reprlab.base.errors import ConfigError, ModelError, ReprlabError, RunDirError, TrainingError
from reprlab.base.io import write_json, write_text
from reprlab.base.plugins import load_plugins
from reprlab.config import RunConfig
from reprlab.data import Augmenter
from reprlab.data.dataset import ImageData
from reprlab.models import load_model
from reprlab.models.io import load_weights
from reprlab.reporting.report import write_report
from reprlab.runs import (PostRunContext, RunDir, RunLock, Splits, build_model, default_run_name, environment_info,
                          load_run_model, load_split, resolve_device, run_post_run_hooks)
from reprlab.tasks import Task, get_task
from reprlab.tasks.health import health_lines
from reprlab.training.callbacks import (Callback, Checkpointer, CPUBudget, EarlyStopping, MetricsCSV, ProgressBar,
                                        TensorBoardLogger)
from reprlab.training.checkpoint import load_state, resolve_checkpoint
from reprlab.training.distributed import DistInfo, barrier, broadcast_object, init_distributed
from reprlab.training.engine import Trainer, training_autocast
from reprlab.training.optim import check_group_options

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    run_dir: Path
    metrics: dict[str, float]
    model: torch.nn.Module
    history: list[dict[str, float]]
    summary: str = ""


# -- building blocks ----------------------------------------------------------------------
def as_config(config: RunConfig | dict | str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Accept a :class:`RunConfig`, a dict, or a YAML path, and apply overrides."""
    load_plugins()  # config sections of the capability packages
    if isinstance(config, RunConfig):
        return config.with_overrides(list(overrides)) if overrides else config
    if isinstance(config, (str, Path)):
        return RunConfig.from_yaml(config, overrides)
    cfg = RunConfig.from_dict(config or {})
    return cfg.with_overrides(list(overrides)) if overrides else cfg


def monitor_of(cfg: RunConfig, task: Task) -> tuple[str, str]:
    """The value (and ``min``/``max``) that picks the best checkpoint: ``train.early_stopping.monitor`` if set,
    else the task's (``task.monitor_for(cfg)``); ``val/`` becomes ``train/`` when there is no validation split."""
    task_monitor, task_mode = task.monitor_for(cfg)
    monitor = cfg.train.early_stopping.monitor or task_monitor
    if cfg.data.val_fraction <= 0:
        monitor = monitor.replace("val/", "train/")
    mode = task_mode if monitor.split("/", 1)[-1] == task_monitor.split("/", 1)[-1] else "min"
    return monitor, mode


def _make_trainer(cfg: RunConfig, task: Task, run: RunDir | None, device: torch.device, dist: DistInfo,
                  extra_callbacks: Sequence[Callback] = (), task_callbacks: Sequence[Callback] = ()) -> Trainer:
    t = cfg.train
    monitor, mode = monitor_of(cfg, task)
    callbacks: list[Callback] = list(task_callbacks)  # first: they may add the monitored value to the row
    callbacks.append(ProgressBar({"auto": None, "on": True, "off": False}[t.progress]))
    if run is not None:
        callbacks += [MetricsCSV(run.path / "metrics.csv"),
                      Checkpointer(run.checkpoints, every=t.checkpoint_every, monitor=monitor, mode=mode)]
        if t.tensorboard:
            callbacks.append(TensorBoardLogger(run.path / "tensorboard"))
    if t.early_stopping.patience is not None:
        callbacks.append(EarlyStopping(monitor=monitor, patience=t.early_stopping.patience,
                                       min_delta=t.early_stopping.min_delta, mode=mode))
    if t.max_cpu_minutes is not None:
        callbacks.append(CPUBudget(minutes=t.max_cpu_minutes))
    callbacks += list(extra_callbacks)
    a = cfg.data.augment
    augment = Augmenter(flip=a.flip, rotation=a.rotation, crop_padding=a.crop_padding) if (a.flip or a.rotation or a.crop_padding) else None
    return Trainer(epochs=t.epochs, batch_size=t.batch_size, optimizer=t.optimizer, lr=t.lr, momentum=t.momentum,
                   betas=tuple(t.betas), weight_decay=t.weight_decay, l1_penalty=t.l1_penalty, scheduler=t.scheduler,
                   step_size=t.step_size, gamma=t.gamma, plateau_patience=t.plateau_patience, grad_clip=t.grad_clip,
                   group_options=t.groups, monitor=monitor, augment=augment, device=device, seed=cfg.seed,
                   callbacks=callbacks, dist=dist, paired=t.paired_epoch, channels_last=t.channels_last,
                   precision=t.precision, target_batch_size=t.target_batch_size, ema_decay=t.ema_decay)


def _prepare(cfg: RunConfig, splits: Splits | None = None) -> tuple[Task, torch.device, Splits, torch.nn.Module]:
    """Task, threads, device, data and model: everything checked before a run directory exists."""
    task = get_task(cfg.task)
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    device = resolve_device(cfg.train.device, DistInfo.from_env())
    training_autocast(cfg.train.precision, device)  # bf16 on a device without it: refused before any run directory
    splits = task.prepare_data(cfg) if splits is None else splits
    model = build_model(cfg, splits.train.shape)
    task.check(cfg, model, splits)
    groups = model.optimizer_groups() if hasattr(model, "optimizer_groups") else {"main": None}
    check_group_options(groups, cfg.train.groups)  # train.groups.NAME must name a group of this model
    return task, device, splits, model


# -- public API ---------------------------------------------------------------------------
def train(config: RunConfig | dict | str | Path | None = None, *, overrides: list[str] | tuple[str, ...] = (),
          run_dir: str | Path | None = None, callbacks: Sequence[Callback] = (),
          splits: Splits | None = None) -> TrainResult:
    """Train the configured model on the configured task and write a complete run directory.

    ``config`` is a :class:`RunConfig`, a dict, or a YAML path; ``overrides`` are
    ``key=value`` strings; ``callbacks`` are extra :class:`~reprlab.training.callbacks.Callback`
    objects (a search's pruner, say); ``splits`` replaces the configured train / val / test
    split (cross-validation hands each fold's). Everything that can be checked (config, task, data,
    model/input fit) is checked before the run directory is created.
    """
    cfg = as_config(config, overrides)
    task, device, splits, model = _prepare(cfg, splits)
    for section in list(cfg.sections.values()):  # e.g. a clustering that will not use the trained model
        notice = section.start_notice(cfg) if hasattr(section, "start_notice") else None
        if notice:
            logger.info("%s", notice)
    cfg.model = {"name": cfg.model["name"], **model.config.to_dict()}  # resolved: every default written out
    if cfg.train.sanity_check:
        _sanity_check(model, splits.train, cfg)
    dist = init_distributed(device)
    run = lock = None
    if dist.is_main:
        if run_dir is not None:
            run = RunDir.create(Path(run_dir).parent, Path(run_dir).name, kind="train")
        elif cfg.name:
            run = RunDir.create(cfg.output_dir, cfg.name, kind="train")
        else:
            run = RunDir.create(cfg.output_dir, default_run_name(cfg.model["name"], cfg.data.name),
                                exist_ok_suffix=True, kind="train")
        lock = RunLock(run.path).acquire()  # held until this process ends the run (or dies)
        run.set_status("running", pid=os.getpid(), task=task.name)
        write_text(run.path / "config.yaml", cfg.to_yaml())
        write_json(run.path / "env.json", environment_info(seed=cfg.seed, device=str(device), world_size=dist.world_size,
                                                           num_parameters=model.num_parameters()))
    run_path = broadcast_object(str(run.path) if run else None, dist)
    with lock or contextlib.nullcontext():
        return _train_and_finish(cfg, task, model, splits, RunDir(run_path), device, dist, resume=None,
                                 callbacks=callbacks)


def resume(run_dir: str | Path, *, callbacks: Sequence[Callback] = ()) -> TrainResult:
    """Continue an interrupted run from its last checkpoint with the same config and seed."""
    run = RunDir.open(run_dir, kinds=("train",), command="train --resume")
    lock = RunLock(run.path).acquire() if DistInfo.from_env().is_main else contextlib.nullcontext()
    with lock:  # another process still training this run is refused, naming its PID
        return _resume_locked(run, callbacks)


def _resume_locked(run: RunDir, callbacks: Sequence[Callback]) -> TrainResult:
    if run.status().get("state") == "finished":
        raise RunDirError(f"run {run.path} has already finished", fix="start a new run, or raise train.epochs in a new run")
    cfg = as_config(run.path / "config.yaml")
    task, device, splits, model = _prepare(cfg)
    state = load_state(run.checkpoints, "last")
    try:
        load_weights(model, resolve_checkpoint(run.checkpoints, "last") / "model")
    except ModelError as exc:  # its advice (another checkpoint) does not resume: say what does
        best = resolve_checkpoint(run.checkpoints, "best") is not None
        raise TrainingError(f"cannot resume {run.path}: {exc.problem}",
                            fix=f"start the run again (`reprlab train {run.path / 'config.yaml'} --name NEW_NAME`)"
                                + (f", or use its best model as it is (`reprlab evaluate {run.path}`)" if best else "")) from None
    dist = init_distributed(device)
    if dist.is_main:
        run.set_status("running", pid=os.getpid(), task=task.name, resumed_from_epoch=int(state["epoch"]))
    logger.info("resuming %s after epoch %d", run.path, int(state["epoch"]))
    return _train_and_finish(cfg, task, model, splits, run, device, dist, resume=state, callbacks=callbacks)


def _train_and_finish(cfg: RunConfig, task: Task, model, splits: Splits, run: RunDir, device: torch.device,
                      dist: DistInfo, *, resume: dict | None, callbacks: Sequence[Callback] = ()) -> TrainResult:
    started = time.perf_counter()
    metrics: dict[str, float] = {}
    trainer = None
    try:
        trainer = _make_trainer(cfg, task, run if dist.is_main else None, device, dist, callbacks,
                                task.callbacks(cfg, splits, run if dist.is_main else None, device))
        trainer.fit(model, splits.train, splits.val, resume=resume, target=splits.target)
        train_seconds = time.perf_counter() - started
        if dist.is_main:
            metrics = _finish(cfg, task, model, splits, run, device, trainer, train_seconds)
    except BaseException as exc:  # training, the final evaluation or a post-run step: the run failed
        if dist.is_main:
            message = str(exc) if isinstance(exc, ReprlabError) else f"{type(exc).__name__}: {exc}"
            run.set_status("failed", error=message or type(exc).__name__, task=task.name,
                           epochs=len(trainer.history) if trainer else 0, best_checkpoint_kept=resolve_checkpoint(run.checkpoints, "best") is not None)
        raise
    barrier(dist)
    summary = "\n".join(line for line in (task.summary(metrics), health_lines(metrics)) if line)
    return TrainResult(run.path, metrics, model, trainer.history, summary)


def _best_checkpoint_info(trainer: Trainer) -> dict[str, Any]:
    for cb in trainer.callbacks:
        if isinstance(cb, Checkpointer) and cb.best_epoch >= 0:
            return {"best/monitor": cb.monitor, "best/value": cb.best, "best/epoch": cb.best_epoch + 1}
    return {}


def _finish(cfg: RunConfig, task: Task, model, splits: Splits, run: RunDir, device: torch.device, trainer: Trainer,
            train_seconds: float) -> dict[str, float]:
    best = resolve_checkpoint(run.checkpoints, "best")
    if best is not None:
        load_weights(model, best / "model")
    model = model.to(device)
    history = trainer.history
    ctx = PostRunContext(cfg=cfg, run=run, model=model, splits=splits, device=device, task=task, history=history)
    metrics = task.evaluate(ctx, history)
    if history:
        metrics["epochs"] = len(history)
        metrics["train_seconds"] = round(sum(r.get("time_s", 0.0) for r in history), 3)
        metrics.update({k: v for k, v in history[-1].items() if k.startswith(("train/", "val/"))})
    metrics.update(_best_checkpoint_info(trainer))
    metrics["train_seconds_this_session"] = round(train_seconds, 3)
    ctx.metrics = dict(metrics)
    metrics.update(run_post_run_hooks(ctx))  # before metrics.json and the report
    write_json(run.path / "metrics.json", metrics)
    health = {"verdict": metrics["health/verdict"], "findings": metrics.get("health/findings", [])} \
        if "health/verdict" in metrics else {}
    run.set_status("finished", epochs=len(history), task=task.name, **({"health": health} if health else {}),
                   **task.status(metrics, run))
    if cfg.eval.report:
        _write_report(run)
    return metrics


def _write_report(run: RunDir) -> None:
    try:
        write_report(run.path)
    except Exception as exc:  # the run itself is complete: a failed report must not fail it
        logger.warning("report.html could not be written (%s: %s); run `reprlab report %s`",
                       type(exc).__name__, exc, run.path)


def _sanity_check(model, train: ImageData, cfg: RunConfig) -> None:
    x = train.float01(slice(0, min(len(train), cfg.train.batch_size, 64)))
    if cfg.data.scale == "-1_1":
        x = x * 2 - 1
    probe = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        probe.train()
        probe.sanity_check(x)


def evaluate(run_dir: str | Path, *, data: str | None = None, data_dir: str | None = None, path: str | None = None,
             tag: str = "best", max_images: int | None = None, device: str = "auto") -> dict[str, float]:
    """Reload a run's model and compute its task's test metrics (reconstruction: MSE, PSNR, SSIM, ...).

    By default the run's own test data; ``data`` names another dataset (e.g. ``mnist``),
    ``path`` points at arrays or an image folder for ``data="arrays"``/``"folder"``.
    """
    run = RunDir.open(run_dir, kinds=("train",), command="evaluate")
    cfg = as_config(run.path / "config.yaml")
    task = get_task(cfg.task)
    if data_dir is not None:
        cfg.data.data_dir = data_dir
    if data is None and path is None:
        test = task.prepare_data(cfg).test
    else:
        test = load_split(cfg, "test", name=data or cfg.data.name, path=path)
    model = load_model(run.model_path(tag))
    if test.shape != tuple(model.config.input_shape):
        raise ConfigError(f"the evaluation images have shape {test.shape} but the model expects {tuple(model.config.input_shape)}",
                          fix="choose data of the same size and channels (the run's data.resize/data.channels apply)")
    dev = resolve_device(device)
    return task.score(cfg, model.to(dev), test, dev, max_images=max_images or cfg.eval.max_images)


__all__ = ["TrainResult", "as_config", "evaluate", "load_run_model", "monitor_of", "resume", "train"]
