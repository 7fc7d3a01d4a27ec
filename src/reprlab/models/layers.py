"""Building blocks shared by the model zoo: norms, activations, up/downsampling, residual blocks.

Every factory validates its name and raises :class:`~reprlab.base.errors.ConfigError` naming the
parameter and the accepted values, so a typo in a config fails at construction time.

Example:
    >>> import torch
    >>> from reprlab.models.layers import make_upsample, ResidualBlock
    >>> up = make_upsample("pixelshuffle", 16, 8)
    >>> up(torch.zeros(2, 16, 7, 7)).shape
    torch.Size([2, 8, 14, 14])
    >>> ResidualBlock(8)(torch.zeros(2, 8, 5, 5)).shape
    torch.Size([2, 8, 5, 5])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from reprlab.base.errors import ConfigError
from reprlab.models.base import ModelConfig, ModelOutput, ReprModel, check_choice

NORMS: tuple[str, ...] = ("batch", "instance", "group", "none")
ACTIVATIONS: tuple[str, ...] = ("relu", "leaky_relu", "elu", "gelu", "silu", "tanh")
UPSAMPLE_MODES: tuple[str, ...] = ("transpose", "nearest", "pixelshuffle")
OUTPUT_RANGES: tuple[str, ...] = ("0_1", "-1_1")

# Gain used by kaiming init for each activation (leaky_relu with PyTorch's default slope).
_INIT_NONLINEARITY = {"relu": "relu", "leaky_relu": "leaky_relu", "elu": "relu", "gelu": "relu",
                      "silu": "relu", "tanh": "tanh"}


def make_norm(kind: str, channels: int, *, dims: int = 2, name: str = "norm") -> nn.Module:
    """Normalisation layer for ``channels`` features.

    ``kind`` is ``"batch"``, ``"instance"`` (affine), ``"group"`` (``gcd(8, channels)``
    groups, so the group count always divides ``channels``) or ``"none"`` (identity).
    ``dims=1`` gives the layer for ``(N, C)`` features (``"instance"`` and ``"group"``
    then normalise the whole feature vector: LayerNorm / one group).

    Example:
        >>> make_norm("group", 12).num_groups
        4
    """
    check_choice(name, kind, NORMS)
    if kind == "none":
        return nn.Identity()
    if kind == "batch":
        return nn.BatchNorm2d(channels) if dims == 2 else nn.BatchNorm1d(channels)
    if kind == "instance":
        if dims == 2:
            return nn.InstanceNorm2d(channels, affine=True)
        return nn.LayerNorm(channels)
    return nn.GroupNorm(math.gcd(8, channels) if dims == 2 else 1, channels)


def make_activation(name: str, *, param: str = "activation") -> nn.Module:
    """Activation module by name: relu, leaky_relu (slope 0.2), elu, gelu, silu, tanh.

    Example:
        >>> make_activation("leaky_relu")
        LeakyReLU(negative_slope=0.2)
    """
    check_choice(param, name, ACTIVATIONS)
    return {
        "relu": lambda: nn.ReLU(),
        "leaky_relu": lambda: nn.LeakyReLU(0.2),
        "elu": lambda: nn.ELU(),
        "gelu": lambda: nn.GELU(),
        "silu": lambda: nn.SiLU(),
        "tanh": lambda: nn.Tanh(),
    }[name]()


def output_activation(output_range: str) -> nn.Module:
    """``Sigmoid`` for ``"0_1"``, ``Tanh`` for ``"-1_1"``.

    Example:
        >>> output_activation("-1_1")
        Tanh()
    """
    check_choice("output_range", output_range, OUTPUT_RANGES)
    return nn.Sigmoid() if output_range == "0_1" else nn.Tanh()


def init_weights(module: nn.Module, activation: str = "relu") -> None:
    """Kaiming-normal init (fan-in, matched to ``activation``) for conv/linear weights, zero biases.

    Norm layers keep weight 1 / bias 0. Modules that define ``reset_special()`` (e.g.
    :class:`ResidualBlock`, :class:`PixelShuffleUp`) re-apply their own init afterwards.

    Example:
        >>> init_weights(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()))
    """
    nonlinearity = _INIT_NONLINEARITY.get(activation, "relu")
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if nonlinearity == "leaky_relu":
                nn.init.kaiming_normal_(m.weight, a=0.2, nonlinearity="leaky_relu")
            else:
                nn.init.kaiming_normal_(m.weight, nonlinearity=nonlinearity)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    for m in module.modules():
        reset = getattr(m, "reset_special", None)
        if callable(reset):
            reset()


class PixelShuffleUp(nn.Module):
    """Sub-pixel upsampling x2: 3x3 conv to ``4 * out_channels`` then ``PixelShuffle(2)``.

    Weights use ICNR init (the four sub-pixel kernels start identical), which avoids
    checkerboard artefacts at the start of training.

    Example:
        >>> PixelShuffleUp(4, 2)(torch.zeros(1, 4, 3, 3)).shape
        torch.Size([1, 2, 6, 6])
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 4 * out_channels, 3, padding=1, bias=bias)
        self.shuffle = nn.PixelShuffle(2)
        self.reset_special()

    def reset_special(self) -> None:
        """ICNR: initialise one sub-kernel per output channel and copy it to the other three."""
        out4, cin, kh, kw = self.conv.weight.shape
        sub = torch.empty(out4 // 4, cin, kh, kw)
        nn.init.kaiming_normal_(sub, nonlinearity="relu")
        with torch.no_grad():
            self.conv.weight.copy_(sub.repeat_interleave(4, dim=0))
            if self.conv.bias is not None:
                self.conv.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))


