"""The Python API: train, resume and evaluate runs from a config.

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

import copy
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from reprlab.config import RunConfig
from reprlab.data.dataset import ImageData
from reprlab.errors import ConfigError, ReprlabError, RunDirError, TrainingError
from reprlab.models import create_model, load_model
from reprlab.models.io import load_weights
from reprlab.runs import RunDir, default_run_name, environment_info
from reprlab.training.callbacks import Checkpointer, EarlyStopping, MetricsCSV, ProgressBar, TensorBoardLogger
from reprlab.training.checkpoint import load_state, resolve_checkpoint
from reprlab.training.distributed import DistInfo, barrier, broadcast_object, init_distributed
from reprlab.training.engine import Trainer
from reprlab.utils import write_json, write_text

logger = logging.getLogger(__name__)

CANONICAL_WITH_TEST_SPLIT = ("fashion-mnist", "mnist", "usps", "fashion-mnist-sample")


@dataclass
class Splits:
    """Train, validation (may be None) and test images of a run."""

    train: ImageData
    val: ImageData | None
    test: ImageData


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    run_dir: Path
    metrics: dict[str, float]
    model: torch.nn.Module
    history: list[dict[str, float]]


# -- building blocks ----------------------------------------------------------------------
def as_config(config: RunConfig | dict | str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Accept a :class:`RunConfig`, a dict, or a YAML path, and apply overrides."""
    if isinstance(config, RunConfig):
        return config.with_overrides(list(overrides)) if overrides else config
    if isinstance(config, (str, Path)):
        return RunConfig.from_yaml(config, overrides)
    cfg = RunConfig.from_dict(config or {})
    return cfg.with_overrides(list(overrides)) if overrides else cfg


def _seeded_perm(n: int, seed: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))


def _load(cfg: RunConfig, split: str, *, name: str | None = None, path: str | None = None,
          labels_path: str | None = None) -> ImageData:
    from reprlab.data import load_dataset

    d = cfg.data
    return load_dataset(name or d.name, split, data_dir=d.data_dir, path=path, labels_path=labels_path,
                        resize=tuple(d.resize) if d.resize else None, channels=d.channels, download=d.download)


def prepare_data(cfg: RunConfig) -> Splits:
    """Load the data named by ``cfg.data`` and split it (seeded) into train/val/test."""
    d = cfg.data
    if d.name in CANONICAL_WITH_TEST_SPLIT:
        train_all = _load(cfg, "train")
        test = _load(cfg, "test")
    else:
        if not d.path:
            raise ConfigError(f"data.name={d.name} needs data.path", fix=f"set data.path=/path/to/your/{'images' if d.name == 'folder' else 'arrays.npz'}")
        train_all = _load(cfg, "train", path=d.path, labels_path=d.labels_path)
        if d.test_path:
            test = _load(cfg, "test", path=d.test_path, labels_path=d.test_labels_path)
        else:
            perm = _seeded_perm(len(train_all), cfg.seed + 1)
            n_test = max(1, int(round(len(train_all) * d.test_fraction)))
            if n_test >= len(train_all):
                raise ConfigError(f"{len(train_all)} images are too few to hold out a test split",
                                  fix="provide more images or data.test_path")
            test, train_all = train_all.subset(perm[:n_test]), train_all.subset(perm[n_test:])
    if test.shape != train_all.shape:
        raise ConfigError(f"train images have shape {train_all.shape} but test images {test.shape}",
                          fix="set data.resize=[H,W] and data.channels so both splits match")
    if d.max_train is not None and d.max_train < len(train_all):
        train_all = train_all.subset(_seeded_perm(len(train_all), cfg.seed + 2)[: d.max_train])
    if d.max_test is not None and d.max_test < len(test):
        test = test.subset(_seeded_perm(len(test), cfg.seed + 3)[: d.max_test])
    val = None
    n_val = int(round(len(train_all) * d.val_fraction))
    if n_val > 0:
        if n_val >= len(train_all):
            raise ConfigError(f"data.val_fraction={d.val_fraction} leaves no training images out of {len(train_all)}",
                              fix="lower data.val_fraction or use more data")
        perm = _seeded_perm(len(train_all), cfg.seed + 4)
        val, train_all = train_all.subset(perm[:n_val]), train_all.subset(perm[n_val:])
    return Splits(train_all, val, test)


