"""Tests of the model zoo: every registered model on several input sizes, the conv/resnet size
handling, hyperparameter validation and the VAE objective."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from reprlab.base.errors import ConfigError, ModelError, ReprlabError
from reprlab.models import create_model, list_models, load_model, make_config, save_model
from reprlab.models.registry import get_model_entry
from reprlab.models.layers import (FitTo, PadToEven, ResidualBlock, make_activation, make_norm, make_upsample,
                                   output_activation)

SHAPES = [(1, 28, 28), (3, 32, 32), (3, 50, 50), (3, 64, 64)]

# Tiny versions of each model so the whole file runs in seconds.
TINY: dict[str, dict] = {
    "fc_ae": {"hidden_sizes": (16,)},
    "conv_ae": {"channels": (4, 8)},
    "resnet_ae": {"channels": (4, 8)},
    "vae": {"channels": (4, 8)},
    "beta_vae": {"channels": (4, 8)},
}


pytestmark = pytest.mark.usefixtures("single_thread")

#: The models that reconstruct (classifiers set ``reconstructs = False``; tests/test_resnet18.py and
#: tests/test_classify.py cover them).
AUTOENCODERS = [n for n in list_models() if getattr(get_model_entry(n)[0], "reconstructs", True)]


def tiny(name: str, shape=(1, 28, 28), **kwargs):
    opts = {"input_shape": shape, "latent_dim": 4, **TINY.get(name, {}), **kwargs}
    return create_model(name, **opts)


def batch(shape, n: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed))


class FakeCtx:
    """The engine's StepContext, reduced to what ``training_step`` uses."""

    def __init__(self, model, progress: float = 0.0) -> None:
        self.model = model
        self.epoch, self.step_count, self.progress = int(progress), 0, progress
        self.opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def forward(self, x):
        return self.model(x)

    def step(self, name, loss):
        assert name == "main"
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()


def test_registry_lists_the_zoo():
    assert {"fc_ae", "conv_ae", "resnet_ae", "vae", "beta_vae"} <= set(list_models())


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", AUTOENCODERS)
def test_model_builds_runs_and_round_trips(name, shape, tmp_path):
    torch.manual_seed(0)
    model = tiny(name, shape)
    x = batch(shape)

    out = model(x)
    assert out.reconstruction.shape == x.shape
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert "loss" in out.terms and torch.equal(out.terms["loss"], out.loss)
    assert all(v.ndim == 0 and torch.isfinite(v) for v in out.terms.values())
    lo, hi = model.output_range
    recon = out.reconstruction.detach()
    assert float(recon.min()) >= lo and float(recon.max()) <= hi

    out.loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert not no_grad, f"parameters without gradient: {no_grad}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    model.zero_grad(set_to_none=True)

    z = model.encode(x)
    assert z.ndim == 2 and z.shape[0] == x.shape[0]
    if hasattr(model, "code_size"):  # the built-in zoo reports its code size
        assert z.shape[1] == model.code_size
    assert model.decode(z).shape == x.shape

    model.check_input()
    model.sanity_check(x)

    model.eval()
    with torch.no_grad():
        before = model(x)
    stem = save_model(model, tmp_path / "model")
    loaded = load_model(stem).eval()
    assert type(loaded) is type(model) and loaded.config == model.config
    with torch.no_grad():
        after = loaded(x)
    assert torch.equal(before.reconstruction, after.reconstruction)
    assert before.terms.keys() == after.terms.keys()
    for k in before.terms:
        assert torch.equal(before.terms[k], after.terms[k]), k


@pytest.mark.parametrize("name", AUTOENCODERS)
def test_default_config_builds_for_fashion_mnist(name):
    model = create_model(name, input_shape=(1, 28, 28), latent_dim=32)
    out = model(batch((1, 28, 28), n=2))
    assert out.reconstruction.shape == (2, 1, 28, 28)


@pytest.mark.parametrize("upsample", ["transpose", "nearest", "pixelshuffle"])
@pytest.mark.parametrize("downsample", ["stride", "maxpool", "avgpool"])
def test_conv_ae_up_and_downsample_modes(upsample, downsample):
    for shape in [(1, 28, 28), (3, 50, 50)]:
        model = tiny("conv_ae", shape, channels=(4, 8, 8), upsample=upsample, downsample=downsample)
        x = batch(shape, n=2)
        out = model(x)
        assert out.reconstruction.shape == x.shape
        out.loss.backward()
        assert all(p.grad is not None for p in model.parameters())
        model.check_input()