def make_upsample(mode: str, in_channels: int, out_channels: int, *, bias: bool = True,
                  param: str = "upsample") -> nn.Module:
    """A block that doubles height and width and maps ``in_channels`` to ``out_channels``.

    ``"transpose"``: ``ConvTranspose2d(k=4, s=2, p=1)``; ``"nearest"``: nearest-neighbour
    x2 then conv3x3; ``"pixelshuffle"``: :class:`PixelShuffleUp`.

    Example:
        >>> make_upsample("nearest", 8, 4)(torch.zeros(1, 8, 5, 5)).shape
        torch.Size([1, 4, 10, 10])
    """
    check_choice(param, mode, UPSAMPLE_MODES)
    if mode == "transpose":
        return nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=bias)
    if mode == "nearest":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                             nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias))
    return PixelShuffleUp(in_channels, out_channels, bias=bias)


class ResidualBlock(nn.Module):
    """``act(x + norm(conv3x3(act(norm(conv3x3(x))))))`` with the channel count kept.

    The second norm's scale starts at zero (when the norm has one), so each block starts
    as the identity: deep stacks train stably from the first step.

    Example:
        >>> ResidualBlock(16, norm="group", activation="silu")(torch.zeros(2, 16, 4, 4)).shape
        torch.Size([2, 16, 4, 4])
    """

    def __init__(self, channels: int, norm: str = "batch", activation: str = "relu") -> None:
        super().__init__()
        bias = norm == "none"
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias)
        self.norm1 = make_norm(norm, channels)
        self.act1 = make_activation(activation)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias)
        self.norm2 = make_norm(norm, channels)
        self.act2 = make_activation(activation)

    def reset_special(self) -> None:
        """Zero the last norm's scale (identity at init); without a norm, shrink conv2 instead."""
        weight = getattr(self.norm2, "weight", None)
        with torch.no_grad():
            if isinstance(weight, torch.Tensor):
                weight.zero_()
            else:
                self.conv2.weight.mul_(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act1(self.norm1(self.conv1(x)))
        h = self.norm2(self.conv2(h))
        return self.act2(h + x)


def residual_blocks(channels: int, count: int, *, norm: str = "batch", activation: str = "relu") -> list[nn.Module]:
    """``count`` :class:`ResidualBlock` s of width ``channels`` (an empty list for 0), to splice into a stage.

    Example:
        >>> len(residual_blocks(8, 2, norm="group"))
        2
    """
    return [ResidualBlock(channels, norm=norm, activation=activation) for _ in range(count)]


class FitTo(nn.Module):
    """Crop (bottom/right) a feature map that is too large, or resize one that is too small, to ``(height, width)``.

    Decoders double the spatial size per stage; for sizes that are not a power-of-two
    multiple (e.g. 50 -> 25 -> 13 -> 26) this restores the encoder's size at that stage
    exactly (26 -> 25). An encoder whose convs shrink the map by more than half (padding
    below ``kernel_size // 2``: 28 -> 12 -> 4 with kernel 5 and no padding) leaves the
    decoder short (4 -> 8 for a 12x12 stage); the map is then resized (nearest
    neighbour) rather than zero-padded, since a zero border is a band of pixels the
    decoder could never reconstruct. It has no parameters.

    Example:
        >>> FitTo((25, 25))(torch.zeros(1, 3, 26, 26)).shape
        torch.Size([1, 3, 25, 25])
        >>> FitTo((12, 12))(torch.ones(1, 3, 8, 8)).amin().item()  # resized, no zero border
        1.0
    """

    def __init__(self, size: tuple[int, int]) -> None:
        super().__init__()
        self.size = (int(size[0]), int(size[1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        th, tw = self.size
        if h > th or w > tw:
            x = x[..., :min(h, th), :min(w, tw)]
        if h < th or w < tw:
            x = F.interpolate(x, size=(th, tw), mode="nearest")
        return x

    def extra_repr(self) -> str:
        return f"size={self.size}"


class PadToEven(nn.Module):
    """Zero-pad one row/column at the bottom/right when height/width is odd.

    Used before a 2x2 stride-2 convolution so that no pixel is dropped: the output
    size is ``ceil(n / 2)``.

    Example:
        >>> PadToEven()(torch.zeros(1, 1, 7, 8)).shape
        torch.Size([1, 1, 8, 8])
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % 2 or w % 2:
            x = F.pad(x, (0, w % 2, 0, h % 2))
        return x


def check_dropout(name: str, value: float) -> None:
    """Raise :class:`ConfigError` unless ``0 <= value < 1``.

    Example:
        >>> check_dropout("dropout", 0.1)
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ConfigError(f"{name} must be a number in [0, 1), got {value!r}", fix=f"set {name} to e.g. 0.1 (or 0 to disable)")
    if not 0.0 <= float(value) < 1.0:
        raise ConfigError(f"{name} must be in [0, 1), got {value}",
                          fix=f"set {name} to a probability below 1, e.g. 0.1 (0 disables dropout)")


def check_channels(name: str, value: object, *, allow_empty: bool = False) -> tuple[int, ...]:
    """Validate a tuple/list of positive ints (channel or layer sizes) and return it as a tuple.

    Example:
        >>> check_channels("channels", [32, 64])
        (32, 64)
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)):
        raise ConfigError(f"{name} must be a list of positive integers, got {value!r}", fix=f"e.g. {name}=[32, 64]")
    if not value and not allow_empty:
        raise ConfigError(f"{name} must not be empty", fix=f"give at least one size, e.g. {name}=[32, 64]")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"{name} must contain positive integers, got {list(value)!r}",
                              fix=f"e.g. {name}=[32, 64]")
    return tuple(int(v) for v in value)


# -- deterministic autoencoder skeleton shared by fc_ae, conv_ae and resnet_ae -------------------

RECON_LOSSES: tuple[str, ...] = ("mse", "l1", "bce", "psnr")
#: floor on a per-image MSE inside the ``"psnr"`` loss (a perfect image would give log(0))
PSNR_LOSS_MSE_FLOOR = 1e-10


def check_recon_loss(loss: str, output_range: str, *, name: str = "loss") -> None:
    """Validate an autoencoder reconstruction loss; ``"bce"`` needs ``output_range="0_1"``.

    Example:
        >>> check_recon_loss("bce", "0_1")
    """
    check_choice(name, loss, RECON_LOSSES)
    if loss == "bce" and output_range != "0_1":
        raise ConfigError(f"{name}='bce' needs targets in [0, 1] but output_range is {output_range!r}",
                          fix=f"use {name}='mse' or 'l1' with output_range '-1_1', or set output_range='0_1' (data.scale='0_1')")


def reconstruction_terms(x: torch.Tensor, logits: torch.Tensor, recon: torch.Tensor,
                         loss: str) -> dict[str, torch.Tensor]:
    """Per-pixel reconstruction losses: always ``"mse"``, plus ``"l1"``/``"bce"``/``"neg_psnr"`` when used.

    ``"loss"`` is the selected one. BCE is computed from ``logits`` (before the sigmoid)
    for numerical stability. ``"psnr"`` minimises ``neg_psnr``, the mean over images of
    ``10 * log10(per-image MSE)``: minus the mean per-image PSNR for a data range of 1, the
    figure the reconstruction metrics report. Against plain MSE it weights each image by the
    inverse of its own error, so well-reconstructed images keep improving; the pixel MSE can
    end a little higher. (For images in [-1, 1] it differs from minus the reported PSNR by a
    constant, so the gradient is the same.)

    Example:
        >>> x = torch.rand(2, 1, 4, 4)
        >>> sorted(reconstruction_terms(x, x, x, "l1"))
        ['l1', 'loss', 'mse']
    """
    terms = {"mse": F.mse_loss(recon, x)}
    if loss == "l1":
        terms["l1"] = F.l1_loss(recon, x)
    elif loss == "bce":
        terms["bce"] = F.binary_cross_entropy_with_logits(logits, x)
    elif loss == "psnr":
        per_image = (recon - x).pow(2).flatten(1).mean(1).clamp_min(PSNR_LOSS_MSE_FLOOR)
        terms["neg_psnr"] = 10.0 * torch.log10(per_image).mean()
    terms["loss"] = terms["neg_psnr" if loss == "psnr" else loss]
    return terms


class Autoencoder(ReprModel):
    """A deterministic autoencoder: ``encoder(x) -> z`` and ``decoder(z) -> logits``.

    ``decode`` applies the output activation (sigmoid or tanh) to the decoder's logits.
    Subclasses build ``encoder``/``decoder`` and call :meth:`_finish` (weight init).
    ``code_size`` is the number of features :meth:`encode` returns per image.

    Example:
        >>> from reprlab.models import create_model
        >>> m = create_model("fc_ae", input_shape=(1, 8, 8), latent_dim=3, hidden_sizes=(16,))
        >>> m.encode(torch.rand(5, 1, 8, 8)).shape
        torch.Size([5, 3])
    """

    encoder: nn.Module
    decoder: nn.Module

    def __init__(self, config: ModelConfig, loss: str = "mse") -> None:
        super().__init__(config)
        self.loss_name = loss
        self.out_act = output_activation(config.output_range)
        self.code_size = int(config.latent_dim)

    def _finish(self, activation: str) -> None:
        init_weights(self, activation)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Code ``(N, code_size)`` of a batch ``(N, C, H, W)``."""
        return self.encoder(x)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder output before the output activation."""
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images ``(N, C, H, W)`` in the model's output range."""
        return self.out_act(self.decoder(z))

    def forward(self, x: torch.Tensor) -> ModelOutput:
        z = self.encode(x)
        logits = self.decode_logits(z)
        recon = self.out_act(logits)
        terms = reconstruction_terms(x, logits, recon, self.loss_name)
        return ModelOutput(loss=terms["loss"], terms=terms, reconstruction=recon, latent=z)
