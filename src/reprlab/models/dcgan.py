"""``dcgan``: a deep convolutional GAN (Radford et al. 2016) for any image size.

Generator: noise ``z ~ N(0, I)`` of ``noise_dim`` entries -> dense layer -> a
``(C0, h0, w0)`` map (``h0 = ceil(H / 2**n)``, ``n`` upsampling stages chosen so that
``h0`` is about 4-7) -> ``n`` transposed convolutions (kernel 4, stride 2) with batch norm
and ReLU, the last one to the image channels -> crop to ``(H, W)`` -> tanh. Discriminator:
``n`` strided convolutions (kernel 4, stride 2) with LeakyReLU(0.2) (batch norm optional,
never on the first) -> a linear layer to one logit. Weights ``N(0, 0.02)`` (batch-norm
scales ``N(1, 0.02)``) as in the DCGAN paper.

Two parameter groups, ``"generator"`` and ``"discriminator"``, each with Adam lr 2e-4 and
betas (0.5, 0.999); the config's ``train.groups.NAME.*`` overrides them (e.g.
``train.groups.discriminator.lr=1e-4``). ``training_step`` steps the discriminator
``d_steps`` times and then the generator ``g_steps`` times per batch. Every network call
of a step goes through one ``ctx.forward(...)`` call (``mode="discriminate"`` or
``mode="generate"``), so DDP sees exactly one forward per backward and all-reduces the
gradients.

Options: ``loss="bce"`` (non-saturating, default) or ``"hinge"`` (with spectral
normalisation of the discriminator by default); ``label_smoothing`` (one-sided: real
targets ``1 - s``); ``label_flip`` (probability of swapping a real/fake target in the
discriminator step); ``instance_noise`` (std of Gaussian noise added to the
discriminator's inputs, decaying linearly to 0 over ``instance_noise_epochs`` of
training, read from ``ctx.progress``); ``minibatch_std`` (the discriminator's last
feature map gets one more channel, the standard deviation of its features across the
batch averaged to one number, as in Karras et al. 2018: a batch of near-identical samples
becomes easy to tell from a real one, which counters mode dropping); ``ema`` (a decay such
as 0.999: a copy of the generator whose weights are the exponential moving average of the
trained generator's, updated after every generator step with the decay warmed up as
``min(ema, (1 + t) / (10 + t))`` and the batch-norm statistics copied; ``decode`` and
``sample`` use it in eval mode, i.e. for every sample, metric and checkpoint choice, while
training still steps the raw generator. Averaging the generator's weights is the standard
cure for the epoch-to-epoch wobble of GAN samples (Yazıcı et al. 2019; Karras et al. 2018)).

Logged terms (train and validation): ``d_loss``, ``g_loss``, ``d_real`` (mean
``sigmoid(D(x))``), ``d_fake`` (mean ``sigmoid(D(G(z)))``), ``loss`` (their sum, for the
engine's fallbacks; not a quality measure) and, in training, ``d_grad_norm`` and
``g_grad_norm``.

A GAN has no encoder: ``encode``/``reconstruct`` do not exist on it (``hasattr`` is
False, so the reconstruct task and the analysis refuse or skip it); ``decode(z)`` is the
generator and ``sample(n)`` draws from the prior, like a VAE's, so the generation tools
serve both. ``reconstructs = False`` is the capability flag the model tests read.

Example:
    >>> import torch
    >>> from reprlab.models import create_model
    >>> g = create_model("dcgan", input_shape=(1, 28, 28), noise_dim=8, gen_channels=8, disc_channels=8)
    >>> g.sample(2, generator=torch.Generator().manual_seed(0)).shape
    torch.Size([2, 1, 28, 28])
    >>> hasattr(g, "encode"), sorted(g.optimizer_groups())
    (False, ['discriminator', 'generator'])
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reprlab.base.errors import ConfigError, ModelError, TrainingError
from reprlab.models.base import (ModelConfig, ModelOutput, ParamGroup, ReprModel, check_choice, check_float, check_int,
                                 images_of)
from reprlab.models.layers import FitTo
from reprlab.models.registry import register_model

LOSSES: tuple[str, ...] = ("bce", "hinge")
DISC_NORMS: tuple[str, ...] = ("batch", "none")

#: What the model declares for its two optimisers (the DCGAN paper's Adam settings).
DCGAN_OPTIMIZER: dict[str, Any] = {"optimizer": "adam", "lr": 2e-4, "betas": (0.5, 0.999)}


@dataclass
class DCGANConfig(ModelConfig):
    """DCGAN hyperparameters (see the module docstring).

    ``noise_dim`` and ``latent_dim`` are the same number (the noise size; give either);
    ``output_range`` must be ``"-1_1"`` (tanh output; set ``data.scale=-1_1``).
    """

    latent_dim: int | None = None  # type: ignore[assignment]
    noise_dim: int | None = None
    output_range: str = "-1_1"
    gen_channels: int = 64
    disc_channels: int = 64
    max_channels: int = 256
    disc_norm: str = "batch"
    loss: str = "bce"
    spectral_norm: bool | None = None  # None: on for the hinge loss, off for bce
    label_smoothing: float = 0.0
    label_flip: float = 0.0
    d_steps: int = 1
    g_steps: int = 1
    instance_noise: float = 0.0
    instance_noise_epochs: float = 10.0
    minibatch_std: bool = False
    ema: float = 0.0  # 0: off; e.g. 0.999: sample from a moving average of the generator's weights

    def __post_init__(self) -> None:
        if self.noise_dim is None and self.latent_dim is None:
            self.noise_dim = self.latent_dim = 64
        elif self.noise_dim is None:
            self.noise_dim = self.latent_dim
        elif self.latent_dim is None:
            self.latent_dim = self.noise_dim
        elif self.noise_dim != self.latent_dim:
            raise ConfigError(f"dcgan: noise_dim={self.noise_dim} and latent_dim={self.latent_dim} differ (they are "
                              f"the same number, the size of the noise vector)", fix="give only model.noise_dim")
        check_int("noise_dim", self.noise_dim, minimum=1)
        if self.output_range != "-1_1":
            raise ConfigError(f"dcgan generates with a tanh output in [-1, 1], but output_range={self.output_range!r} "
                              f"(data.scale={self.output_range})", fix="set data.scale=-1_1 for GAN runs")
        super().__post_init__()
        if self.rotation_beta:
            raise ConfigError(f"dcgan has no latent code of real images for rotation_beta={self.rotation_beta}",
                              fix="set model.rotation_beta=0")
        for name in ("gen_channels", "disc_channels", "max_channels", "d_steps", "g_steps"):
            check_int(name, getattr(self, name), minimum=1)
        check_choice("disc_norm", self.disc_norm, DISC_NORMS)
        check_choice("loss", self.loss, LOSSES)
        if not isinstance(self.minibatch_std, bool):
            raise ConfigError(f"minibatch_std must be true or false, got {self.minibatch_std!r}",
                              fix="set model.minibatch_std=true")
        if self.spectral_norm is not None and not isinstance(self.spectral_norm, bool):
            raise ConfigError(f"spectral_norm must be true, false or null, got {self.spectral_norm!r}",
                              fix="set model.spectral_norm=true")
        check_float("label_smoothing", self.label_smoothing, minimum=0.0, maximum=0.5)
        check_float("label_flip", self.label_flip, minimum=0.0, maximum=0.5)
        check_float("instance_noise", self.instance_noise, minimum=0.0, maximum=2.0)
        check_float("instance_noise_epochs", self.instance_noise_epochs, minimum=0.0, exclusive_min=True)
        check_float("ema", self.ema, minimum=0.0, maximum=1.0)
        if self.ema >= 1.0:
            raise ConfigError(f"ema={self.ema} would never move the averaged generator from its initial weights",
                              fix="use a decay below 1, e.g. model.ema=0.999 (or 0 for no averaging)")
        if self.loss == "hinge" and self.label_smoothing > 0:
            raise ConfigError("label_smoothing softens the targets of the bce loss; the hinge loss has none",
                              fix="set model.label_smoothing=0 or model.loss=bce")

    @property
    def use_spectral_norm(self) -> bool:
        return self.loss == "hinge" if self.spectral_norm is None else bool(self.spectral_norm)


def num_stages(size: int) -> int:
    """Up/downsampling stages for a side of ``size`` pixels (the base map is about 4-7 pixels).

    Example:
        >>> [num_stages(s) for s in (8, 28, 32, 50, 64)]
        [1, 2, 3, 3, 4]
    """
    return max(1, int(math.floor(math.log2(max(size, 8) / 4))))


def dcgan_init(module: nn.Module) -> None:
    """``N(0, 0.02)`` weights for convolutions and linear layers, ``N(1, 0.02)`` batch-norm scales, zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class Generator(nn.Module):
    """Noise ``(N, noise_dim)`` -> images ``(N, C, H, W)`` in [-1, 1]."""

    def __init__(self, cfg: DCGANConfig) -> None:
        super().__init__()
        c, h, w = cfg.input_shape
        n = num_stages(min(h, w))
        self.base = (math.ceil(h / 2 ** n), math.ceil(w / 2 ** n))
        chans = [min(cfg.gen_channels * 2 ** (n - 1 - i), cfg.max_channels) for i in range(n)]
        self.base_channels = chans[0]
        self.fc = nn.Sequential(nn.Linear(cfg.noise_dim, chans[0] * self.base[0] * self.base[1], bias=False),
                                nn.BatchNorm1d(chans[0] * self.base[0] * self.base[1]), nn.ReLU(inplace=True))
        layers: list[nn.Module] = []
        for i in range(n):
            last = i == n - 1
            out = c if last else chans[i + 1]
            layers.append(nn.ConvTranspose2d(chans[i], out, 4, 2, 1, bias=last))
            if not last:
                layers += [nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
        layers += [FitTo((h, w)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.fc(z.reshape(z.shape[0], -1))
        return self.net(x.reshape(z.shape[0], self.base_channels, *self.base))


class Discriminator(nn.Module):
    """Images ``(N, C, H, W)`` -> logits ``(N,)``."""

    def __init__(self, cfg: DCGANConfig) -> None:
        super().__init__()
        c, h, w = cfg.input_shape
        n = num_stages(min(h, w))
        sn = nn.utils.parametrizations.spectral_norm if cfg.use_spectral_norm else (lambda m: m)
        layers: list[nn.Module] = []
        ch_in = c
        for i in range(n):
            ch = min(cfg.disc_channels * 2 ** i, cfg.max_channels)
            layers.append(sn(nn.Conv2d(ch_in, ch, 4, 2, 1, bias=cfg.disc_norm == "none" or i == 0)))
            if cfg.disc_norm == "batch" and i > 0:
                layers.append(nn.BatchNorm2d(ch))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            ch_in = ch
        self.features = nn.Sequential(*layers)
        hh, ww = h, w
        for _ in range(n):
            hh, ww = (hh + 2 - 4) // 2 + 1, (ww + 2 - 4) // 2 + 1
        self.minibatch_std = bool(cfg.minibatch_std)
        self.head = sn(nn.Linear((ch_in + int(self.minibatch_std)) * hh * ww, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        if self.minibatch_std:
            f = append_minibatch_std(f)
        return self.head(f.flatten(1)).squeeze(1)


def append_minibatch_std(features: torch.Tensor) -> torch.Tensor:
    """Append one channel holding the features' standard deviation across the batch, averaged.

    Hand-written because torch has no such layer and it is four lines (ProGAN's layer without
    its groups: the statistic covers the whole batch, which is all real or all generated).

    Example:
        >>> f = torch.randn(4, 3, 2, 2)
        >>> out = append_minibatch_std(f)
        >>> out.shape, bool(torch.allclose(out[:, 3], out[0, 3, 0, 0]))
        (torch.Size([4, 4, 2, 2]), True)
        >>> float(append_minibatch_std(torch.ones(4, 3, 2, 2))[0, 3, 0, 0]) < 1e-3  # identical samples
        True
    """
    std = torch.sqrt(features.var(dim=0, unbiased=False) + 1e-8).mean()
    n, _, h, w = features.shape
    return torch.cat([features, std.expand(n, 1, h, w)], dim=1)


@register_model("dcgan", config=DCGANConfig)
class DCGAN(ReprModel):
    """Deep convolutional GAN; see the module docstring."""

    reconstructs = False  # no encoder: the autoencoder tests and the reconstruct task do not apply
    is_variational = False
    has_prior = True  # sample(n) draws from N(0, I) through the generator

    def __init__(self, config: DCGANConfig) -> None:
        super().__init__(config)
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)
        dcgan_init(self)
        if config.ema:
            self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)
            self.register_buffer("ema_updates", torch.zeros((), dtype=torch.long))

    # -- what a GAN does not have ----------------------------------------------------------
    @property
    def encode(self):  # type: ignore[override]
        raise AttributeError("dcgan has no encoder (a GAN maps noise to images only); use sample() or decode(z)")

    @property
    def reconstruct(self):  # type: ignore[override]
        raise AttributeError("dcgan does not reconstruct images; use sample() or decode(z)")

    # -- generation ------------------------------------------------------------------------
    @property
    def noise_dim(self) -> int:
        return int(self.config.noise_dim)

    @property
    def sampling_generator(self) -> nn.Module:
        """The network that samples: the averaged generator in eval mode when ``ema`` is on, else the generator."""
        return self.generator_ema if self.config.ema and not self.training else self.generator

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The generator: noise ``(N, noise_dim)`` -> images in [-1, 1] (the averaged one in eval mode with ``ema``)."""
        return self.sampling_generator(z)

    @torch.no_grad()
    def update_ema(self) -> None:
        """One moving-average step of ``generator_ema`` towards ``generator`` (no-op without ``ema``)."""
        if not self.config.ema:
            return
        self.ema_updates += 1
        t = float(self.ema_updates)
        decay = min(float(self.config.ema), (1.0 + t) / (10.0 + t))
        for avg, p in zip(self.generator_ema.parameters(), self.generator.parameters()):
            avg.lerp_(p.detach(), 1.0 - decay)
        for avg, b in zip(self.generator_ema.buffers(), self.generator.buffers()):
            avg.copy_(b)

    def noise(self, n: int, *, generator: torch.Generator | None = None, device: Any = None) -> torch.Tensor:
        """``n`` draws of the prior ``N(0, I)`` (on ``generator``'s device when given)."""
        check_int("n", n, minimum=1)
        dev = generator.device if generator is not None else (device or next(self.parameters()).device)
        return torch.randn(int(n), self.noise_dim, generator=generator, device=dev)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode ``n`` prior draws (no gradients; call ``eval()`` first), in [-1, 1]."""
        return self.decode(self.noise(n, generator=generator).to(next(self.parameters()).device))

    # -- objective -------------------------------------------------------------------------
    def noise_std(self, progress: float) -> float:
        """Instance-noise std after ``progress`` epochs (linear decay to 0)."""
        c = self.config
        return float(c.instance_noise) * max(0.0, 1.0 - float(progress) / float(c.instance_noise_epochs))

    @staticmethod
    def _noisy(x: torch.Tensor, std: float) -> torch.Tensor:
        return x + std * torch.randn_like(x) if std > 0 else x

    def forward(self, x: torch.Tensor, *, mode: str = "eval", z: torch.Tensor | None = None,
                noise_std: float = 0.0) -> Any:
        """``mode="discriminate"``: ``(D(x), D(G(z)))`` logits with ``G`` frozen;
        ``mode="generate"``: ``D(G(x))`` with ``x`` the noise; ``"eval"``: a :class:`ModelOutput`
        with the terms on real images ``x`` and as many fresh noise draws."""
        if mode == "discriminate":
            with torch.no_grad():
                fake = self.generator(z)
            return self.discriminator(self._noisy(x, noise_std)), self.discriminator(self._noisy(fake, noise_std))
        if mode == "generate":
            return self.discriminator(self._noisy(self.generator(x), noise_std))
        if mode != "eval":
            raise ValueError(f"unknown mode {mode!r}")
        z = self.noise(x.shape[0], device=x.device) if z is None else z
        fake = self.generator(z)
        real_logits, fake_logits = self.discriminator(x), self.discriminator(fake)
        d_loss = self.d_loss(real_logits, fake_logits, flip=False)
        g_loss = self.g_loss(fake_logits)
        terms = {"loss": d_loss + g_loss, "d_loss": d_loss, "g_loss": g_loss,
                 "d_real": torch.sigmoid(real_logits).mean(), "d_fake": torch.sigmoid(fake_logits).mean()}
        return ModelOutput(loss=terms["loss"], terms=terms, latent=z, extras={"samples": fake})

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor, *, flip: bool = True) -> torch.Tensor:
        """The discriminator's loss (with smoothing and, when ``flip``, random label flips)."""
        c = self.config
        real_t = torch.ones_like(real_logits)
        fake_t = torch.zeros_like(fake_logits)
        if flip and c.label_flip > 0:
            real_t = torch.where(torch.rand_like(real_t) < c.label_flip, 0.0, real_t)
            fake_t = torch.where(torch.rand_like(fake_t) < c.label_flip, 1.0, fake_t)
        if c.loss == "hinge":  # target 1: relu(1 - D), target 0: relu(1 + D)
            def hinge(logits: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
                return torch.where(t > 0.5, F.relu(1 - logits), F.relu(1 + logits)).mean()
            return hinge(real_logits, real_t) + hinge(fake_logits, fake_t)
        real_t = torch.where(real_t > 0.5, 1.0 - c.label_smoothing, real_t)  # one-sided: real targets only
        return (F.binary_cross_entropy_with_logits(real_logits, real_t)
                + F.binary_cross_entropy_with_logits(fake_logits, fake_t))

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        """The generator's loss: non-saturating ``-log D(G(z))`` (bce) or ``-D(G(z))`` (hinge)."""
        if self.config.loss == "hinge":
            return -fake_logits.mean()
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))

    def optimizer_groups(self) -> dict[str, Any]:  # type: ignore[override]
        """``generator`` and ``discriminator``, each declaring Adam 2e-4, betas (0.5, 0.999)."""
        return {"generator": ParamGroup(list(self.generator.parameters()), dict(DCGAN_OPTIMIZER)),
                "discriminator": ParamGroup(list(self.discriminator.parameters()), dict(DCGAN_OPTIMIZER))}

    @staticmethod
    def _check_finite(name: str, loss: torch.Tensor, ctx: Any) -> None:
        if not torch.isfinite(loss.detach()).item():
            raise TrainingError(
                f"GAN failure: non-finite losses: {name} became {float(loss.detach())} at epoch "
                f"{getattr(ctx, 'epoch', 0) + 1}, step {getattr(ctx, 'step_in_epoch', 0) + 1}; training stopped and "
                f"the last good checkpoint was kept",
                fix="lower both learning rates (train.groups.generator.lr / train.groups.discriminator.lr), set "
                    "train.grad_clip, or use model.loss=hinge (spectral normalisation)")

    @staticmethod
    def _grad_norm(module: nn.Module) -> torch.Tensor:
        grads = [p.grad.detach().pow(2).sum() for p in module.parameters() if p.grad is not None]
        return torch.stack(grads).sum().sqrt() if grads else torch.zeros(())

    def training_step(self, batch: Any, ctx: Any) -> dict[str, torch.Tensor]:
        """``d_steps`` discriminator steps, then ``g_steps`` generator steps, on one batch."""
        x = images_of(batch)
        n = x.shape[0]
        std = self.noise_std(getattr(ctx, "progress", 0.0))
        for _ in range(int(self.config.d_steps)):
            z = self.noise(n, device=x.device)
            real_logits, fake_logits = ctx.forward(x, mode="discriminate", z=z, noise_std=std)
            d_loss = self.d_loss(real_logits, fake_logits)
            self._check_finite("d_loss", d_loss, ctx)
            ctx.step("discriminator", d_loss)
        d_grad = self._grad_norm(self.discriminator)
        for _ in range(int(self.config.g_steps)):
            z = self.noise(n, device=x.device)
            gen_logits = ctx.forward(z, mode="generate", noise_std=std)
            g_loss = self.g_loss(gen_logits)
            self._check_finite("g_loss", g_loss, ctx)
            ctx.step("generator", g_loss)
            self.update_ema()
        g_grad = self._grad_norm(self.generator)
        d_loss, g_loss = d_loss.detach(), g_loss.detach()
        return {"loss": d_loss + g_loss, "d_loss": d_loss, "g_loss": g_loss,
                "d_real": torch.sigmoid(real_logits.detach()).mean(), "d_fake": torch.sigmoid(fake_logits.detach()).mean(),
                "d_grad_norm": d_grad, "g_grad_norm": g_grad, "instance_noise": torch.tensor(std)}

    @torch.no_grad()
    def validation_step(self, batch: Any) -> dict[str, torch.Tensor]:
        """The logged terms on a validation batch (fresh noise of the same size), without stepping."""
        return dict(self(images_of(batch)).terms)

    # -- checks ----------------------------------------------------------------------------
    def check_input(self, input_shape: tuple[int, int, int] | None = None) -> None:
        """The generator makes images of the input shape and the discriminator takes them."""
        shape = tuple(input_shape or self.config.input_shape)
        if shape != tuple(self.config.input_shape):
            raise ModelError(f"dcgan was built for images of shape {tuple(self.config.input_shape)}, not {shape}",
                             fix="build the model for the data's shape (data.resize / data.channels)")
        was = self.training
        self.eval()
        try:
            with torch.no_grad():
                fake = self.generator(self.noise(2))
                logits = self.discriminator(torch.zeros(2, *shape))
        finally:
            self.train(was)
        if tuple(fake.shape[1:]) != shape or tuple(logits.shape) != (2,):
            raise ModelError(f"dcgan generates {tuple(fake.shape[1:])} for images {shape}",
                             fix="this is a model bug; please report it")

    def sanity_check(self, x: torch.Tensor) -> None:
        """One-batch check: data range, finite losses, gradients in both networks."""
        lo, hi = self.output_range
        if float(x.min()) < lo - 1e-4 or float(x.max()) > hi + 1e-4:
            raise ModelError(f"batch values lie in [{float(x.min()):.3g}, {float(x.max()):.3g}] but dcgan generates "
                             f"values in [{lo:g}, {hi:g}]", fix="set data.scale=-1_1")
        if x.shape[0] < 2 and any(isinstance(m, nn.BatchNorm2d) for m in self.modules()):
            raise ModelError("dcgan's batch norm needs batches of at least 2 images",
                             fix="raise train.batch_size to 2 or more")
        out = self(x)
        for name in ("d_loss", "g_loss"):
            if not torch.isfinite(out.terms[name]):
                raise ModelError(f"dcgan: {name} on the first batch is {float(out.terms[name])}",
                                 fix="check the data for NaN/inf")
        out.terms["d_loss"].backward(retain_graph=True)
        missing = [n for n, p in self.discriminator.named_parameters() if p.grad is None]
        self.zero_grad(set_to_none=True)
        out.terms["g_loss"].backward()
        missing += [n for n, p in self.generator.named_parameters() if p.grad is None]
        self.zero_grad(set_to_none=True)
        if missing:
            raise ModelError(f"dcgan: parameters get no gradient: {', '.join(missing[:5])}",
                             fix="this is a model bug; please report it")