def test_conv_ae_sizes_for_odd_inputs():
    model = tiny("conv_ae", (3, 50, 50), channels=(4, 8, 8))
    assert model.feature_shape == (8, 7, 7)  # 50 -> 25 -> 13 -> 7
    assert sum(isinstance(m, FitTo) for m in model.decoder.modules()) == 2  # crops 14->13 and 26->25
    resnet = tiny("resnet_ae", (3, 50, 50), channels=(4, 8, 8))
    assert resnet.feature_shape == (8, 7, 7)


@pytest.mark.parametrize("options", [dict(kernel_size=5), dict(kernel_size=4), dict(kernel_size=3, padding=0),
                                     dict(kernel_size=5, downsample="maxpool"), dict(stride=1, channels=(4,))])
def test_conv_ae_kernel_and_padding_variants(options):
    for shape in [(1, 28, 28), (3, 50, 50)]:
        model = tiny("conv_ae", shape, **{"channels": (4, 8), **options})
        assert model(batch(shape, n=2)).reconstruction.shape == (2, *shape)


@pytest.mark.parametrize("downsample", ["stride", "maxpool"])
def test_conv_ae_residual_blocks_per_stage(downsample):
    for shape in [(1, 28, 28), (3, 50, 50)]:
        model = tiny("conv_ae", shape, channels=(4, 8), blocks_per_stage=2, downsample=downsample)
        blocks = [[m for m in part.modules() if isinstance(m, ResidualBlock)] for part in (model.encoder, model.decoder)]
        assert [len(b) for b in blocks] == [4, 4]  # 2 stages x 2 blocks on each side
        assert [b.conv1.in_channels for b in blocks[0]] == [4, 4, 8, 8]  # each at its stage's width
        assert [b.conv1.in_channels for b in blocks[1]] == [4, 4, 4, 4]  # decoder stages end at channels[i-1]
        out = model(batch(shape, n=2))
        assert out.reconstruction.shape == (2, *shape)
        out.loss.backward()
        assert all(p.grad is not None for p in model.parameters())
    plain = tiny("conv_ae", (1, 28, 28), channels=(4, 8))
    assert not any(isinstance(m, ResidualBlock) for m in plain.modules())  # the default adds none
    with pytest.raises(ConfigError, match="blocks_per_stage"):
        tiny("conv_ae", (1, 28, 28), blocks_per_stage=-1)


def test_conv_bottleneck_code_is_a_feature_map():
    model = tiny("conv_ae", (1, 28, 28), bottleneck="conv")
    assert model.feature_shape == (4, 7, 7)
    assert model.code_size == 4 * 7 * 7
    assert model.encode(batch((1, 28, 28), n=3)).shape == (3, 196)


@pytest.mark.parametrize("loss", ["mse", "l1", "bce"])
def test_autoencoder_losses(loss):
    for name in ("conv_ae", "resnet_ae"):
        model = tiny(name, loss=loss).eval()
        x = batch((1, 28, 28))
        out = model(x)
        assert set(out.terms) == {"loss", "mse", loss}
        recon = out.reconstruction
        expected = {"mse": F.mse_loss(recon, x), "l1": F.l1_loss(recon, x),
                    "bce": F.binary_cross_entropy(recon, x)}[loss]
        assert torch.allclose(out.loss, expected, atol=1e-5)


def test_psnr_loss_is_minus_the_mean_per_image_psnr_the_metrics_report():
    from reprlab.evaluation.reconstruction import per_image_metrics

    for name in ("conv_ae", "resnet_ae"):
        model = tiny(name, loss="psnr").eval()
        x = batch((1, 28, 28))
        with torch.no_grad():
            out = model(x)
        assert set(out.terms) == {"loss", "mse", "neg_psnr"}
        assert torch.equal(out.loss, out.terms["neg_psnr"])
        reported = per_image_metrics(x, out.reconstruction)["psnr"].mean()
        assert float(out.loss) == pytest.approx(-float(reported), abs=1e-3)
        # not the pixel MSE in disguise: images are weighted by the inverse of their own error
        assert float(out.loss) != pytest.approx(10 * math.log10(float(out.terms["mse"])), abs=1e-3)


def test_fc_ae_terms_and_tanh_range():
    model = tiny("fc_ae", output_range="-1_1")
    x = batch((1, 28, 28)) * 2 - 1
    out = model(x)
    assert set(out.terms) == {"loss", "mse"}
    assert torch.allclose(out.loss, F.mse_loss(out.reconstruction, x))
    assert float(out.reconstruction.detach().abs().max()) <= 1.0


