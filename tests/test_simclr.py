"""Tests of the contrastive encoder ``simclr``: the NT-Xent loss, the tensor augmentations, training
through the real Trainer, reuse as a classifier's encoder (``classifier`` and ``reprlab finetune``),
and the refusal of bad options before any run directory."""

from __future__ import annotations

import math

import pytest
import torch

from reprlab.base.errors import ConfigError, ModelError
from reprlab.cli.main import main
from reprlab.data import ImageData, load_dataset
from reprlab.experiments.train import train
from reprlab.models import create_model
from reprlab.models.simclr import augment_views, nt_xent
from reprlab.runs import load_run_model
from reprlab.training.engine import Trainer

pytestmark = pytest.mark.usefixtures("single_thread")

TINY = {"latent_dim": 8, "channels": (4,), "proj_hidden": 8, "proj_dim": 4}
DATA = {"name": "fashion-mnist-sample", "max_train": 200, "max_test": 40, "val_fraction": 0.25}
TRAIN = {"epochs": 1, "batch_size": 32, "progress": "off", "num_threads": 1}
EVAL = {"report": False, "figures": False}


def tiny(**kw):
    return create_model("simclr", input_shape=(1, 16, 16), **{**TINY, **kw})


def direct_nt_xent(z1: torch.Tensor, z2: torch.Tensor, t: float) -> float:
    """NT-Xent written out term by term (Chen et al. 2020, eq. 1), averaged over the 2N anchors."""
    z = [v / v.norm() for v in torch.cat([z1, z2])]
    n2 = len(z)
    n = n2 // 2
    total = 0.0
    for i in range(n2):
        j = (i + n) % n2
        num = math.exp(float(z[i] @ z[j]) / t)
        den = sum(math.exp(float(z[i] @ z[k]) / t) for k in range(n2) if k != i)
        total += -math.log(num / den)
    return total / n2


def test_nt_xent_matches_the_formula_and_rewards_alignment():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    for t in (0.1, 0.5, 1.0):
        assert float(nt_xent(z1, z2, temperature=t)) == pytest.approx(direct_nt_xent(z1, z2, t), rel=1e-5)
    # hand-made: partners identical and the pairs orthogonal -> the lowest loss of these three
    aligned = torch.eye(4)
    swapped = aligned[[1, 0, 3, 2]]  # each view's partner is another image's view
    good = float(nt_xent(aligned, aligned, temperature=0.5))
    assert good == pytest.approx(direct_nt_xent(aligned, aligned, 0.5), rel=1e-6)
    assert good < float(nt_xent(torch.randn(4, 4, generator=g), torch.randn(4, 4, generator=g), temperature=0.5))
    assert good < float(nt_xent(aligned, swapped, temperature=0.5))
    with pytest.raises(ModelError, match="same shape"):
        nt_xent(z1, z2[:3])


def test_augmentations_keep_shape_and_range_differ_between_views_and_replay_under_a_seed():
    x = torch.rand(6, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    for rng in ((0.0, 1.0), (-1.0, 1.0)):
        xs = x * (rng[1] - rng[0]) + rng[0]
        g = torch.Generator().manual_seed(3)
        a, b = augment_views(xs, generator=g, value_range=rng, noise_std=0.05), \
            augment_views(xs, generator=g, value_range=rng, noise_std=0.05)
        assert a.shape == b.shape == xs.shape
        assert float(a.min()) >= rng[0] and float(a.max()) <= rng[1]
        assert all(float((a[i] - b[i]).abs().max()) > 1e-3 for i in range(6))  # the two views differ, image by image
        again = augment_views(xs, generator=torch.Generator().manual_seed(3), value_range=rng, noise_std=0.05)
        assert torch.equal(again, a)
    # no augmentation at all is the identity (so the warp samples the image where it should)
    same = augment_views(x, generator=torch.Generator().manual_seed(0), crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0),
                         flip=0.0, translate=0.0, brightness=0.0, contrast=0.0)
    assert torch.allclose(same, x, atol=1e-5)
    flipped = augment_views(x, generator=torch.Generator().manual_seed(0), crop_scale=(1.0, 1.0),
                            crop_ratio=(1.0, 1.0), flip=1.0, translate=0.0, brightness=0.0, contrast=0.0)
    assert torch.allclose(flipped, x.flip(-1), atol=1e-5)
    # a model's two views differ, image by image, and come from its generator; eval mode uses fixed views
    m = tiny().eval()
    v1, v2 = m.views(x, torch.Generator().manual_seed(5))
    assert all(float((v1[i] - v2[i]).abs().max()) > 1e-3 for i in range(6))
    assert torch.equal(m.views(x, torch.Generator().manual_seed(5))[1], v2)
    with torch.no_grad():
        assert torch.equal(m(x).loss, m(x).loss)


