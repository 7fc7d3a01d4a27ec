"""Rotation self-supervision (``model.rotation_beta``): the head, the objective, training through the
Trainer, unrotated evaluation, errors for non-square input, and the save/load round trip."""

from __future__ import annotations

import pytest
import torch

from reprlab.data.dataset import ImageData
from reprlab.base.errors import ConfigError
from reprlab.models import create_model, load_model, save_model
from reprlab.training.engine import Trainer


pytestmark = pytest.mark.usefixtures("single_thread")


def oriented_images(n: int = 96, size: int = 12, seed: int = 0) -> torch.Tensor:
    """Images with an obvious orientation: a bright bar across the top plus a blob on the left."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, size, size, generator=g) * 0.2
    x[:, :, 1:3, 2:-2] = 0.9
    x[:, :, 5:8, 1:3] = 0.7
    return x.clamp(0, 1)


def test_head_only_when_enabled_and_config_checks():
    plain = create_model("fc_ae", input_shape=(1, 8, 8), latent_dim=3, hidden_sizes=(16,))
    assert getattr(plain, "rotation_head", None) is None and plain.config.rotation_beta == 0.0
    m = create_model("conv_ae", input_shape=(1, 12, 12), latent_dim=5, channels=(4, 8), rotation_beta=0.5)
    assert isinstance(m.rotation_head, torch.nn.Linear) and m.rotation_head.out_features == 4
    assert any(p is m.rotation_head.weight for p in m.optimizer_groups()["main"])
    with pytest.raises(ConfigError, match="rotation_beta must be >= 0"):
        create_model("fc_ae", input_shape=(1, 8, 8), rotation_beta=-1.0)


def test_non_square_input_is_refused_at_build_time():
    with pytest.raises(ConfigError, match=r"rotation_beta=1.0 rotates images by 90 degrees.*square.*Fix: resize"):
        create_model("conv_ae", input_shape=(1, 12, 16), latent_dim=4, channels=(4, 8), rotation_beta=1.0)
    create_model("conv_ae", input_shape=(1, 12, 16), latent_dim=4, channels=(4, 8))  # fine without rotation


def test_objective_rotates_and_forward_does_not():
    m = create_model("fc_ae", input_shape=(1, 8, 8), latent_dim=3, hidden_sizes=(16,), rotation_beta=2.0)
    x = torch.rand(5, 1, 8, 8)
    seen = []

    def spy(xb):
        seen.append(xb)
        return m(xb)

    loss, terms = m.rotation_objective(x, spy)
    xr = seen[0]
    assert xr.shape == (20, 1, 8, 8)
    for k in range(4):
        assert torch.equal(xr[5 * k:5 * (k + 1)], torch.rot90(x, k, dims=(2, 3)))
    assert set(terms) == {"loss", "mse", "rotation_ce", "rotation_acc"}
    with torch.no_grad():
        expected = float(m(xr).loss + 2.0 * terms["rotation_ce"])
    assert float(terms["loss"].detach()) == pytest.approx(expected, rel=1e-5) and loss is terms["loss"]
    assert set(m(x).terms) == {"loss", "mse"}  # evaluation sees unrotated images and the plain loss


def test_trains_through_the_trainer_and_learns_the_rotation():
    x = oriented_images()
    model = create_model("conv_ae", input_shape=(1, 12, 12), latent_dim=6, channels=(4, 8), rotation_beta=1.0)
    model.sanity_check(x[:16])  # every parameter, the head included, gets a gradient
    trainer = Trainer(epochs=6, batch_size=16, lr=5e-3, seed=0).fit(model, ImageData(x[:80]), ImageData(x[80:]))
    first, last = trainer.history[0], trainer.history[-1]
    assert {"train/rotation_acc", "train/rotation_ce", "train/mse", "val/mse"} <= set(last)
    assert "val/rotation_acc" not in last and last["val/loss"] == pytest.approx(last["val/mse"])
    assert last["train/rotation_acc"] > 0.9 and last["train/rotation_ce"] < first["train/rotation_ce"]


@pytest.mark.parametrize("name,opts", [("vae", {"channels": (4, 8)}),
                                       ("conv_ae", {"channels": (4, 8), "bottleneck": "conv"}),
                                       ("resnet_ae", {"channels": (4, 8)})])
def test_other_models_and_spatial_codes(name, opts):
    model = create_model(name, input_shape=(1, 12, 12), latent_dim=3, rotation_beta=0.3, **opts)
    trainer = Trainer(epochs=1, batch_size=16, seed=0).fit(model, ImageData(oriented_images(32)))
    assert 0.0 <= trainer.history[-1]["train/rotation_acc"] <= 1.0


def test_save_load_round_trip_keeps_the_head(tmp_path):
    m = create_model("conv_ae", input_shape=(1, 12, 12), latent_dim=4, channels=(4, 8), rotation_beta=0.7)
    Trainer(epochs=1, batch_size=16, seed=0).fit(m, ImageData(oriented_images(32)))
    save_model(m, tmp_path / "model")
    back = load_model(tmp_path / "model").eval()
    assert back.config.rotation_beta == 0.7
    assert torch.equal(back.rotation_head.weight, m.rotation_head.weight)
    x = oriented_images(4, seed=1)
    m.eval()
    with torch.no_grad():
        assert torch.allclose(back.rotation_head(back.encode(x)), m.rotation_head(m.encode(x)))


def test_one_random_view_rotates_each_image_once_and_labels_its_rotation(monkeypatch):
    m = create_model("fc_ae", input_shape=(1, 8, 8), latent_dim=3, hidden_sizes=(16,), rotation_beta=1.0,
                     rotation_views=1)
    x = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    seen = []

    def spy(xb):
        seen.append(xb)
        return m(xb)

    torch.manual_seed(0)
    m.rotation_objective(x, spy)
    xr = seen[0]
    assert xr.shape == x.shape  # one view per image, not four
    ks = [next(k for k in range(4) if torch.equal(xr[i], torch.rot90(x[i], k, dims=(1, 2)))) for i in range(64)]
    assert set(ks) == {0, 1, 2, 3}  # drawn at random, every rotation appears
    # the head's targets are the drawn rotations of the same images
    targets = []
    real_ce = torch.nn.functional.cross_entropy
    monkeypatch.setattr(torch.nn.functional, "cross_entropy", lambda logits, t: targets.append(t) or real_ce(logits, t))
    torch.manual_seed(0)
    m.rotation_objective(x, spy)
    assert targets[0].tolist() == ks
    with pytest.raises(ConfigError, match="rotation_views must be 1 or 4"):
        create_model("fc_ae", input_shape=(1, 8, 8), rotation_beta=1.0, rotation_views=2)


def test_one_random_view_learns_the_rotation_through_the_trainer():
    x = oriented_images()
    model = create_model("conv_ae", input_shape=(1, 12, 12), latent_dim=6, channels=(4, 8), rotation_beta=1.0,
                         rotation_views=1)
    trainer = Trainer(epochs=10, batch_size=16, lr=5e-3, seed=0).fit(model, ImageData(x[:80]), ImageData(x[80:]))
    assert trainer.history[-1]["train/rotation_acc"] > 0.9