def _raises(match: str, name: str, err=ReprlabError, **kwargs):
    with pytest.raises(err, match=match) as info:
        create_model(name, **{"latent_dim": 4, **kwargs})
    assert "Fix:" in str(info.value)
    return info.value


@pytest.mark.parametrize("name", ["fc_ae", "conv_ae", "resnet_ae", "vae", "beta_vae"])
def test_latent_dim_must_be_positive(name):
    _raises("latent_dim", name, ConfigError, latent_dim=0)


@pytest.mark.parametrize("name", ["fc_ae", "conv_ae"])
@pytest.mark.parametrize("dropout", [-0.1, 1.0, 1.5, "a"])
def test_bad_dropout(name, dropout):
    _raises("dropout", name, ConfigError, dropout=dropout)


def test_kernel_larger_than_input_names_layer_and_sizes():
    err = _raises("kernel_size", "conv_ae", ModelError, input_shape=(1, 4, 4), kernel_size=9, channels=(4,))
    assert "conv layer 0" in str(err) and "4x4" in str(err)
    # the same kernel on a large input fails at the deep layer where the map has shrunk
    err = _raises("kernel_size", "conv_ae", ModelError, input_shape=(1, 28, 28), kernel_size=9, channels=(4, 4, 4, 4))
    assert "conv layer 3" in str(err) and "4x4" in str(err) and "28x28 -> 14x14 -> 7x7 -> 4x4" in str(err)


@pytest.mark.parametrize("name", ["conv_ae", "resnet_ae", "vae"])
def test_too_many_stages(name):
    err = _raises("stage 4", name, ModelError, input_shape=(1, 16, 16), channels=(4,) * 5)
    assert "16x16" in str(err) and "1x1" in str(err) and "channels=[4, 4, 4, 4]" in str(err)
    create_model(name, latent_dim=4, input_shape=(1, 16, 16), channels=(4,) * 4)  # 16 -> 1 is fine


@pytest.mark.parametrize("name,opts,param", [
    ("conv_ae", dict(norm="layer"), "norm"),
    ("resnet_ae", dict(norm="bn"), "norm"),
    ("fc_ae", dict(norm="group"), "norm"),
    ("conv_ae", dict(activation="swish"), "activation"),
    ("fc_ae", dict(activation="sigmoid"), "activation"),
    ("resnet_ae", dict(activation="Relu"), "activation"),
    ("vae", dict(activation="prelu"), "activation"),
    ("conv_ae", dict(upsample="bilinear"), "upsample"),
    ("conv_ae", dict(downsample="stride2"), "downsample"),
    ("conv_ae", dict(bottleneck="none"), "bottleneck"),
    ("conv_ae", dict(stride=3), "stride"),
    ("conv_ae", dict(stride=1, downsample="maxpool"), "stride"),
    ("conv_ae", dict(padding=3), "padding"),
    ("conv_ae", dict(kernel_size=0), "kernel_size"),
    ("conv_ae", dict(channels=()), "channels"),
    ("conv_ae", dict(channels=(8, -1)), "channels"),
    ("fc_ae", dict(hidden_sizes="512"), "hidden_sizes"),
    ("resnet_ae", dict(blocks_per_stage=-1), "blocks_per_stage"),
    ("conv_ae", dict(loss="bce", output_range="-1_1"), "bce"),
    ("resnet_ae", dict(loss="bce", output_range="-1_1"), "bce"),
    ("conv_ae", dict(loss="huber"), "loss"),
    ("vae", dict(recon_loss="bernoulli", output_range="-1_1"), "recon_loss"),
    ("vae", dict(recon_sigma=0.0), "recon_sigma"),
    ("vae", dict(kl_warmup_epochs=-1), "kl_warmup_epochs"),
    ("vae", dict(arch="resnet"), "arch"),
    ("vae", dict(arch="fc", norm="instance"), "norm"),
    ("beta_vae", dict(beta=0.0), "beta"),
    ("beta_vae", dict(beta=-2.0), "beta"),
])
def test_bad_hyperparameters_name_the_parameter(name, opts, param):
    _raises(param, name, ReprlabError, **opts)


@pytest.mark.parametrize("name,opts", [("fc_ae", {}), ("conv_ae", {"bottleneck": "conv"}), ("resnet_ae", {}),
                                       ("vae", {}), ("beta_vae", {"arch": "fc"})])
def test_zoo_models_support_rotation_self_supervision(name, opts):
    model = tiny(name, rotation_beta=0.5, **opts)
    x = batch((1, 28, 28))
    model.sanity_check(x)  # the rotation head gets gradients through the latent
    terms = model.training_step(x, FakeCtx(model, progress=1.0))
    assert {"rotation_ce", "rotation_acc"} <= set(terms)