def test_a_few_trainer_steps_lower_the_loss():
    torch.manual_seed(0)
    full = load_dataset("fashion-mnist-sample", "train", resize=[16, 16])
    data = ImageData(images=full.images[:128], labels=full.labels[:128])
    model = tiny()
    trainer = Trainer(epochs=6, batch_size=64, lr=3e-3, seed=0).fit(model, data)
    first, last = trainer.history[0], trainer.history[-1]
    assert set(last) >= {"train/loss", "train/nt_xent", "train/pair_acc", "train/mse"}
    assert last["train/nt_xent"] < first["train/nt_xent"] - 0.05


@pytest.fixture(scope="module")
def simclr_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("simclr")
    return train({"seed": 0, "output_dir": str(root), "name": "simclr", "data": dict(DATA),
                  "model": {"name": "simclr", "latent_dim": 8, "channels": [4, 8], "proj_dim": 4, "proj_hidden": 8},
                  "train": dict(TRAIN), "eval": dict(EVAL)}).run_dir


def test_classifier_on_a_simclr_encoder_drops_the_head_and_decoder(simclr_run):
    clf = create_model("classifier", input_shape=(1, 28, 28), encoder="simclr",
                       encoder_options={"latent_dim": 8, "channels": [4, 8], "proj_dim": 4}, freeze="all-but-2")
    assert clf.code_size == 8
    for part in ("projector", "decoder", "from_latent"):
        assert type(getattr(clf.encoder, part)).__name__ == "Identity", part
    trainable = [n for n, p in clf.encoder.named_parameters() if p.requires_grad]
    assert trainable and all(n.startswith("features.") for n in trainable)
    out = clf(torch.rand(3, 1, 28, 28), torch.tensor([0, 1, 2]))
    assert out.extras["logits"].shape == (3, 10) and torch.isfinite(out.loss)


def test_finetune_a_simclr_run_end_to_end(tmp_path, simclr_run, capsys):
    rc = main(["finetune", str(simclr_run), "--labels", "20", "--freeze", "none", "--epochs", "1",
               "--output-dir", str(tmp_path), "--name", "ft", "data.max_train=200", "data.max_test=40",
               "data.val_fraction=0.25", "train.progress=off", "eval.report=false", "eval.figures=false"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "test/acc=" in out
    clf = load_run_model(tmp_path / "ft")
    enc = load_run_model(simclr_run)
    assert clf.config.encoder == "simclr"
    # the encoder started from the simclr run's weights and fine-tuning moved them
    assert clf.encoder.features[0].weight.shape == enc.features[0].weight.shape
    assert not torch.equal(clf.encoder.features[0].weight, enc.features[0].weight)
    probe = tmp_path / "probe"
    rc = main(["finetune", str(simclr_run), "--labels", "20", "--freeze", "encoder", "--epochs", "1",
               "--output-dir", str(tmp_path), "--name", "probe", "data.max_train=200", "data.max_test=40",
               "data.val_fraction=0.25", "train.progress=off", "eval.report=false", "eval.figures=false"])
    assert rc == 0
    frozen = load_run_model(probe)
    assert torch.equal(frozen.encoder.features[0].weight, enc.features[0].weight)
    x = torch.rand(4, 1, 28, 28)
    enc.eval(), frozen.eval()
    with torch.no_grad():
        assert torch.allclose(frozen.encode(x), enc.encode(x), atol=1e-6)


@pytest.mark.parametrize("options, match", [
    ({"temperature": 0}, "temperature"),
    ({"temperature": -0.5}, "temperature"),
    ({"crop_scale": [0, 1]}, "crop_scale"),
    ({"crop_scale": [0.5, 1.2]}, "crop_scale"),
    ({"crop_scale": [0.8, 0.4]}, "crop_scale"),
    ({"crop_scale": 0.5}, "crop_scale"),
    ({"crop_ratio": [0, 2]}, "crop_ratio"),
    ({"proj_dim": 0}, "proj_dim"),
    ({"proj_hidden": 0}, "proj_hidden"),
    ({"contrast": 1.0}, "contrast"),
    ({"flip": 1.5}, "flip"),
    ({"translate": 0.7}, "translate"),
    ({"rotation_beta": 1.0}, "rotation_beta"),
])
def test_bad_options_are_refused_with_a_fix(options, match):
    with pytest.raises(ConfigError, match=match) as info:
        tiny(**options)
    assert "Fix:" in str(info.value)


def test_bad_options_and_single_image_batches_are_refused_before_any_run_directory(tmp_path):
    out = tmp_path / "runs"
    base = {"seed": 0, "output_dir": str(out), "data": dict(DATA), "eval": dict(EVAL)}
    with pytest.raises(ConfigError, match="temperature"):
        train({**base, "name": "a", "model": {"name": "simclr", "temperature": 0.0}, "train": dict(TRAIN)})
    with pytest.raises(ModelError, match="at least 2 images") as info:
        train({**base, "name": "b", "model": {"name": "simclr", **TINY, "channels": [4]},
               "train": {**TRAIN, "batch_size": 1}})
    assert "train.batch_size" in str(info.value)
    assert not out.exists() or not any(out.iterdir())
    with pytest.raises(ModelError, match="at least 2 images"):
        tiny()(torch.rand(1, 1, 16, 16))
