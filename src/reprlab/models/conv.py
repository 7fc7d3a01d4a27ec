"""Convolutional autoencoder ``conv_ae`` and the conv encoder/decoder builders it shares with the VAE.

Encoder: one stage per entry of ``channels``; a stage is ``conv(kernel_size) -> norm ->
activation`` that halves the spatial size, either by the conv's stride
(``downsample="stride"``) or by a 2x2 max/average pool after a stride-1 conv. Then a
bottleneck: ``"dense"`` (flatten + linear to ``latent_dim``) or ``"conv"`` (1x1 conv to
``latent_dim`` channels; the code is that feature map, flattened, so ``code_size`` is
``latent_dim * h * w``). The decoder mirrors the encoder with x2 upsampling blocks
(``"transpose"``, ``"nearest"`` or ``"pixelshuffle"``) and a final 3x3 conv to the image
channels, followed by the output activation. ``blocks_per_stage`` residual blocks follow each
encoder and decoder stage (0 by default; ``configs/conv_ae.yaml`` uses 1: at latent 32 on
Fashion-MNIST, 24.1 dB PSNR within 15 CPU-minutes in bf16, BENCHMARKS.md).

Any input size works. All spatial sizes are computed from ``input_shape`` when the config
is validated (:func:`plan_conv_stages`); odd sizes round up when halved (50 -> 25 -> 13),
and after each upsampling block the decoder **crops** the extra bottom row/right column
(13 -> 26 -> 25) with :class:`~reprlab.models.layers.FitTo`, so the reconstruction has
exactly the input's shape. Without the default padding (``kernel_size // 2``) the encoder
shrinks faster than it halves (kernel 5, padding 0: 28 -> 12 -> 4); the decoder's map is
then short of the stage's size (4 -> 8 for 12) and ``FitTo`` resizes it rather than
leaving a zero border the decoder could never fill. A stage whose input cannot be halved
any more, or whose kernel is larger than its input plus padding, is rejected when the
config is built, with the stage index, the sizes and a fix.

Example:
    >>> import torch
    >>> from reprlab.models import create_model
    >>> m = create_model("conv_ae", input_shape=(3, 50, 50), latent_dim=8, channels=(8, 16))
    >>> m(torch.rand(2, 3, 50, 50)).reconstruction.shape
    torch.Size([2, 3, 50, 50])
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

from torch import nn

from reprlab.base.errors import ConfigError, ModelError
from reprlab.models.base import ModelConfig, check_choice, check_int
from reprlab.models.layers import (ACTIVATIONS, NORMS, UPSAMPLE_MODES, Autoencoder, FitTo, check_channels,
                                   check_dropout, check_recon_loss, make_activation, make_norm, make_upsample,
                                   residual_blocks)
from reprlab.models.registry import register_model

DOWNSAMPLE_MODES: tuple[str, ...] = ("stride", "maxpool", "avgpool")
BOTTLENECKS: tuple[str, ...] = ("dense", "conv")


@dataclass(frozen=True)
class ConvStagePlan:
    """Sizes of one encoder stage, computed from the input shape.

    Example:
        >>> plan_conv_stages((1, 28, 28), (8, 16))[1].out_size
        (7, 7)
    """

    index: int
    in_channels: int
    out_channels: int
    in_size: tuple[int, int]
    out_size: tuple[int, int]
    downsamples: bool


def format_size(size: tuple[int, ...]) -> str:
    """``(28, 28)`` -> ``"28x28"``.

    Example:
        >>> format_size((25, 25))
        '25x25'
    """
    return "x".join(str(int(v)) for v in size)


def plan_conv_stages(input_shape: tuple[int, int, int], channels: tuple[int, ...], kernel_size: int = 3,
                     stride: int = 2, padding: int | None = None, downsample: str = "stride") -> list[ConvStagePlan]:
    """Compute (and check) each encoder stage's input and output size.

    With ``downsample="stride"`` a stage outputs ``floor((n + 2p - k) / stride) + 1``;
    with pooling, a stride-1 conv gives ``m = n + 2p - k + 1`` and the 2x2 pool (ceil
    mode) ``ceil(m / 2)``. Raises :class:`ModelError` naming the stage and sizes when a
    stage receives a 1-pixel map it should halve, or when ``kernel_size`` exceeds the
    stage's input plus padding (some weights would only ever see zero padding).

    Example:
        >>> [format_size(s.out_size) for s in plan_conv_stages((3, 50, 50), (8, 16, 32))]
        ['25x25', '13x13', '7x7']
    """
    k = kernel_size
    p = k // 2 if padding is None else padding
    halves = downsample != "stride" or stride == 2
    size = (int(input_shape[1]), int(input_shape[2]))
    trail = [format_size(size)]
    plans: list[ConvStagePlan] = []
    in_ch = int(input_shape[0])
    for i, ch in enumerate(channels):
        n_min = min(size)
        if halves and n_min < 2:
            raise ModelError(
                f"too many downsampling stages for a {format_size(input_shape[1:])} input: stage {i} "
                f"(channels[{i}]={ch}) receives a {format_size(size)} map that cannot be halved (sizes: {' -> '.join(trail)})",
                fix=f"use at most {i} stages (e.g. channels={list(channels[:i])}), or enlarge the input (data.resize)")
        if k > n_min + p:
            raise ModelError(
                f"conv layer {i} (channels[{i}]={ch}): kernel_size={k} is too large for its {format_size(size)} input "
                f"with padding {p} (at most input + padding = {n_min + p}; larger kernels have weights that only "
                f"ever see zero padding; sizes: {' -> '.join(trail)})",
                fix=f"use a smaller kernel_size (<= {n_min + p}), "
                    + (f"fewer stages (channels={list(channels[:i])}), " if i > 0 else "")
                    + "or enlarge the input (data.resize)")
        if downsample == "stride":
            out = tuple((n + 2 * p - k) // stride + 1 for n in size)
        else:
            out = tuple(math.ceil((n + 2 * p - k + 1) / 2) for n in size)
        plans.append(ConvStagePlan(i, in_ch, ch, size, out, halves))  # type: ignore[arg-type]
        size, in_ch = out, ch  # type: ignore[assignment]
        trail.append(format_size(size))
    return plans


def build_conv_encoder(input_shape: tuple[int, int, int], channels: tuple[int, ...], *, kernel_size: int = 3,
                       stride: int = 2, padding: int | None = None, norm: str = "batch", activation: str = "relu",
                       dropout: float = 0.0, downsample: str = "stride",
                       blocks_per_stage: int = 0) -> tuple[nn.Sequential, list[ConvStagePlan]]:
    """The conv stages (no bottleneck) and their size plan.

    Returns ``(stages, plans)``; ``stages`` maps ``(N, C, H, W)`` to
    ``(N, channels[-1], *plans[-1].out_size)``. ``blocks_per_stage`` residual blocks
    (:class:`~reprlab.models.layers.ResidualBlock`) follow each stage's downsampling, at its output size.

    Example:
        >>> import torch
        >>> enc, plans = build_conv_encoder((1, 28, 28), (8, 16))
        >>> enc(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 16, 7, 7])
    """
    plans = plan_conv_stages(input_shape, channels, kernel_size, stride, padding, downsample)
    p = kernel_size // 2 if padding is None else padding
    conv_stride = stride if downsample == "stride" else 1
    stages: OrderedDict[str, nn.Module] = OrderedDict()
    for plan in plans:
        layers: list[nn.Module] = [
            nn.Conv2d(plan.in_channels, plan.out_channels, kernel_size, stride=conv_stride, padding=p,
                      bias=norm == "none"),
            make_norm(norm, plan.out_channels),
            make_activation(activation),
        ]
        if downsample == "maxpool":
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
        elif downsample == "avgpool":
            layers.append(nn.AvgPool2d(2, ceil_mode=True))
        layers += residual_blocks(plan.out_channels, blocks_per_stage, norm=norm, activation=activation)
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        stages[f"stage{plan.index}"] = nn.Sequential(*layers)
    return nn.Sequential(stages), plans


def build_conv_decoder(plans: list[ConvStagePlan], *, norm: str = "batch", activation: str = "relu",
                       dropout: float = 0.0, upsample: str = "transpose", blocks_per_stage: int = 0) -> nn.Sequential:
    """Mirror of :func:`build_conv_encoder`: feature map to image logits.

    Each encoder stage ``i`` (in reverse) becomes ``upsample(x2) -> crop to the stage's
    input size -> norm -> activation -> blocks_per_stage residual blocks`` (a 3x3 conv instead
    of the upsampling for stages that did not downsample); a final 3x3 conv maps to the image channels.

    Example:
        >>> import torch
        >>> _, plans = build_conv_encoder((3, 50, 50), (8, 16))
        >>> build_conv_decoder(plans)(torch.zeros(2, 16, 13, 13)).shape
        torch.Size([2, 3, 50, 50])
    """
    blocks: OrderedDict[str, nn.Module] = OrderedDict()
    bias = norm == "none"
    for plan in reversed(plans):
        out_ch = plans[plan.index - 1].out_channels if plan.index > 0 else plans[0].out_channels
        if plan.downsamples:
            up = make_upsample(upsample, plan.out_channels, out_ch, bias=bias)
            produced = tuple(2 * n for n in plan.out_size)
        else:
            up = nn.Conv2d(plan.out_channels, out_ch, 3, padding=1, bias=bias)
            produced = plan.out_size
        layers: list[nn.Module] = [up]
        if produced != plan.in_size:
            layers.append(FitTo(plan.in_size))
        layers += [make_norm(norm, out_ch), make_activation(activation)]
        layers += residual_blocks(out_ch, blocks_per_stage, norm=norm, activation=activation)
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        blocks[f"stage{plan.index}"] = nn.Sequential(*layers)
    blocks["head"] = nn.Conv2d(plans[0].out_channels, plans[0].in_channels, 3, padding=1)
    return nn.Sequential(blocks)


def build_dense_to_latent(feature_shape: tuple[int, int, int], out_features: int) -> nn.Sequential:
    """``Flatten -> Linear``: feature map ``feature_shape`` to ``out_features`` numbers.

    Example:
        >>> build_dense_to_latent((16, 7, 7), 8)[1]
        Linear(in_features=784, out_features=8, bias=True)
    """
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(feature_shape), out_features))


def build_dense_from_latent(latent_dim: int, feature_shape: tuple[int, int, int], *, norm: str = "batch",
                            activation: str = "relu") -> nn.Sequential:
    """``Linear -> reshape -> norm -> activation``: a code back to a feature map.

    Example:
        >>> import torch
        >>> build_dense_from_latent(8, (16, 7, 7))(torch.zeros(2, 8)).shape
        torch.Size([2, 16, 7, 7])
    """
    return nn.Sequential(nn.Linear(latent_dim, math.prod(feature_shape), bias=norm == "none"),
                         nn.Unflatten(1, tuple(feature_shape)), make_norm(norm, feature_shape[0]),
                         make_activation(activation))


def validate_conv_options(input_shape: tuple[int, int, int], channels: object, kernel_size: object, stride: object,
                          padding: object, norm: str, activation: str, dropout: object, downsample: str,
                          upsample: str) -> tuple[int, ...]:
    """Validate the conv options shared by ``conv_ae`` and the conv VAE; return ``channels`` as a tuple.

    Runs :func:`plan_conv_stages`, so impossible sizes fail here, before any layer is built.

    Example:
        >>> validate_conv_options((1, 28, 28), [8, 16], 3, 2, None, "batch", "relu", 0.0, "stride", "nearest")
        (8, 16)
    """
    chans = check_channels("channels", channels)
    check_int("kernel_size", kernel_size, minimum=1)
    check_int("stride", stride, minimum=1, maximum=2)
    if padding is not None:
        check_int("padding", padding, minimum=0)
        if padding >= kernel_size:  # type: ignore[operator]
            raise ConfigError(f"padding={padding} must be smaller than kernel_size={kernel_size}",
                              fix="leave padding unset (kernel_size // 2) or lower it")
    check_choice("norm", norm, NORMS)
    check_choice("activation", activation, ACTIVATIONS)
    check_dropout("dropout", dropout)  # type: ignore[arg-type]
    check_choice("downsample", downsample, DOWNSAMPLE_MODES)
    check_choice("upsample", upsample, UPSAMPLE_MODES)
    if downsample != "stride" and stride != 2:
        raise ConfigError(f"stride={stride} only applies to downsample='stride', but downsample is {downsample!r} "
                          "(stride-1 conv + 2x2 pool)", fix="leave stride at 2 or set downsample='stride'")
    plan_conv_stages(input_shape, chans, kernel_size, stride, padding, downsample)  # type: ignore[arg-type]
    return chans


@dataclass
class ConvAEConfig(ModelConfig):
    """Options of ``conv_ae``.

    ``channels`` has one entry per stage; ``stride`` (1 or 2) is the conv stride for
    ``downsample="stride"`` (1 keeps the size); ``padding`` defaults to
    ``kernel_size // 2``; ``blocks_per_stage`` residual blocks (3x3, the stage's width) after each
    encoder stage and each decoder stage (0: plain conv stages); ``loss`` is ``"mse"``, ``"l1"``, ``"bce"`` (needs
    ``output_range="0_1"``) or ``"psnr"`` (the mean per-image PSNR, maximised; see
    :func:`~reprlab.models.layers.reconstruction_terms`).

    Example:
        >>> ConvAEConfig(channels=[16, 32], upsample="pixelshuffle").channels
        (16, 32)
    """

    channels: tuple = (32, 64)
    kernel_size: int = 3
    stride: int = 2
    padding: int | None = None
    norm: str = "batch"
    activation: str = "relu"
    dropout: float = 0.0
    downsample: str = "stride"
    upsample: str = "transpose"
    bottleneck: str = "dense"
    blocks_per_stage: int = 0
    loss: str = "mse"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("blocks_per_stage", self.blocks_per_stage, minimum=0)
        self.channels = validate_conv_options(self.input_shape, self.channels, self.kernel_size, self.stride,
                                              self.padding, self.norm, self.activation, self.dropout,
                                              self.downsample, self.upsample)
        check_choice("bottleneck", self.bottleneck, BOTTLENECKS)
        check_recon_loss(self.loss, self.output_range)


@register_model("conv_ae", config=ConvAEConfig)
class ConvAE(Autoencoder):
    """Convolutional autoencoder (see the module docstring for the architecture).

    ``code_size`` is ``latent_dim`` with the dense bottleneck and
    ``latent_dim * h * w`` with the conv bottleneck.

    Example:
        >>> m = ConvAE(ConvAEConfig(input_shape=(1, 28, 28), latent_dim=4, bottleneck="conv"))
        >>> m.code_size, m.feature_shape
        (196, (4, 7, 7))
    """

    config: ConvAEConfig

    def __init__(self, config: ConvAEConfig) -> None:
        super().__init__(config, loss=config.loss)
        c = config
        stages, plans = build_conv_encoder(c.input_shape, c.channels, kernel_size=c.kernel_size, stride=c.stride,
                                           padding=c.padding, norm=c.norm, activation=c.activation,
                                           dropout=float(c.dropout), downsample=c.downsample,
                                           blocks_per_stage=c.blocks_per_stage)
        h, w = plans[-1].out_size
        feat = (c.channels[-1], h, w)
        enc: OrderedDict[str, nn.Module] = OrderedDict(stages.named_children())
        dec: OrderedDict[str, nn.Module] = OrderedDict()
        if c.bottleneck == "dense":
            self.feature_shape: tuple[int, int, int] = feat
            enc["to_latent"] = build_dense_to_latent(feat, c.latent_dim)
            dec["from_latent"] = build_dense_from_latent(c.latent_dim, feat, norm=c.norm, activation=c.activation)
        else:
            self.feature_shape = (c.latent_dim, h, w)
            self.code_size = c.latent_dim * h * w
            enc["to_latent"] = nn.Sequential(nn.Conv2d(feat[0], c.latent_dim, 1), nn.Flatten())
            dec["from_latent"] = nn.Sequential(nn.Unflatten(1, self.feature_shape),
                                               nn.Conv2d(c.latent_dim, feat[0], 1, bias=c.norm == "none"),
                                               make_norm(c.norm, feat[0]), make_activation(c.activation))
        dec.update(build_conv_decoder(plans, norm=c.norm, activation=c.activation, dropout=float(c.dropout),
                                      upsample=c.upsample, blocks_per_stage=c.blocks_per_stage).named_children())
        self.encoder = nn.Sequential(enc)
        self.decoder = nn.Sequential(dec)
        self._finish(c.activation)