def test_unknown_option_and_model_name():
    with pytest.raises(ConfigError, match="did you mean 'conv_ae'"):
        create_model("conv_ea", latent_dim=4)
    with pytest.raises(ConfigError, match="kernel"):
        create_model("fc_ae", kernel=3)


def test_check_input_explains_a_misfit():
    model = tiny("conv_ae", (1, 28, 28))
    with pytest.raises(ModelError, match="to_latent"):
        model.check_input((1, 32, 32))


def test_config_round_trips_through_json_lists():
    cfg = make_config("conv_ae", input_shape=(3, 32, 32), latent_dim=4, channels=(4, 8))
    again = make_config("conv_ae", **cfg.to_dict())
    assert again == cfg and again.channels == (4, 8)


# -- layers ------------------------------------------------------------------------------------

def test_layer_factories():
    assert isinstance(make_norm("batch", 6), torch.nn.BatchNorm2d)
    assert make_norm("group", 6).num_groups == 2 and make_norm("group", 7).num_groups == 1
    assert isinstance(make_norm("none", 6), torch.nn.Identity)
    assert isinstance(output_activation("0_1"), torch.nn.Sigmoid)
    assert isinstance(output_activation("-1_1"), torch.nn.Tanh)
    for act in ("relu", "leaky_relu", "elu", "gelu", "silu", "tanh"):
        make_activation(act)
    for mode in ("transpose", "nearest", "pixelshuffle"):
        assert make_upsample(mode, 6, 3)(torch.zeros(1, 6, 5, 7)).shape == (1, 3, 10, 14)
    with pytest.raises(ConfigError, match="norm"):
        make_norm("layer", 4)
    block = ResidualBlock(6, norm="instance", activation="gelu")
    assert block(torch.rand(2, 6, 5, 5)).shape == (2, 6, 5, 5)
    assert PadToEven()(torch.zeros(1, 1, 7, 6)).shape == (1, 1, 8, 6)
    assert FitTo((5, 6))(torch.zeros(1, 1, 6, 4)).shape == (1, 1, 5, 6)


def test_fit_to_resizes_a_short_map_instead_of_a_zero_border():
    """kernel 5 without padding shrinks 28 -> 12 -> 4; the decoder's 4 -> 8 (12) -> 24 (28) must leave no zero band."""
    x = torch.ones(1, 2, 8, 8)
    assert FitTo((12, 12))(x).shape == (1, 2, 12, 12)
    assert float(FitTo((12, 12))(x).amin()) == 1.0
    model = create_model("conv_ae", input_shape=(1, 28, 28), latent_dim=4, channels=(4, 8), kernel_size=5,
                         padding=0, norm="none")
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.01)
        stage0 = model.decoder.stage0(model.decoder.stage1(torch.ones(1, 8, 4, 4)))
    # the last decoder stage (before the 3x3 head) covers the whole 28x28 map: no row or column of zeros
    assert stage0.shape[-2:] == (28, 28)
    assert bool((stage0.abs().sum(dim=1) > 0).all())


def test_residual_block_starts_as_identity_after_relu():
    block = ResidualBlock(4)
    from reprlab.models.layers import init_weights
    init_weights(block)
    x = torch.rand(2, 4, 5, 5)  # non-negative: relu(x + 0) == x
    assert torch.allclose(block(x), x)


# -- VAE ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ["fc", "conv"])
@pytest.mark.parametrize("recon_loss", ["bernoulli", "mse", "l1"])
def test_vae_terms(arch, recon_loss):
    model = tiny("vae", (1, 28, 28), arch=arch, hidden_sizes=(16,), recon_loss=recon_loss)
    assert model.is_variational
    x = batch((1, 28, 28))
    out = model(x)
    assert set(out.terms) == {"loss", "nll", "kl", "elbo", "mse"}
    t = out.terms
    assert torch.allclose(t["elbo"], -(t["nll"] + t["kl"]))
    assert torch.allclose(t["loss"], t["nll"] + t["kl"])  # plain VAE: beta 1
    assert float(t["kl"].detach()) >= 0
    mu, logvar = model.encode_distribution(x)
    assert torch.equal(model.encode(x), mu) and logvar.shape == mu.shape


