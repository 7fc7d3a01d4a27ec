"""The training loop: short enough to read top to bottom.

:class:`Trainer` runs epochs of ``model.training_step(batch, ctx)`` (a
:class:`~reprlab.data.batch.Batch` with images and, where present, labels, domains and a
paired target batch; plain ``nn.Module`` models without ``batch_input`` get the images
tensor) and validates with ``model.validation_step(batch)``; the model decides how
many optimisers to step (``ctx.step(name, loss)``), so a GAN or DANN plugs into the same
loop as a plain autoencoder. Around the loop: per-epoch seeding (a resumed run replays
exactly), validation, schedules, callbacks (progress, CSV, checkpoints, early stopping),
non-finite-loss detection, and DDP when launched with ``torchrun``.

Example:
    >>> import torch
    >>> from reprlab.data.dataset import ImageData
    >>> from reprlab.models import create_model
    >>> data = ImageData(torch.rand(64, 1, 8, 8))
    >>> model = create_model("fc_ae", input_shape=(1, 8, 8), latent_dim=2, hidden_sizes=(16,))
    >>> trainer = Trainer(epochs=2, batch_size=16).fit(model, data)
    >>> [round(r["epoch"]) for r in trainer.history]
    [1, 2]
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from typing import Any, Callable, Sequence

import torch
from torch import nn

from reprlab.base.errors import ConfigError, TrainingError
from reprlab.base.validation import check_choice
from reprlab.config.core import PRECISIONS
from reprlab.data.dataset import ImageData
from reprlab.training.callbacks import Callback, Checkpointer
from reprlab.training.distributed import DistInfo, all_reduce_sum
from reprlab.training.loader import BatchLoader, PairedLoader, epoch_seed
from reprlab.training.optim import (GroupSettings, ParamGroup, build_optimizer, build_scheduler, check_group_options,
                                    resolve_group_settings)

logger = logging.getLogger(__name__)


class _StepContext:
    """What ``training_step`` sees: forward through the (DDP) module, ``step``, the progress
    (``progress`` in epochs, ``fraction`` of the whole run) and ``set_lr_factor``."""

    def __init__(self, trainer: "Trainer") -> None:
        self._trainer = trainer
        self.epoch = 0
        self.step_in_epoch = 0
        self.progress = 0.0
        self.forward: Callable[..., Any] = trainer._forward_module

    @property
    def global_step(self) -> int:
        return self._trainer.global_step

    @property
    def fraction(self) -> float:
        """Training progress ``p`` in ``[0, 1]``: ``progress / epochs`` (a DANN's schedules read it)."""
        return min(1.0, max(0.0, self.progress / max(1, self._trainer.epochs)))

    def set_lr_factor(self, name: str, factor: float) -> None:
        """Set every param group of optimiser ``name`` to its base learning rate times ``factor``.

        The base is the learning rate the optimiser was built with (its group settings), so the
        factor is never cumulative: a model computes it from ``fraction`` at every step (a
        resumed run gets the same rate). It replaces an epoch-level scheduler's rate, so a group
        with a ``train.scheduler`` is refused.
        """
        t = self._trainer
        if name not in t.optimizers:
            raise TrainingError(f"set_lr_factor names optimizer {name!r}, but the model's groups are "
                                f"{', '.join(t.optimizers)}", fix="this is a model bug; please report it")
        if name in t.schedulers:
            raise ConfigError(f"the model anneals the learning rate of group {name!r} at every step, and "
                              f"train.scheduler={t.group_settings[name].scheduler} would change it too",
                              fix="set train.scheduler=none (or switch the model's own annealing off, e.g. "
                                  "model.lr_annealing=false)")
        if not math.isfinite(factor) or factor < 0:
            raise TrainingError(f"learning-rate factor {factor} for group {name!r} is not a finite number >= 0",
                                fix="this is a model bug; please report it")
        for group, base in zip(t.optimizers[name].param_groups, t.base_lrs[name]):
            group["lr"] = base * float(factor)

    def step(self, name: str | Sequence[str], loss: torch.Tensor) -> None:
        """Check the loss is finite, then zero_grad, backward, clip and step optimiser ``name``.

        ``name`` may list several groups: one backward pass steps each of their optimisers (a model
        whose networks share a loss but not their optimiser settings); the penalty and the gradient
        clipping then cover the groups' parameters together.
        """
        t = self._trainer
        names = [name] if isinstance(name, str) else list(name)
        if not torch.isfinite(loss.detach()).item():
            raise TrainingError(
                f"the loss became {float(loss.detach())} at epoch {self.epoch + 1}, step {self.step_in_epoch + 1} "
                f"(optimizer '{', '.join(names)}'); training stopped and {_kept_checkpoints(t)}",
                fix="lower train.lr, set train.grad_clip, or check the data for extreme values")
        params = [p for n in names for p in t.param_groups[n]]
        if t.l1_penalty > 0:
            loss = loss + t.l1_penalty * sum(p.abs().sum() for p in params)
        for n in names:
            t.optimizers[n].zero_grad(set_to_none=True)
        loss.backward()
        if t.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, t.grad_clip)
        for n in names:
            t.optimizers[n].step()


