"""Variational autoencoders ``vae`` and ``beta_vae``.

The encoder (the ``fc_ae`` MLP or the ``conv_ae`` conv stack, built by the same
functions) outputs the mean and log-variance of a diagonal Gaussian posterior
``q(z|x)``; the prior is ``N(0, I)``. The decoder is the matching fc/conv decoder and
defines ``p(x|z)`` by ``recon_loss``:

* ``"bernoulli"`` (``output_range="0_1"`` only): pixel probabilities; the decoder works
  on logits internally (BCE-with-logits), ``decode`` returns ``sigmoid(logits)``;
* ``"mse"``: Gaussian with fixed std ``recon_sigma`` around the decoded image;
* ``"l1"``: Laplace with fixed scale ``recon_sigma`` around the decoded image.

``forward`` returns per-image terms in nats (averaged over the batch): ``nll``
(``-log p(x|z)`` for one posterior sample), ``kl`` (``KL(q(z|x) || p(z))``, closed form),
``elbo = -(nll + kl)`` (independent of ``beta`` and warm-up), ``loss = nll + kl_weight * kl``
(the training objective) and ``mse`` (per pixel, for comparison with autoencoders).
``latent`` is the posterior mean; ``extras`` holds ``mu``, ``logvar``, the sample ``z`` and
the per-image ``elbo_per_image`` and ``kl_per_image`` (used for per-image scores).
In training mode ``z`` is drawn with the global RNG (reparameterisation trick); in eval
mode with a fixed seed, so validation numbers are reproducible. For a deterministic
reconstruction use ``reconstruct(x)`` (decodes the posterior mean).

KL warm-up: ``kl_weight = beta * min(1, progress / kl_warmup_epochs)``, where ``progress``
is epochs completed as a float. ``training_step`` updates it every step from the
engine's ``ctx.progress`` (a smooth ramp); ``on_epoch_start(epoch)`` sets it per epoch
for loops that only call that hook. A freshly built or loaded model has the final
weight ``beta``, so it reports its full objective.

Example:
    >>> import torch
    >>> from reprlab.models import create_model
    >>> m = create_model("vae", input_shape=(1, 28, 28), latent_dim=4, channels=(8, 16))
    >>> out = m(torch.rand(3, 1, 28, 28))
    >>> sorted(out.terms)
    ['elbo', 'kl', 'loss', 'mse', 'nll']
    >>> m.sample(5).shape
    torch.Size([5, 1, 28, 28])
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reprlab.base.errors import ConfigError
from reprlab.models.base import ModelConfig, ModelOutput, ReprModel, StepContext, check_choice, check_float, check_int
from reprlab.models.conv import (build_conv_decoder, build_conv_encoder, build_dense_from_latent,
                                 build_dense_to_latent, validate_conv_options)
from reprlab.models.fc import build_fc_decoder, build_fc_encoder, validate_fc_options
from reprlab.models.layers import check_channels, init_weights, output_activation
from reprlab.models.registry import register_model

ARCHS: tuple[str, ...] = ("fc", "conv")
VAE_RECON_LOSSES: tuple[str, ...] = ("bernoulli", "mse", "l1")

# Bounds on the posterior log-variance: keeps exp(logvar) finite early in training.
_LOGVAR_MIN, _LOGVAR_MAX = -30.0, 20.0
_EVAL_SEED = 0


def soft_bound(v: torch.Tensor, low: float = _LOGVAR_MIN, high: float = _LOGVAR_MAX) -> torch.Tensor:
    """``v`` squeezed smoothly into ``(low, high)`` by two softplus walls; the identity (to float32
    precision) well inside them.

    A hard ``clamp`` has no gradient outside its bounds: a posterior log-variance that starts
    above ``high`` (a dense layer on a large feature map can output that at initialisation)
    then stays there for the whole run, its KL term stuck near ``exp(high) / 2`` nats and its
    latent dimension pure noise. Here the KL term's gradient still pulls it back.

    Example:
        >>> soft_bound(torch.tensor([-100.0, 0.0, 1.5, 100.0])).tolist()
        [-30.0, 0.0, 1.5, 20.0]
    """
    return high - F.softplus(high - (low + F.softplus(v - low)))


@dataclass
class VAEConfig(ModelConfig):
    """Options of ``vae``.

    ``arch`` picks the fc (``hidden_sizes``, ``norm`` in batch/none) or conv
    (``channels``, ``kernel_size``, ``upsample``, ``stride`` (2: downsampling; 1 keeps the size)
    and ``padding`` (default ``kernel_size // 2``) as in ``conv_ae``, dense bottleneck) encoder/decoder. ``recon_loss`` is ``"bernoulli"`` (needs
    ``output_range="0_1"``), ``"mse"`` (Gaussian, std ``recon_sigma``) or ``"l1"``
    (Laplace, scale ``recon_sigma``). ``kl_warmup_epochs`` ramps the KL weight linearly
    from 0 (0 disables warm-up).

    Example:
        >>> VAEConfig(arch="fc", hidden_sizes=[256], latent_dim=8).hidden_sizes
        (256,)
    """

    arch: str = "conv"
    hidden_sizes: tuple = (512, 256)
    channels: tuple = (32, 64)
    kernel_size: int = 3
    stride: int = 2
    padding: int | None = None
    norm: str = "batch"
    activation: str = "relu"
    upsample: str = "transpose"
    recon_loss: str = "bernoulli"
    recon_sigma: float = 0.1
    kl_warmup_epochs: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("arch", self.arch, ARCHS)
        if self.arch == "fc":
            self.hidden_sizes = validate_fc_options(self.hidden_sizes, self.activation, self.norm)
            self.channels = check_channels("channels", self.channels)
        else:
            self.hidden_sizes = check_channels("hidden_sizes", self.hidden_sizes, allow_empty=True)
            self.channels = validate_conv_options(self.input_shape, self.channels, self.kernel_size, self.stride,
                                                  self.padding,
                                                  self.norm, self.activation, 0.0, "stride", self.upsample)
        check_choice("recon_loss", self.recon_loss, VAE_RECON_LOSSES)
        if self.recon_loss == "bernoulli" and self.output_range != "0_1":
            raise ConfigError(f"recon_loss='bernoulli' needs pixels in [0, 1] but output_range is {self.output_range!r}",
                              fix="use recon_loss='mse' or 'l1' with output_range '-1_1', or set output_range='0_1'")
        check_float("recon_sigma", self.recon_sigma, minimum=0.0, exclusive_min=True)
        check_float("kl_warmup_epochs", self.kl_warmup_epochs, minimum=0.0)


@dataclass
class BetaVAEConfig(VAEConfig):
    """Options of ``beta_vae``: those of ``vae`` plus ``beta`` (> 0), the KL weight.

    Example:
        >>> BetaVAEConfig(beta=2.0).beta
        2.0
    """

    beta: float = 4.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_float("beta", self.beta, minimum=0.0, exclusive_min=True)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, exp(logvar)) || N(0, I))`` per row, in nats.

    Example:
        >>> gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3))
        tensor([0., 0.])
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


@register_model("vae", config=VAEConfig)
class VAE(ReprModel):
    """Variational autoencoder with a diagonal Gaussian posterior (see the module docstring).

    Example:
        >>> m = VAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=2, arch="fc", hidden_sizes=(16,)))
        >>> mu, logvar = m.encode_distribution(torch.rand(4, 1, 8, 8))
        >>> mu.shape, logvar.shape
        (torch.Size([4, 2]), torch.Size([4, 2]))
    """

    is_variational = True
    config: VAEConfig

    def __init__(self, config: VAEConfig) -> None:
        super().__init__(config)
        c = config
        self.code_size = int(c.latent_dim)
        self.beta = float(getattr(c, "beta", 1.0))
        self.kl_weight: float = self.beta
        if c.arch == "fc":
            opts: dict[str, Any] = dict(norm=c.norm, activation=c.activation)
            self.encoder: nn.Module = build_fc_encoder(c.input_shape, c.hidden_sizes, 2 * c.latent_dim, **opts)
            self.decoder: nn.Module = build_fc_decoder(c.input_shape, c.hidden_sizes, c.latent_dim, **opts)
        else:
            stages, plans = build_conv_encoder(c.input_shape, c.channels, kernel_size=c.kernel_size, stride=c.stride,
                                               padding=c.padding, norm=c.norm, activation=c.activation)
            feat = (c.channels[-1], *plans[-1].out_size)
            enc = OrderedDict(stages.named_children())
            enc["to_latent"] = build_dense_to_latent(feat, 2 * c.latent_dim)  # type: ignore[arg-type]
            dec: OrderedDict[str, nn.Module] = OrderedDict()
            dec["from_latent"] = build_dense_from_latent(c.latent_dim, feat, norm=c.norm,  # type: ignore[arg-type]
                                                         activation=c.activation)
            dec.update(build_conv_decoder(plans, norm=c.norm, activation=c.activation,
                                          upsample=c.upsample).named_children())
            self.encoder = nn.Sequential(enc)
            self.decoder = nn.Sequential(dec)
        self.out_act = output_activation(c.output_range)
        init_weights(self, c.activation)

    # -- encoder / decoder -----------------------------------------------------------------
    def encode_distribution(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters ``(mu, logvar)``, each ``(N, latent_dim)``."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, soft_bound(logvar)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean ``(N, latent_dim)`` (the deterministic representation)."""
        return self.encode_distribution(x)[0]

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder output before the output activation."""
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Mean image ``(N, C, H, W)`` of ``p(x|z)`` in the model's output range."""
        return self.out_act(self.decoder(z))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode ``n`` draws from the prior ``N(0, I)`` (no gradients; call ``eval()`` first).

        ``generator`` (on any device) makes the draw reproducible.

        Example:
            >>> m = VAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=2, arch="fc", hidden_sizes=(16,))).eval()
            >>> m.sample(3, generator=torch.Generator().manual_seed(1)).shape
            torch.Size([3, 1, 8, 8])
        """
        check_int("n", n, minimum=1)
        param = next(self.parameters())
        noise_device = generator.device if generator is not None else param.device
        z = torch.randn(n, self.config.latent_dim, generator=generator, device=noise_device)
        return self.decode(z.to(device=param.device, dtype=param.dtype))

    # -- objective -------------------------------------------------------------------------
    def kl_weight_at(self, progress: float) -> float:
        """``beta * min(1, progress / kl_warmup_epochs)`` (``beta`` without warm-up).

        Example:
            >>> m = VAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=2, arch="fc", kl_warmup_epochs=4))
            >>> [m.kl_weight_at(e) for e in (0, 1, 4, 9)]
            [0.0, 0.25, 1.0, 1.0]
        """
        warm = float(self.config.kl_warmup_epochs)
        if warm <= 0:
            return self.beta
        return self.beta * min(1.0, max(0.0, float(progress)) / warm)

    def on_epoch_start(self, epoch: int) -> None:
        """Set ``kl_weight`` for epoch ``epoch`` (0-based: epochs completed so far)."""
        self.kl_weight = self.kl_weight_at(epoch)

    def training_step(self, x: torch.Tensor, ctx: StepContext) -> dict[str, torch.Tensor]:
        """Update ``kl_weight`` from ``ctx.progress`` (per-step warm-up), then one optimiser step."""
        self.kl_weight = self.kl_weight_at(ctx.progress)
        return super().training_step(x, ctx)

    def nll(self, x: torch.Tensor, logits: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
        """``-log p(x|z)`` per image in nats, for decoder ``logits`` and mean image ``recon``.

        Example:
            >>> m = VAE(VAEConfig(input_shape=(1, 2, 2), latent_dim=1, arch="fc", recon_loss="mse"))
            >>> x = torch.zeros(1, 1, 2, 2)
            >>> round(float(m.nll(x, x, x)), 4)  # 4 pixels: 2 * log(2 * pi * 0.01)
            -5.5346
        """
        kind = self.config.recon_loss
        if kind == "bernoulli":
            per_pixel = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
            return per_pixel.flatten(1).sum(1)
        d = x[0].numel()
        s = float(self.config.recon_sigma)
        if kind == "mse":
            sq = (x - recon).pow(2).flatten(1).sum(1)
            return 0.5 * sq / s**2 + 0.5 * d * math.log(2 * math.pi * s**2)
        ab = (x - recon).abs().flatten(1).sum(1)
        return ab / s + d * math.log(2 * s)

    def _posterior_sample(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        if self.training:
            eps = torch.randn_like(mu)
        else:
            gen = torch.Generator(device=mu.device).manual_seed(_EVAL_SEED)
            eps = torch.randn(mu.shape, generator=gen, device=mu.device, dtype=mu.dtype)
        return mu + eps * (0.5 * logvar).exp()

    def forward(self, x: torch.Tensor) -> ModelOutput:
        mu, logvar = self.encode_distribution(x)
        z = self._posterior_sample(mu, logvar)
        logits = self.decode_logits(z)
        recon = self.out_act(logits)
        nll = self.nll(x, logits, recon)
        kl = gaussian_kl(mu, logvar)
        loss = (nll + self.kl_weight * kl).mean()
        terms = {"loss": loss, "nll": nll.mean(), "kl": kl.mean(), "elbo": -(nll + kl).mean(),
                 "mse": F.mse_loss(recon, x)}
        return ModelOutput(loss=loss, terms=terms, reconstruction=recon, latent=mu,
                           extras={"mu": mu, "logvar": logvar, "z": z,
                                   "elbo_per_image": -(nll + kl).detach(), "kl_per_image": kl.detach()})


@register_model("beta_vae", config=BetaVAEConfig)
class BetaVAE(VAE):
    """β-VAE: the VAE objective with the KL term weighted by ``beta`` (default 4).

    Example:
        >>> m = BetaVAE(BetaVAEConfig(input_shape=(1, 8, 8), latent_dim=2, arch="fc", beta=2.0))
        >>> m.kl_weight
        2.0
    """

    config: BetaVAEConfig