def test_vae_nll_matches_manual_formulas():
    x = batch((1, 28, 28))
    d = 28 * 28
    model = tiny("vae", recon_loss="bernoulli").eval()
    out = model(x)
    p = model.decode(out.extras["z"])
    manual = -(x * p.log() + (1 - x) * (1 - p).log()).flatten(1).sum(1).mean()
    assert torch.allclose(out.terms["nll"], manual, rtol=1e-4)
    assert torch.allclose(out.reconstruction, p)

    for kind, sigma in (("mse", 0.2), ("l1", 0.3)):
        model = tiny("vae", recon_loss=kind, recon_sigma=sigma).eval()
        out = model(x)
        r = out.reconstruction
        if kind == "mse":
            manual = 0.5 * ((x - r) ** 2).flatten(1).sum(1) / sigma**2 + d / 2 * math.log(2 * math.pi * sigma**2)
        else:
            manual = (x - r).abs().flatten(1).sum(1) / sigma + d * math.log(2 * sigma)
        assert torch.allclose(out.terms["nll"], manual.mean(), rtol=1e-5)


def test_vae_kl_is_zero_at_the_prior():
    model = tiny("vae")
    from reprlab.models.vae import gaussian_kl
    assert torch.allclose(gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)), torch.zeros(3))
    assert float(gaussian_kl(torch.ones(1, 4), torch.zeros(1, 4))) == pytest.approx(2.0)
    assert model.kl_weight == 1.0


def test_vae_posterior_variance_above_its_bound_is_pulled_back_not_stuck():
    """A log-variance that starts above the bound (as a dense layer on a 50x50 map did in the
    architecture-sweep recipe) must still get the KL term's gradient: a hard clamp left three latent
    dimensions at exp(20) for a whole run (KL 7e8 nats, 14.7 dB)."""
    torch.manual_seed(0)
    model = tiny("vae", arch="fc")
    head = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        head.bias[model.config.latent_dim:] = 25.0  # every log-variance far above the bound of 20
    x = batch((1, 28, 28))
    start = float(model(x).terms["kl"].detach())
    assert start > 1e8
    opt = torch.optim.Adam(model.parameters(), lr=0.5)
    for _ in range(30):
        loss = model(x).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(model(x).terms["kl"].detach()) < start / 1e3


def test_beta_vae_weights_the_kl_by_beta():
    model = tiny("beta_vae", beta=3.0).eval()
    out = model(batch((1, 28, 28)))
    t = out.terms
    assert torch.allclose(t["loss"], t["nll"] + 3.0 * t["kl"])
    assert torch.allclose(t["elbo"], -(t["nll"] + t["kl"]))  # the ELBO ignores beta
    assert tiny("beta_vae").beta == 4.0


def test_kl_warmup_schedule():
    model = tiny("beta_vae", beta=2.0, kl_warmup_epochs=4)
    assert model.kl_weight == 2.0  # a fresh or loaded model reports the full objective
    weights = []
    for epoch in range(6):
        model.on_epoch_start(epoch)
        weights.append(model.kl_weight)
    assert weights == [0.0, 0.5, 1.0, 1.5, 2.0, 2.0]
    model.training_step(batch((1, 28, 28)), FakeCtx(model, progress=1.5))
    assert model.kl_weight == pytest.approx(0.75)
    model.on_epoch_start(0)
    out = model.eval()(batch((1, 28, 28)))
    assert torch.allclose(out.terms["loss"], out.terms["nll"])  # weight 0 in the first epoch

    plain = tiny("vae")
    plain.on_epoch_start(0)
    assert plain.kl_weight == 1.0  # no warm-up by default


def test_vae_sampling_and_eval_determinism():
    model = tiny("vae", (3, 32, 32)).eval()
    s = model.sample(6)
    assert s.shape == (6, 3, 32, 32) and not s.requires_grad
    assert 0 <= float(s.min()) and float(s.max()) <= 1
    a = model.sample(2, generator=torch.Generator().manual_seed(3))
    b = model.sample(2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    with pytest.raises(ConfigError, match="n must be"):
        model.sample(0)
    x = batch((3, 32, 32))
    assert torch.equal(model(x).terms["elbo"], model(x).terms["elbo"])  # eval: fixed noise
    model.train()
    torch.manual_seed(0)
    first = model(x).extras["z"]
    assert not torch.equal(first, model(x).extras["z"])  # training: fresh noise


def test_training_step_reduces_the_loss():
    torch.manual_seed(0)
    model = tiny("conv_ae")
    ctx = FakeCtx(model)
    ctx.opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x = batch((1, 28, 28), n=16)
    first = float(model.training_step(x, ctx)["loss"])
    for _ in range(30):
        last = float(model.training_step(x, ctx)["loss"])
    assert last < first