def _kept_checkpoints(trainer: "Trainer") -> str:
    """What a run stopped now keeps, truthfully: which checkpoints exist (none in the first epoch)."""
    saver = next((cb for cb in trainer.callbacks if isinstance(cb, Checkpointer)), None)
    done = len(trainer.history)
    if saver is None:
        return "this trainer writes no checkpoints"
    if done == 0:
        return "no checkpoint was kept (it failed before its first epoch ended)"
    if saver.best_epoch >= 0:
        return (f"the best checkpoint (epoch {saver.best_epoch + 1}) and the last one (epoch {done}) were kept"
                if saver.best_epoch + 1 != done else f"the best and last checkpoint (epoch {done}) was kept")
    return f"the last checkpoint (epoch {done}) was kept (no epoch had a finite {saver.monitor}, so there is no best)"


def to_channels_last(images: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` images in the NHWC memory layout (same values and shape); other ranks unchanged.

    Example:
        >>> to_channels_last(torch.zeros(2, 3, 4, 4)).is_contiguous(memory_format=torch.channels_last)
        True
    """
    return images.contiguous(memory_format=torch.channels_last) if images.ndim == 4 else images


def training_autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context a training step runs in: bfloat16 autocast for ``precision="bf16"``, else none.

    Raises :class:`ConfigError` for an unknown precision, or bf16 on a device without it.

    Example:
        >>> training_autocast("bf16", torch.device("cpu")).fast_dtype
        torch.bfloat16
    """
    check_choice("train.precision", precision, PRECISIONS)
    if precision == "fp32":
        return contextlib.nullcontext()
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"train.precision={precision} needs a CPU or CUDA device; this run is on {device.type}",
                          fix="set train.precision=fp32, or train.device=cpu")
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"train.precision={precision}: this GPU has no bfloat16 support",
                          fix="set train.precision=fp32")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def cpu_bf16_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str] | None:
    """This CPU's bfloat16 instruction flags (``avx512_bf16``, ``amx_bf16``; ``bf16`` on Arm), read from
    ``cpuinfo``; ``None`` where that file cannot be read (not Linux), i.e. unknown.

    Written here because PyTorch exposes no public test for native bfloat16 arithmetic on a CPU
    (``torch.backends.cpu.get_cpu_capability()`` names the vector width, not bf16 support).

    Example:
        >>> flags = cpu_bf16_flags()
        >>> flags is None or isinstance(flags, frozenset)
        True
    """
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(f for f in value.split() if "bf16" in f)
    return frozenset(flags)


def warn_if_bf16_is_emulated(precision: str, device: torch.device, *, cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Log a warning, and return True, when ``precision="bf16"`` will run on a CPU without bfloat16
    instructions: PyTorch then emulates bfloat16, which can cost more CPU than float32.

    Example:
        >>> warn_if_bf16_is_emulated("fp32", torch.device("cpu"))
        False
    """
    if precision != "bf16" or device.type != "cpu":
        return False
    flags = cpu_bf16_flags(cpuinfo)
    if flags is None or flags:
        return False
    logger.warning("train.precision=bf16 on a CPU without bfloat16 instructions (no avx512_bf16, amx_bf16 or bf16 "
                   "in %s): PyTorch emulates bfloat16, which can be slower than float32, so a CPU-minute budget "
                   "buys fewer epochs; set train.precision=fp32 (the configs' comments give the fp32 epochs)", cpuinfo)
    return True


class Trainer:
    """Fit a reprlab model on an :class:`ImageData` with validation, callbacks and resume.

    Hyperparameters are keyword-only and validated by :class:`reprlab.config.TrainConfig`
    when built from a config; ``fit`` returns ``self`` with ``history`` (one dict per epoch).
    ``channels_last=True`` trains in the NHWC memory layout (the model's 4-D weights and every
    batch's images): the same values, other conv and pooling kernels, so the losses match the
    default layout to float rounding, not bit for bit. The model stays in that layout after
    ``fit``; saved weights are written contiguous (:func:`reprlab.models.save_model`).

    ``precision="bf16"`` runs each ``training_step`` under ``torch.autocast`` with bfloat16:
    convolutions and matrix products compute in bfloat16 (several times faster on CPUs with
    AMX or AVX512-BF16 and on recent GPUs), while the weights, their gradients, the optimiser
    state, the losses PyTorch's autocast keeps in float32 (MSE, L1, cross-entropy, BCE) and the
    logged terms stay float32. Validation runs in float32, so ``val/`` metrics and the checkpoint
    choice are exact. bfloat16 keeps float32's range, so no loss scaling is needed (unlike fp16).

    ``ema_decay`` (for example 0.999) keeps an exponential moving average of the weights and
    buffers, updated after every step (PyTorch's ``AveragedModel`` with
    ``get_ema_multi_avg_fn``): ``eval_model`` is that average, and it is what validation
    scores and what the ``best`` / ``epoch_NNNN`` checkpoints save (a run's final evaluation
    loads ``best``). The model itself and ``last`` keep the raw weights that training continues
    from; the average travels in the resume state. FixMatch and many GANs evaluate such an average.
    """

    def __init__(self, *, epochs: int = 10, batch_size: int = 128, optimizer: str = "adam", lr: float = 1e-3,
                 momentum: float = 0.9, betas: tuple[float, float] = (0.9, 0.999), weight_decay: float = 0.0,
                 l1_penalty: float = 0.0, scheduler: str = "none", step_size: int = 10, gamma: float = 0.1,
                 plateau_patience: int = 3, grad_clip: float | None = None,
                 group_options: dict[str, dict[str, Any]] | None = None, monitor: str = "val/loss",
                 augment: Callable | None = None, device: str | torch.device = "cpu", seed: int = 0,
                 callbacks: Sequence[Callback] = (), dist: DistInfo | None = None, paired: str = "larger",
                 channels_last: bool = False, precision: str = "fp32", target_batch_size: int | None = None,
                 ema_decay: float | None = None) -> None:
        training_autocast(precision, torch.device(device))  # refuses an unknown or unsupported precision now
        self.epochs, self.batch_size = epochs, batch_size
        self.optimizer_name, self.lr, self.momentum, self.weight_decay = optimizer, lr, momentum, weight_decay
        self.betas = tuple(betas)
        self.group_options = dict(group_options or {})
        self.paired = paired
        self.target_batch_size = target_batch_size
        self.channels_last = bool(channels_last)
        self.precision = precision
        self.ema_decay = ema_decay
        self.ema: torch.optim.swa_utils.AveragedModel | None = None
        self.l1_penalty, self.grad_clip = l1_penalty, grad_clip
        self.scheduler_name, self.step_size, self.gamma, self.plateau_patience = scheduler, step_size, gamma, plateau_patience
        self.monitor = monitor
        self.augment = augment
        self.device = torch.device(device)
        self.seed = seed
        self.dist = dist or DistInfo()
        self.callbacks = [cb for cb in callbacks if self.dist.is_main or not cb.rank_zero_only]
        self.history: list[dict[str, float]] = []
        self.should_stop = False
        self.global_step = 0
        self.start_epoch = 0

    # -- public ---------------------------------------------------------------------------
    def fit(self, model: nn.Module, train: ImageData, val: ImageData | None = None, *,
            resume: dict[str, Any] | None = None, target: ImageData | None = None) -> "Trainer":
        """Train ``model`` on ``train`` (validating on ``val``); ``resume`` is a saved ``resume_state()``.

        With ``target`` (unlabelled images of a second domain) each step's batch carries a
        target batch too (:class:`~reprlab.training.loader.PairedLoader`).
        """
        with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG as it was
            self._fit(model, train, val, resume, target)
        return self

    def resume_state(self) -> dict[str, Any]:
        """Everything needed to continue after the current epoch (tensors and plain values only)."""
        return {
            "format": "reprlab-train-state-v1",
            "epoch": len(self.history),
            "global_step": self.global_step,
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "callbacks": {type(cb).__name__: cb.state_dict() for cb in self.callbacks},
            "history": [dict(r) for r in self.history],
            **({"ema": self.ema.state_dict()} if self.ema is not None else {}),
            **self._model_memory(),
        }

    def _model_memory(self) -> dict[str, Any]:
        """``{"model": ...}``: what the model remembers between steps beside its weights (its ``training_state()``,
        e.g. FlexMatch's selected classes), where it has any."""
        model = getattr(self, "model", None)
        return {"model": model.training_state()} if hasattr(model, "training_state") else {}

    def _restore_model_memory(self, memory: dict[str, Any]) -> None:
        """Give the model back what :meth:`_model_memory` saved (the model refuses a memory that does not fit)."""
        model = getattr(self, "model", None)
        if hasattr(model, "load_training_state"):
            model.load_training_state(memory)

    @property
    def eval_model(self) -> nn.Module:
        """What validation scores and ``best`` saves: the weights' moving average with ``ema_decay``, else the model."""
        return self.ema.module if self.ema is not None else self.model

    # -- the loop -------------------------------------------------------------------------
    def _build_optimizers(self, model: nn.Module) -> None:
        """One optimiser (and schedule) per parameter group, with the group's own settings."""
        base = GroupSettings(optimizer=self.optimizer_name, lr=self.lr, betas=self.betas, momentum=self.momentum,
                             weight_decay=self.weight_decay, scheduler=self.scheduler_name)
        groups = model.optimizer_groups() if hasattr(model, "optimizer_groups") else {"main": list(model.parameters())}
        check_group_options(groups, self.group_options)
        self.param_groups, self.group_settings = {}, {}
        for name, group in groups.items():
            grouped = isinstance(group, ParamGroup)
            declared = group.settings if grouped else {}
            self.param_groups[name] = list(group.params if grouped else group)
            self.group_settings[name] = resolve_group_settings(name, base, declared, self.group_options)
        self.optimizers = {k: build_optimizer(self.param_groups[k], name=s.optimizer, lr=s.lr, betas=s.betas,
                                              momentum=s.momentum, weight_decay=s.weight_decay)
                           for k, s in self.group_settings.items()}
        self.base_lrs = {k: [float(g["lr"]) for g in o.param_groups] for k, o in self.optimizers.items()}
        self.schedulers = {k: sched for k, o in self.optimizers.items()
                           if (sched := build_scheduler(o, name=self.group_settings[k].scheduler, epochs=self.epochs,
                                                        step_size=self.step_size, gamma=self.gamma,
                                                        plateau_patience=self.plateau_patience)) is not None}

    def _fit(self, model: nn.Module, train: ImageData, val: ImageData | None, resume: dict | None,
             target: ImageData | None = None) -> None:
        self.model = model.to(self.device)
        if self.channels_last:  # before the optimisers: their state takes the parameters' layout
            model.to(memory_format=torch.channels_last)
        self._build_optimizers(model)
        self._forward_module = self._wrap_distributed(model)
        if self.ema_decay is not None:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(float(self.ema_decay)), use_buffers=True)
        if resume is not None:
            self._load_resume_state(resume)
        if target is None:
            loader: BatchLoader | PairedLoader = BatchLoader(train, batch_size=self.batch_size, seed=self.seed,
                                                             shuffle=True, rank=self.dist.rank,
                                                             world_size=self.dist.world_size)
        else:
            loader = PairedLoader(train, target, batch_size=self.batch_size, seed=self.seed, epoch_by=self.paired,
                                  rank=self.dist.rank, world_size=self.dist.world_size,
                                  target_batch_size=self.target_batch_size)
        batch_input = bool(getattr(model, "batch_input", False))
        val_loader = None if val is None else BatchLoader(val, batch_size=max(self.batch_size, 256), shuffle=False,
                                                          rank=self.dist.rank, world_size=self.dist.world_size)
        self.steps_per_epoch = len(loader)
        ctx = _StepContext(self)
        low = self._model_low(model)
        autocast = training_autocast(self.precision, self.device)
        warn_if_bf16_is_emulated(self.precision, self.device)

        for cb in self.callbacks:
            cb.on_fit_start(self)
        for epoch in range(self.start_epoch, self.epochs):
            if self.should_stop:
                break
            seed = epoch_seed(self.seed, epoch) + self.dist.rank
            torch.manual_seed(seed)
            aug_gen = torch.Generator(device="cpu").manual_seed(seed)
            model.on_epoch_start(epoch)
            for cb in self.callbacks:
                cb.on_epoch_start(self, epoch)
            model.train()
            sums: dict[str, torch.Tensor] = {}
            seen = 0
            started = time.perf_counter()
            for i, batch in enumerate(loader.epoch(epoch)):
                if self.augment is not None:
                    batch = batch.map_images(lambda x: self.augment(x, aug_gen))
                batch = self._to_device(batch)
                if low < 0:
                    batch = batch.map_images(lambda x: x * 2 - 1)
                ctx.epoch, ctx.step_in_epoch, ctx.progress = epoch, i, epoch + i / max(1, self.steps_per_epoch)
                with autocast:
                    terms = model.training_step(batch if batch_input else batch.images, ctx)
                bs = len(batch)
                for k, v in terms.items():
                    v = v.detach().float()  # a bfloat16 term would make the epoch's sum lose digits
                    sums[k] = sums[k] + v * bs if k in sums else v * bs
                seen += bs
                if self.ema is not None:
                    self.ema.update_parameters(model)
                self.global_step += 1
                for cb in self.callbacks:
                    cb.on_batch_end(self, self.global_step, bs)
            elapsed = time.perf_counter() - started
            row: dict[str, float] = {"epoch": epoch + 1}
            row.update(self._reduce(sums, seen, "train"))
            if val_loader is not None:
                torch.manual_seed(seed + 1)
                row.update(self._validate(self.eval_model, val_loader, low, batch_input))
            for name, sched in self.schedulers.items():
                if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    sched.step(row.get(self.monitor, row["train/loss"]))
                else:
                    sched.step()
            for name, opt in self.optimizers.items():
                row["lr" if name == "main" or len(self.optimizers) == 1 else f"lr/{name}"] = float(opt.param_groups[0]["lr"])
            row["time_s"] = elapsed
            row["images_per_s"] = seen * self.dist.world_size / max(elapsed, 1e-9)
            self.history.append(row)
            for cb in self.callbacks:
                cb.on_epoch_end(self, epoch, row)
            self.should_stop = bool(all_reduce_sum(torch.tensor([float(self.should_stop)]), self.dist).item() > 0)
        for cb in self.callbacks:
            cb.on_fit_end(self)

    @torch.no_grad()
    def _validate(self, model: nn.Module, loader: BatchLoader, low: float, batch_input: bool) -> dict[str, float]:
        model.eval()
        sums: dict[str, torch.Tensor] = {}
        seen = 0
        for batch in loader.epoch(0):
            batch = self._to_device(batch)
            if low < 0:
                batch = batch.map_images(lambda x: x * 2 - 1)
            if hasattr(model, "validation_step"):
                terms = model.validation_step(batch if batch_input else batch.images)
            else:
                terms = model(batch.images).terms
            n = len(batch)
            for k, v in terms.items():
                sums[k] = sums[k] + v.detach() * n if k in sums else v.detach() * n
            seen += n
        return self._reduce(sums, seen, "val")

    def _reduce(self, sums: dict[str, torch.Tensor], seen: int, prefix: str) -> dict[str, float]:
        if not sums:
            return {}
        keys = sorted(sums)
        packed = torch.stack([sums[k].float().cpu() for k in keys] + [torch.tensor(float(seen))])
        packed = all_reduce_sum(packed, self.dist)
        total = float(packed[-1])
        return {f"{prefix}/{k}": float(packed[i]) / max(total, 1.0) for i, k in enumerate(keys)}

    # -- helpers --------------------------------------------------------------------------
    def _to_device(self, batch):
        """The batch on the training device, its images in the model's memory layout."""
        batch = batch.to(self.device, non_blocking=True)
        if self.channels_last:
            batch = batch.map_images(to_channels_last)
        return batch

    @staticmethod
    def _model_low(model: nn.Module) -> float:
        rng = getattr(model, "output_range", (0.0, 1.0))
        return float(rng[0])

    def _wrap_distributed(self, model: nn.Module) -> Callable[..., Any]:
        if not self.dist.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.device.index or 0] if self.device.type == "cuda" else None
        # A step that uses only part of the model (one network of a GAN per optimiser step) leaves
        # parameters without gradients, which DDP must be told about.
        partial = len(self.param_groups) > 1 or bool(getattr(model, "ddp_find_unused_parameters", False))
        return DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=partial)

    def _load_resume_state(self, state: dict[str, Any]) -> None:
        if state.get("format") != "reprlab-train-state-v1":
            raise TrainingError("the resume state is not a reprlab training state", fix="resume from a reprlab run directory")
        missing = [k for k in self.optimizers if k not in state["optimizers"]]
        if missing:
            raise TrainingError(f"the resume state has no optimiser state for parameter group(s) {', '.join(missing)} "
                                f"(it has {', '.join(state['optimizers']) or 'none'}): it was saved by a version of the "
                                "model with other groups",
                                fix="start the run again, or use its best model as it is (`reprlab evaluate RUN_DIR`)")
        for k, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][k])
        for k, sched in self.schedulers.items():
            sched.load_state_dict(state["schedulers"][k])
        saved = state.get("callbacks", {})
        for cb in self.callbacks:
            if type(cb).__name__ in saved:
                cb.load_state_dict(saved[type(cb).__name__])
        if self.ema is not None:
            if "ema" not in state:
                raise TrainingError("this run's config keeps a moving average of the weights (train.ema_decay), but "
                                    "its resume state has none (it was saved without train.ema_decay)",
                                    fix="resume with the config the run started with, or start a new run")
            self.ema.load_state_dict(state["ema"])
        self._restore_model_memory(state.get("model", {}))
        self.history = [dict(r) for r in state["history"]]
        self.global_step = int(state["global_step"])
        self.start_epoch = int(state["epoch"])
        if self.start_epoch >= self.epochs:
            logger.info("nothing to resume: all %d epochs are done", self.epochs)
        if math.isnan(self.start_epoch):  # pragma: no cover - defensive
            raise TrainingError("corrupt resume state", fix="start again")
