"""Base classes shared by every model: the output object, the model interface, checks.

A reprlab model is an ``nn.Module`` with

* ``encode(x) -> z`` (the deterministic code; the posterior mean for VAEs),
* ``decode(z) -> x_hat`` (in the model's output range, see ``output_range``),
* ``forward(x) -> ModelOutput`` with ``loss`` (a scalar to minimise) and named ``terms``,
* ``optimizer_groups()`` naming the parameter groups that get their own optimiser
  (one, ``"main"``, for autoencoders; a GAN or DANN returns several), and
* ``training_step(batch, ctx)`` doing one optimisation step on a
  :class:`~reprlab.data.batch.Batch` (images, and labels / domains / a target batch where
  the task has them) through the engine's :class:`StepContext` (``ctx.step(name, loss)``),
  so models with several optimisers are as natural as a plain autoencoder, and
* ``validation_step(batch)`` returning the named terms averaged over the validation set.

``optimizer_groups()`` may return :class:`ParamGroup` objects
(``params`` and ``settings``) to declare a group's own learning rate, betas, weight decay
or schedule; the config's ``train.groups.NAME.*`` overrides them.

Rotation self-supervision (any model using the default ``training_step``, VAEs included):
with ``rotation_beta > 0`` in the config the model owns ``rotation_head``, a linear layer
from the latent to 4 logits. Each training batch is then shown in all four rotations
(0/90/180/270 degrees, ``torch.rot90`` on H, W), or with ``rotation_views=1`` each image in
one rotation drawn at random (a quarter of the cost per step); the model's own loss is computed on the
rotated batch (it learns to reconstruct rotated images) and the head must tell the
rotation from the latent: ``loss = model loss + rotation_beta * cross-entropy``, logged
with the terms ``rotation_ce`` and ``rotation_acc``. ``forward`` (validation, evaluation,
``encode``) is unchanged and sees unrotated images only.

Example:
    >>> import torch
    >>> from reprlab.models import create_model
    >>> m = create_model("fc_ae", input_shape=(1, 28, 28), latent_dim=4)
    >>> out = m(torch.rand(2, 1, 28, 28))
    >>> sorted(out.terms), out.reconstruction.shape
    (['loss', 'mse'], torch.Size([2, 1, 28, 28]))
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from reprlab.base.errors import ConfigError, ModelError
from reprlab.base.validation import check_choice, check_float, check_int  # re-exported: models import them from here


@dataclass
class ParamGroup:
    """Parameters of one optimiser group and the settings the model declares for it (empty: the run's).

    The trainer resolves a group's settings as ``train.*`` < ``settings`` < ``train.groups.NAME.*``.

    Example:
        >>> g = ParamGroup([nn.Parameter(torch.zeros(2))], {"lr": 2e-4, "betas": (0.5, 0.999)})
        >>> len(g.params), g.settings["lr"]
        (1, 0.0002)
    """

    params: list[nn.Parameter]
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelOutput:
    """What ``forward`` returns: the loss to minimise and everything worth logging.

    ``terms`` maps names to scalar tensors (``"loss"`` included); they are averaged
    per image and logged as train/validation columns of ``metrics.csv``.
    """

    loss: torch.Tensor
    terms: dict[str, torch.Tensor]
    reconstruction: torch.Tensor | None = None  # autoencoders only
    latent: torch.Tensor | None = None          # models with a code
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


class StepContext(Protocol):
    """What the training engine hands to ``training_step``."""

    epoch: int          # 0-based epoch
    step_in_epoch: int  # 0-based batch index within the epoch
    global_step: int    # optimisation steps taken so far
    progress: float     # epochs completed as a float (epoch + fraction of this epoch)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> ModelOutput:
        """Call the model through the (possibly DDP-wrapped) module."""

    def step(self, name: str, loss: torch.Tensor) -> None:
        """zero_grad, backward, (all-reduce), clip and step optimiser ``name``."""

    @property
    def fraction(self) -> float:
        """Training progress in ``[0, 1]`` (``progress / epochs``)."""

    def set_lr_factor(self, name: str, factor: float) -> None:
        """Set optimiser ``name``'s learning rate to its base rate times ``factor`` (not cumulative)."""


@dataclass
class ModelConfig:
    """Fields common to every model config.

    ``input_shape`` is ``(C, H, W)``; ``output_range`` is ``"0_1"`` (sigmoid output) or
    ``"-1_1"`` (tanh output) and must match the data scaling. ``rotation_beta`` (>= 0)
    weights the rotation self-supervision loss (0 disables it; it needs square images);
    ``rotation_views`` is 4 (each training image in all four rotations) or 1 (each in one
    rotation drawn at random: the same expected loss for a quarter of the images per step).
    """

    input_shape: tuple[int, int, int] = (1, 28, 28)
    latent_dim: int = 16
    output_range: str = "0_1"
    rotation_beta: float = 0.0
    rotation_views: int = 4

    def __post_init__(self) -> None:
        self.input_shape = tuple(int(v) for v in self.input_shape)  # type: ignore[assignment]
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise ConfigError(f"input_shape must be (C, H, W) with positive sizes, got {self.input_shape}",
                              fix="e.g. input_shape=(1, 28, 28)")
        if self.input_shape[0] not in (1, 3):
            raise ConfigError(f"input_shape has {self.input_shape[0]} channels", fix="use 1 (grayscale) or 3 (RGB) channels")
        check_int("latent_dim", self.latent_dim, minimum=1)
        check_choice("output_range", self.output_range, ("0_1", "-1_1"))
        check_float("rotation_beta", self.rotation_beta, minimum=0.0)
        if isinstance(self.rotation_views, bool) or self.rotation_views not in (1, 4):
            raise ConfigError(f"rotation_views must be 1 or 4, got {self.rotation_views!r}",
                              fix="use model.rotation_views=4 (all four rotations of each image) or 1 (one at random)")
        if self.rotation_beta > 0 and self.input_shape[1] != self.input_shape[2]:
            raise ConfigError(f"rotation_beta={self.rotation_beta} rotates images by 90 degrees, which needs square "
                              f"images, but input_shape is {self.input_shape}",
                              fix=f"resize to a square (e.g. data.resize=[{max(self.input_shape[1:])},"
                                  f"{max(self.input_shape[1:])}]) or set model.rotation_beta=0")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of all fields."""
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


class ReprModel(nn.Module):
    """Base class of all reprlab models; subclasses implement ``encode``/``decode``/``forward``."""

    registry_name: str = "?"
    is_variational: bool = False
    batch_input: bool = True  # the engine hands training_step / validation_step a Batch

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        if getattr(config, "rotation_beta", 0.0) > 0:
            # Rotation self-supervision head: latent -> 4 rotation logits. Built here (the latent
            # size is known from the config) so it is an ordinary submodule: optimised with
            # "main", saved and loaded with the other weights.
            self.rotation_head = nn.Linear(int(config.latent_dim), 4)

    # -- interface -------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> ModelOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic reconstruction ``decode(encode(x))`` in the model's output range."""
        return self.decode(self.encode(x))

    @property
    def output_range(self) -> tuple[float, float]:
        """``(0, 1)`` or ``(-1, 1)``: the range of ``decode`` and of the expected input."""
        return (0.0, 1.0) if self.config.output_range == "0_1" else (-1.0, 1.0)

    def optimizer_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameter groups, one optimiser each. Default: a single group ``"main"``."""
        return {"main": [p for p in self.parameters() if p.requires_grad]}

    def training_step(self, batch: Any, ctx: StepContext) -> dict[str, torch.Tensor]:
        """One optimisation step on ``batch`` (a Batch or an images tensor); returns the (detached) terms to log.

        With ``rotation_beta > 0`` the step uses :meth:`rotation_objective` instead of the
        plain ``forward`` loss.
        """
        x = images_of(batch)
        if getattr(self, "rotation_head", None) is not None:
            loss, terms = self.rotation_objective(x, ctx.forward)
        else:
            out = ctx.forward(x)
            loss, terms = out.loss, out.terms
        ctx.step("main", loss)
        return {k: v.detach() for k, v in terms.items()}

    @torch.no_grad()
    def validation_step(self, batch: Any) -> dict[str, torch.Tensor]:
        """The named terms of ``forward`` on a validation ``batch`` (Batch or images tensor)."""
        return dict(self(images_of(batch)).terms)

    def rotation_objective(self, x: torch.Tensor, forward: Any = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss and terms of rotation self-supervision on batch ``x`` (needs ``rotation_beta > 0``).

        The batch is repeated in the four rotations (``4 * N`` images, rotation ``k`` by
        ``k * 90`` degrees), or with ``rotation_views=1`` each image is rotated by a ``k`` drawn
        uniformly at random (``N`` images; torch's global generator, which the Trainer seeds);
        ``forward`` (default: the model itself) gives the model's own loss on them, and
        ``rotation_head`` predicts ``k`` from the latent (the posterior mean for VAEs; a spatial
        code is averaged per channel first). Returns
        ``(loss + rotation_beta * ce, terms)`` with ``terms["loss"]`` the total and the extra
        terms ``rotation_ce`` and ``rotation_acc``.

        Example:
            >>> from reprlab.models import create_model
            >>> m = create_model("fc_ae", input_shape=(1, 8, 8), latent_dim=3, hidden_sizes=(16,), rotation_beta=0.5)
            >>> loss, terms = m.rotation_objective(torch.rand(2, 1, 8, 8))
            >>> sorted(terms)
            ['loss', 'mse', 'rotation_acc', 'rotation_ce']
        """
        head = getattr(self, "rotation_head", None)
        if head is None:
            raise ConfigError(f"{self.registry_name} has no rotation head (rotation_beta is 0)",
                              fix="build the model with rotation_beta > 0, e.g. model.rotation_beta=1")
        forward = self if forward is None else forward
        if int(self.config.rotation_views) == 1:
            target = torch.randint(0, 4, (x.shape[0],), device=x.device)
            every = torch.stack([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])  # (4, N, C, H, W)
            xr = every[target, torch.arange(x.shape[0], device=x.device)]
        else:
            xr = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])
            target = torch.arange(4, device=x.device).repeat_interleave(x.shape[0])
        out = forward(xr)
        z = out.latent.reshape(xr.shape[0], -1)
        d = head.in_features
        if z.shape[1] != d:  # spatial code (e.g. conv bottleneck): per-channel mean
            z = z.reshape(z.shape[0], d, -1).mean(2)
        logits = head(z)
        ce = nn.functional.cross_entropy(logits, target)
        loss = out.loss + float(self.config.rotation_beta) * ce
        terms = dict(out.terms)
        terms.update(loss=loss, rotation_ce=ce, rotation_acc=(logits.argmax(1) == target).float().mean())
        return loss, terms

    def on_epoch_start(self, epoch: int) -> None:
        """Hook called by the engine before each training epoch (e.g. KL warm-up)."""

    # -- checks ----------------------------------------------------------------------------
    def check_input(self, input_shape: tuple[int, int, int] | None = None) -> None:
        """Run a dummy batch through the model and explain shape misfits layer by layer.

        Raises :class:`ModelError` naming the first layer that fails and why, or if the
        reconstruction does not have the input's shape.
        """
        shape = tuple(input_shape or self.config.input_shape)
        x = torch.zeros(2, *shape)
        trace: list[tuple[str, nn.Module, tuple[int, ...]]] = []
        hooks = [m.register_forward_pre_hook(_make_trace_hook(n, trace))
                 for n, m in self.named_modules() if n and not list(m.children())]
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                out = self(x)
        except (RuntimeError, ValueError) as exc:
            if trace:
                name, module, in_shape = trace[-1]
                raise ModelError(
                    f"{self.registry_name} cannot process input of shape {shape}: layer '{name}' "
                    f"({module.__class__.__name__}{_describe(module)}) received a tensor of shape {in_shape} "
                    f"and failed: {str(exc).splitlines()[0]}",
                    fix="use fewer downsampling stages, a smaller kernel, or resize the input (data.resize)") from None
            raise ModelError(f"{self.registry_name} cannot process input of shape {shape}: {exc}",
                             fix="check input_shape against the architecture") from None
        finally:
            for h in hooks:
                h.remove()
            self.train(was_training)
        if tuple(out.reconstruction.shape[1:]) != shape:
            raise ModelError(
                f"{self.registry_name} reconstructs shape {tuple(out.reconstruction.shape[1:])} from input {shape}",
                fix="choose an input size divisible by the total downsampling factor or set data.resize")

    def sanity_check(self, x: torch.Tensor) -> None:
        """One-batch check before training: shapes, range, a finite loss and gradients.

        Raises :class:`ModelError` that explains what is wrong.
        """
        lo, hi = self.output_range
        if float(x.min()) < lo - 1e-4 or float(x.max()) > hi + 1e-4:
            raise ModelError(f"batch values lie in [{float(x.min()):.3g}, {float(x.max()):.3g}] but "
                             f"{self.registry_name} outputs values in [{lo:g}, {hi:g}]",
                             fix="set data.scale to match model.output_range ('0_1' or '-1_1')")
        if getattr(self, "rotation_head", None) is not None:
            loss = self.rotation_objective(x)[0]  # the training objective, so the head gets gradients too
        else:
            loss = self(x).loss
        if not torch.isfinite(loss):
            raise ModelError(f"{self.registry_name}: the loss on the first batch is {float(loss)}",
                             fix="check the data for NaN/inf and lower the learning rate")
        loss.backward()
        missing = [n for n, p in self.named_parameters() if p.requires_grad and p.grad is None]
        self.zero_grad(set_to_none=True)
        if missing:
            raise ModelError(f"{self.registry_name}: parameters get no gradient: {', '.join(missing[:5])}",
                             fix="this is a model bug; please report it")

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def _model_range(model: nn.Module) -> tuple[float, float]:
    rng = getattr(model, "output_range", (0.0, 1.0))
    return (float(rng[0]), float(rng[1]))