def build_model(cfg: RunConfig, input_shape: tuple[int, int, int]):
    """Create the configured model for ``input_shape`` and check the input fits it."""
    kwargs = cfg.model_kwargs()
    if "output_range" in kwargs and kwargs["output_range"] != cfg.data.scale:
        raise ConfigError(f"model.output_range={kwargs['output_range']} does not match data.scale={cfg.data.scale}",
                          fix="set both to the same value, or drop model.output_range (it follows data.scale)")
    if "input_shape" in kwargs and tuple(kwargs["input_shape"]) != tuple(input_shape):
        raise ConfigError(f"model.input_shape={kwargs['input_shape']} does not match the data's {tuple(input_shape)}",
                          fix="drop model.input_shape (it is set from the data) or set data.resize/data.channels")
    kwargs["input_shape"] = tuple(input_shape)
    kwargs["output_range"] = cfg.data.scale
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)  # the initial weights follow the run's seed
        model = create_model(cfg.model["name"], **kwargs)
    model.check_input()
    return model


def resolve_device(name: str, dist: DistInfo | None = None) -> torch.device:
    """``auto`` picks CUDA when available (the local rank's GPU under torchrun), else CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", (dist.local_rank if dist else 0))
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name} but CUDA is not available", fix="set train.device=auto or cpu")
    return device


def _make_trainer(cfg: RunConfig, run: RunDir | None, device: torch.device, dist: DistInfo) -> Trainer:
    from reprlab.data import Augmenter

    t = cfg.train
    monitor = t.early_stopping.monitor if cfg.data.val_fraction > 0 else t.early_stopping.monitor.replace("val/", "train/")
    callbacks = [ProgressBar({"auto": None, "on": True, "off": False}[t.progress])]
    if run is not None:
        callbacks += [MetricsCSV(run.path / "metrics.csv"), Checkpointer(run.checkpoints, every=t.checkpoint_every, monitor=monitor)]
        if t.tensorboard:
            callbacks.append(TensorBoardLogger(run.path / "tensorboard"))
    if t.early_stopping.patience is not None:
        callbacks.append(EarlyStopping(monitor=monitor, patience=t.early_stopping.patience, min_delta=t.early_stopping.min_delta))
    a = cfg.data.augment
    augment = Augmenter(flip=a.flip, rotation=a.rotation, crop_padding=a.crop_padding) if (a.flip or a.rotation or a.crop_padding) else None
    return Trainer(epochs=t.epochs, batch_size=t.batch_size, optimizer=t.optimizer, lr=t.lr, momentum=t.momentum,
                   weight_decay=t.weight_decay, l1_penalty=t.l1_penalty, scheduler=t.scheduler, step_size=t.step_size,
                   gamma=t.gamma, plateau_patience=t.plateau_patience, grad_clip=t.grad_clip, monitor=monitor,
                   augment=augment, device=device, seed=cfg.seed, callbacks=callbacks, dist=dist)


def _prepare(cfg: RunConfig) -> tuple[torch.device, Splits, torch.nn.Module]:
    """Threads, device, data and model: everything checked before a run directory exists."""
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    device = resolve_device(cfg.train.device, DistInfo.from_env())
    splits = prepare_data(cfg)
    return device, splits, build_model(cfg, splits.train.shape)


# -- public API ---------------------------------------------------------------------------
def train(config: RunConfig | dict | str | Path | None = None, *, overrides: list[str] | tuple[str, ...] = (),
          run_dir: str | Path | None = None) -> TrainResult:
    """Train the configured model and write a complete run directory.

    ``config`` is a :class:`RunConfig`, a dict, or a YAML path; ``overrides`` are
    ``key=value`` strings. Everything that can be checked (config, data, model/input fit)
    is checked before the run directory is created. Returns a :class:`TrainResult`.
    """
    cfg = as_config(config, overrides)
    device, splits, model = _prepare(cfg)
    cfg.model = {"name": cfg.model["name"], **model.config.to_dict()}  # resolved: every default written out
    if cfg.train.sanity_check:
        _sanity_check(model, splits.train, cfg)
    dist = init_distributed(device)
    run = None
    if dist.is_main:
        if run_dir is not None:
            run = RunDir.create(Path(run_dir).parent, Path(run_dir).name)
        elif cfg.name:
            run = RunDir.create(cfg.output_dir, cfg.name)
        else:
            run = RunDir.create(cfg.output_dir, default_run_name(cfg.model["name"], cfg.data.name), exist_ok_suffix=True)
        run.set_status("running", pid=_pid())
        write_text(run.path / "config.yaml", cfg.to_yaml())
        write_json(run.path / "env.json", environment_info(seed=cfg.seed, device=str(device), world_size=dist.world_size,
                                                           num_parameters=model.num_parameters()))
    run_path = broadcast_object(str(run.path) if run else None, dist)
    return _train_and_finish(cfg, model, splits, RunDir(run_path), device, dist, resume=None)


def resume(run_dir: str | Path) -> TrainResult:
    """Continue an interrupted run from its last checkpoint with the same config and seed."""
    run = RunDir.open(run_dir)
    if run.status().get("state") == "finished":
        raise RunDirError(f"run {run.path} has already finished", fix="start a new run, or raise train.epochs in a new run")
    cfg = RunConfig.from_yaml(run.path / "config.yaml")
    device, splits, model = _prepare(cfg)
    state = load_state(run.checkpoints, "last")
    load_weights(model, resolve_checkpoint(run.checkpoints, "last") / "model")
    dist = init_distributed(device)
    if dist.is_main:
        run.set_status("running", pid=_pid(), resumed_from_epoch=int(state["epoch"]))
    logger.info("resuming %s after epoch %d", run.path, int(state["epoch"]))
    return _train_and_finish(cfg, model, splits, run, device, dist, resume=state)


def _train_and_finish(cfg: RunConfig, model, splits: Splits, run: RunDir, device: torch.device, dist: DistInfo,
                      *, resume: dict | None) -> TrainResult:
    trainer = _make_trainer(cfg, run if dist.is_main else None, device, dist)
    started = time.perf_counter()
    try:
        trainer.fit(model, splits.train, splits.val, resume=resume)
    except (ReprlabError, KeyboardInterrupt) as exc:
        if dist.is_main:
            run.set_status("failed", error=str(exc) or type(exc).__name__)
        raise
    except Exception as exc:
        if dist.is_main:
            run.set_status("failed", error=f"{type(exc).__name__}: {exc}")
        raise
    train_seconds = time.perf_counter() - started
    metrics: dict[str, float] = {}
    if dist.is_main:
        best = resolve_checkpoint(run.checkpoints, "best")
        if best is not None:
            load_weights(model, best / "model")
        model = model.to(device)
        metrics = _final_evaluation(cfg, model, splits.test, run, device, trainer.history)
        metrics["train_seconds_this_session"] = round(train_seconds, 3)
        if cfg.cluster.enabled or cfg.cluster.checkpoint_curve:  # before metrics.json and the report (issue 4)
            metrics.update(_run_clustering(cfg, run, model, splits, device))
        write_json(run.path / "metrics.json", metrics)
        if cfg.eval.report:
            _write_report(run, model, splits.test)
        run.set_status("finished", epochs=len(trainer.history))
    barrier(dist)
    return TrainResult(run.path, metrics, model, trainer.history)


def _final_evaluation(cfg: RunConfig, model, test: ImageData, run: RunDir, device: torch.device,
                      history: list[dict[str, float]]) -> dict[str, float]:
    from reprlab.evaluation import evaluate_reconstruction

    report = evaluate_reconstruction(model, test, batch_size=cfg.eval.batch_size, device=device,
                                     max_images=cfg.eval.max_images)
    report.to_csv(run.path / "per_image_scores.csv")
    metrics = report.prefixed("test")
    metrics["test/num_images"] = int(len(report.indices))
    if history:
        metrics["epochs"] = len(history)
        metrics["train_seconds"] = round(sum(r.get("time_s", 0.0) for r in history), 3)
        last = history[-1]
        metrics.update({k: v for k, v in last.items() if k.startswith(("train/", "val/"))})
    if cfg.eval.figures:
        from reprlab.reporting.figures import plot_loss_curves, save_reconstruction_figures

        plot_loss_curves(history, run.figures / "loss_curves.png")
        chosen = [i for i in cfg.eval.show if 0 <= i < len(test)]
        save_reconstruction_figures(model, test, report, run.figures, chosen=chosen, k=cfg.eval.k)
    return metrics


def _run_clustering(cfg: RunConfig, run: RunDir, model, splits: Splits, device: torch.device) -> dict[str, float]:
    """The ``cluster`` section: cluster the embeddings (and the checkpoint curve); ``cluster/*`` metrics."""
    from reprlab.clustering.pipeline import checkpoint_curve, cluster_run, flat_metrics

    c = cfg.cluster
    options = dict(c.estimator_options(), random_state=c.random_state, device=device, splits=splits)
    out: dict[str, float] = {}
    try:
        if c.enabled:
            out = flat_metrics(cluster_run(run.path, split=c.split, max_points=c.max_points, model=model,
                                           update_run=False, features=c.features, **options))
        if c.checkpoint_curve:
            options = {k: v for k, v in options.items() if k not in ("criterion", "k_range")}
            checkpoint_curve(run.path, max_eval_points=c.max_points, **options)
    except ReprlabError as exc:  # the run itself is complete: a failed clustering must not fail it
        logger.warning("clustering failed (%s); run `reprlab cluster %s` to retry", exc, run.path)
    return out


def _write_report(run: RunDir, model, test: ImageData) -> None:
    from reprlab.reporting.report import write_report

    try:
        write_report(run.path, model=model, data=test)
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


def _pid() -> int:
    import os

    return os.getpid()


def load_run_model(run_dir: str | Path, tag: str = "best"):
    """The model of a finished (or interrupted) run, from checkpoint ``tag``."""
    return load_model(RunDir.open(run_dir).model_path(tag))


def evaluate(run_dir: str | Path, *, data: str | None = None, data_dir: str | None = None, path: str | None = None,
             tag: str = "best", max_images: int | None = None, device: str = "auto") -> dict[str, float]:
    """Reload a run's model and compute reconstruction metrics on a test split.

    By default the run's own test data; ``data`` names another dataset (e.g. ``mnist``),
    ``path`` points at arrays or an image folder for ``data="arrays"``/``"folder"``.
    """
    from reprlab.evaluation import evaluate_reconstruction

    run = RunDir.open(run_dir)
    cfg = RunConfig.from_yaml(run.path / "config.yaml")
    if data_dir is not None:
        cfg.data.data_dir = data_dir
    if data is None and path is None:
        test = prepare_data(cfg).test
    else:
        name = data or cfg.data.name
        test = _load(cfg, "test", name=name, path=path)
    model = load_model(run.model_path(tag))
    if test.shape != tuple(model.config.input_shape):
        raise ConfigError(f"the evaluation images have shape {test.shape} but the model expects {tuple(model.config.input_shape)}",
                          fix="choose data of the same size and channels (the run's data.resize/data.channels apply)")
    dev = resolve_device(device)
    report = evaluate_reconstruction(model.to(dev), test, batch_size=cfg.eval.batch_size, device=dev,
                                     max_images=max_images or cfg.eval.max_images)
    out = report.prefixed("test")
    out["test/num_images"] = int(len(report.indices))
    return out


__all__ = ["RunConfig", "Splits", "TrainResult", "build_model", "evaluate", "load_run_model", "prepare_data",
           "resume", "train", "TrainingError"]