def to_model_range(x01: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """Map images from ``[0, 1]`` to the model's range (``x * 2 - 1`` for ``(-1, 1)`` models).

    Example:
        >>> import torch
        >>> class M(torch.nn.Module): output_range = (-1.0, 1.0)
        >>> to_model_range(torch.tensor([0.0, 0.5, 1.0]), M()).tolist()
        [-1.0, 0.0, 1.0]
    """
    lo, hi = _model_range(model)
    if (lo, hi) == (0.0, 1.0):
        return x01
    return x01 * (hi - lo) + lo


def from_model_range(x: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """Map model-range values back to ``[0, 1]`` (not clamped).

    Example:
        >>> import torch
        >>> class M(torch.nn.Module): output_range = (-1.0, 1.0)
        >>> from_model_range(torch.tensor([-1.0, 0.0, 1.0]), M()).tolist()
        [0.0, 0.5, 1.0]
    """
    lo, hi = _model_range(model)
    if (lo, hi) == (0.0, 1.0):
        return x
    return (x - lo) / (hi - lo)


def images_of(batch: Any) -> torch.Tensor:
    """The images of a :class:`~reprlab.data.batch.Batch`, or ``batch`` itself when it is a tensor."""
    return batch if isinstance(batch, torch.Tensor) else batch.images


def _make_trace_hook(name: str, trace: list):
    def hook(module: nn.Module, inputs: tuple) -> None:
        shape = tuple(inputs[0].shape) if inputs and isinstance(inputs[0], torch.Tensor) else ()
        trace.append((name, module, shape))
    return hook


def _describe(module: nn.Module) -> str:
    parts = []
    for attr in ("kernel_size", "stride", "in_features", "out_features", "in_channels", "out_channels"):
        if hasattr(module, attr):
            parts.append(f"{attr}={getattr(module, attr)}")
    return f"({', '.join(parts)})" if parts else ""
