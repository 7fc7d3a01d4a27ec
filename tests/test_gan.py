"""The dcgan model, the generate task, failure detection, `reprlab sample` and the bad-input checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from reprlab.base.errors import ConfigError, ReprlabError, TrainingError
from reprlab.models import create_model, load_model, save_model

pytestmark = pytest.mark.usefixtures("single_thread")

SHAPES = [(1, 28, 28), (3, 32, 32), (3, 50, 50), (3, 64, 64)]


def tiny_gan(shape=(1, 28, 28), **kw):
    return create_model("dcgan", input_shape=shape, **{"noise_dim": 8, "gen_channels": 8, "disc_channels": 8, **kw})


class Ctx:
    """The engine's StepContext for a GAN: one Adam per group, records the order of the steps."""

    def __init__(self, model, progress: float = 0.0, lr: float = 2e-4) -> None:
        self.model, self.epoch, self.step_in_epoch, self.progress = model, 0, 0, progress
        self.opts = {k: torch.optim.Adam(g.params, lr=lr, betas=(0.5, 0.999)) for k, g in model.optimizer_groups().items()}
        self.steps: list[str] = []

    def forward(self, *a, **k):
        return self.model(*a, **k)

    def step(self, name, loss):
        self.steps.append(name)
        self.opts[name].zero_grad()
        loss.backward()
        self.opts[name].step()


@pytest.mark.parametrize("loss", ["bce", "hinge"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_dcgan_any_size_steps_and_round_trips(shape, loss, tmp_path):
    torch.manual_seed(0)
    m = tiny_gan(shape, loss=loss)
    m.check_input()
    x = torch.rand(4, *shape) * 2 - 1
    m.sanity_check(x)
    assert not hasattr(m, "encode") and not hasattr(m, "reconstruct") and m.reconstructs is False
    ctx = Ctx(m)
    terms = m.training_step(x, ctx)
    assert ctx.steps == ["discriminator", "generator"]
    assert {"d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm", "g_grad_norm", "loss"} <= set(terms)
    assert all(torch.isfinite(v) for v in terms.values())
    val = m.validation_step(x)
    assert {"d_loss", "g_loss", "d_real", "d_fake"} <= set(val)
    m.eval()
    z = torch.randn(3, 8)
    out = m.decode(z)
    assert out.shape == (3, *shape) and float(out.detach().abs().max()) <= 1.0
    loaded = load_model(save_model(m, tmp_path / "g")).eval()
    assert torch.equal(loaded.decode(z), out)
    if loss == "hinge":  # spectral normalisation of the discriminator is on by default with the hinge loss
        assert any("parametrizations" in n for n, _ in m.discriminator.named_parameters())


def test_dcgan_init_groups_and_options():
    m = tiny_gan()
    w = torch.cat([p.detach().flatten() for n, p in m.named_parameters() if n.endswith("weight") and p.ndim > 1])
    assert abs(float(w.std()) - 0.02) < 0.004 and abs(float(w.mean())) < 0.002  # N(0, 0.02)
    groups = m.optimizer_groups()
    assert set(groups) == {"generator", "discriminator"}
    assert groups["generator"].settings == {"optimizer": "adam", "lr": 2e-4, "betas": (0.5, 0.999)}
    ctx = Ctx(tiny_gan(d_steps=2, g_steps=3))
    ctx.model.training_step(torch.rand(4, 1, 28, 28) * 2 - 1, ctx)
    assert ctx.steps == ["discriminator"] * 2 + ["generator"] * 3
    noisy = tiny_gan(instance_noise=0.2, instance_noise_epochs=4)
    assert [noisy.noise_std(p) for p in (0, 2, 4, 6)] == pytest.approx([0.2, 0.1, 0.0, 0.0])
    smooth = tiny_gan(label_smoothing=0.2)
    logits = torch.full((8,), 5.0)
    # one-sided smoothing: a confident real logit is penalised, fake targets stay 0
    assert float(smooth.d_loss(logits, -logits, flip=False)) > float(tiny_gan().d_loss(logits, -logits, flip=False))
    flip = tiny_gan(label_flip=0.5)
    torch.manual_seed(0)
    assert float(flip.d_loss(logits, -logits)) > 1.0  # half the targets flipped: confident logits cost a lot


def test_minibatch_std_lets_the_discriminator_see_a_collapsed_batch():
    """With minibatch_std, a batch of one image repeated scores differently from the same image among others."""
    torch.manual_seed(0)
    m = tiny_gan(minibatch_std=True).eval()
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    collapsed = x[:1].expand(8, -1, -1, -1)
    with torch.no_grad():
        assert float((m.discriminator(collapsed)[0] - m.discriminator(x)[0]).abs()) > 1e-6
        plain = tiny_gan().eval()  # without it, each image's logit ignores the rest of its batch
        assert float((plain.discriminator(collapsed)[0] - plain.discriminator(x)[0]).abs()) < 1e-6
    ctx = Ctx(m.train())
    ctx.model.training_step(x, ctx)  # trains as usual
    assert ctx.steps == ["discriminator", "generator"]


def test_the_trainer_uses_the_declared_and_configured_group_settings():
    from reprlab.data.dataset import ImageData
    from reprlab.training.engine import Trainer

    m = tiny_gan((1, 8, 8))
    data = ImageData(torch.rand(32, 1, 8, 8))
    t = Trainer(epochs=1, batch_size=16, group_options={"discriminator": {"lr": 1e-3}}).fit(m, data)
    assert t.group_settings["generator"].lr == 2e-4 and t.group_settings["generator"].betas == (0.5, 0.999)
    assert t.group_settings["discriminator"].lr == 1e-3
    row = t.history[-1]
    assert {"train/d_loss", "train/g_loss", "train/d_real", "train/d_fake", "lr/generator"} <= set(row)


@pytest.mark.parametrize("kwargs,match", [
    (dict(noise_dim=0), "noise_dim"),
    (dict(output_range="0_1"), "data.scale=-1_1"),
    (dict(loss="wgan"), "loss"),
    (dict(label_flip=0.7), "label_flip"),
    (dict(noise_dim=8, latent_dim=16), "noise_dim"),
    (dict(loss="hinge", label_smoothing=0.1), "label_smoothing"),
    (dict(d_steps=0), "d_steps"),
    (dict(minibatch_std="yes"), "minibatch_std"),
    (dict(ema=1.0), "ema"),
    (dict(ema=-0.1), "ema"),
])
def test_bad_dcgan_options(kwargs, match):
    with pytest.raises(ConfigError, match=match) as info:
        create_model("dcgan", input_shape=(1, 28, 28), **kwargs)
    assert "Fix:" in str(info.value)


def test_generator_ema_averages_the_weights_and_samples_in_eval_mode(tmp_path):
    torch.manual_seed(0)
    m = tiny_gan(ema=0.9)
    assert not any(p.requires_grad for p in m.generator_ema.parameters())
    assert all(p not in set(m.optimizer_groups()["generator"].params) for p in m.generator_ema.parameters())
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    ctx = Ctx(m, lr=1e-2)
    before = [p.detach().clone() for p in m.generator_ema.parameters()]
    m.training_step(x, ctx)
    # step 1: decay min(0.9, 2/11): the average moved 9/11 of the way to the stepped generator
    for avg, old, new in zip(m.generator_ema.parameters(), before, m.generator.parameters()):
        assert torch.allclose(avg, old + (1 - 2 / 11) * (new.detach() - old), atol=1e-6)
    for _ in range(5):
        m.training_step(x, ctx)
    assert int(m.ema_updates) == 6
    z = torch.randn(3, 8)
    m.eval()
    assert torch.equal(m.decode(z), m.generator_ema(z)) and not torch.equal(m.decode(z), m.generator(z))
    m.train()
    assert torch.equal(m.decode(z), m.generator(z))  # training uses the raw generator
    m.eval()
    loaded = load_model(save_model(m, tmp_path / "g")).eval()  # the average travels with the weights
    assert torch.equal(loaded.decode(z), m.decode(z)) and int(loaded.ema_updates) == 6
    plain = tiny_gan()
    assert not hasattr(plain, "generator_ema")


def test_non_finite_gan_loss_is_named_as_a_gan_failure():
    m = tiny_gan()
    with torch.no_grad():
        m.discriminator.head.weight.fill_(float("nan"))
    with pytest.raises(TrainingError, match="GAN failure: non-finite"):
        m.training_step(torch.rand(4, 1, 28, 28) * 2 - 1, Ctx(m))


def test_failure_detection():
    from reprlab.capabilities.generation.failures import detect_failures

    ok = [{"epoch": e, "train/d_loss": 1.2, "train/d_fake": 0.4, "val/gen_diversity": 0.9} for e in range(1, 7)]
    assert detect_failures(ok) == []
    wins = [dict(r) for r in ok]
    for r in wins[2:5]:
        r.update({"train/d_loss": 0.01, "train/d_fake": 0.01})
    f = detect_failures(wins, patience=3)
    assert [(x.kind, x.epoch) for x in f] == [("discriminator_wins", 3)] and "learning rate" in f[0].advice
    assert detect_failures(wins, patience=4) == []  # a stretch of 3 epochs only
    low_loss_only = [dict(r, **{"train/d_loss": 0.01, "train/d_fake": 0.5}) for r in ok]
    assert detect_failures(low_loss_only) == []  # D(G(z)) is not near zero: the generator still fools it
    alternating = [dict(r, **({"train/d_loss": 0.01, "train/d_fake": 0.01} if i % 2 else {})) for i, r in enumerate(ok)]
    assert detect_failures(alternating, patience=2) == []  # never two epochs in a row
    collapse = [dict(r) for r in ok]
    for r in collapse[1:]:
        r["val/gen_diversity"] = 0.05
    assert [(x.kind, x.epoch) for x in detect_failures(collapse)] == [("mode_collapse", 2)]
    every_other = [dict(r, **({"val/gen_diversity": float("nan")} if i % 2 else {})) for i, r in enumerate(collapse)]
    assert [(x.kind, x.epoch) for x in detect_failures(every_other, patience=2)] == [("mode_collapse", 3)]
    unscored = [dict(r, **{"val/gen_fd": float("nan")}) for r in ok]
    assert detect_failures(unscored) == []  # epochs without a generation score are not failures
    nan = [dict(r) for r in ok]
    nan[4]["train/g_loss"] = float("nan")
    assert [(x.kind, x.epoch) for x in detect_failures(nan)] == [("non_finite", 5)]


# -- runs -----------------------------------------------------------------------------------------

def _cfg(tmp_path, **over):
    cfg = {"task": "generate", "output_dir": str(tmp_path / "runs"),
           "model": {"name": "dcgan", "noise_dim": 16, "gen_channels": 8, "disc_channels": 8},
           "data": {"name": "fashion-mnist-sample", "scale": "-1_1", "max_train": 400, "max_test": 200},
           "train": {"epochs": 4, "batch_size": 50, "progress": "off"},
           "eval": {"report": True},
           "generation": {"n_samples": 200, "epoch_samples": 100, "feature_epochs": 1, "feature_max_images": 400,
                          "kid_subsets": 5, "cache_dir": str(tmp_path / "cache")}}
    for key, value in over.items():
        node = cfg
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return cfg


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    import reprlab

    tmp = tmp_path_factory.mktemp("gan")
    torch.set_num_threads(1)
    return reprlab.train(_cfg(tmp)), tmp


def test_generate_run_best_by_generation_metric_and_report(gan_run):
    result, _ = gan_run
    run = result.run_dir
    m = json.loads((run / "metrics.json").read_text())
    for key in ("test/fd", "test/kid", "test/precision", "test/recall", "test/coverage", "test/memorisation_ratio"):
        assert key in m and np.isfinite(m[key]), key
    assert m["best/monitor"] == "val/gen_fd"
    rows = [r for r in result.history]
    fds = [r["val/gen_fd"] for r in rows]
    assert m["best/epoch"] == int(np.nanargmin(fds)) + 1 and m["best/value"] == pytest.approx(min(fds))
    index = json.loads((run / "generation" / "index.json").read_text())
    keys = {i["key"].split(":", 1)[1] for i in index["items"]}
    assert {"samples", "progress", "interpolation", "grid2d", "curves", "memorisation"} <= keys
    for item in index["items"]:
        for f in item["files"]:
            assert (run / "generation" / f).exists()
    html = (run / "report.html").read_text()
    assert "Samples across training" in html and "Memorisation check" in html
    # the feature network travels with the run, with the checksum of its weights
    meta = json.loads((run / "generation" / "feature_net.json").read_text())
    import hashlib
    assert hashlib.sha256((run / "generation" / "feature_net.safetensors").read_bytes()).hexdigest() == meta["sha256"]
    # ... trained on the dataset's training pool (5,000 sample images, capped at 400), not the run's 360
    assert meta["train_images"] == 5000 and meta["recipe"]["max_images"] == 400
    # the real test images' class shares under the same classifier stand beside the samples' (this one-epoch
    # classifier puts most real images in one class: the yardstick a sample share must be read against)
    details = json.loads((run / "generation" / "metrics.json").read_text())["metrics"]
    assert len(details["real_class_shares"]) == 10 and sum(details["real_class_shares"]) == pytest.approx(1, abs=1e-3)
    assert m["test/real_max_class_share"] == pytest.approx(max(details["real_class_shares"]))
    assert "the real test images, same classifier" in html


def test_feature_network_trains_on_the_training_pool_not_the_runs_cap(tmp_path):
    from reprlab.capabilities.generation.task import feature_training_images
    from reprlab.config import RunConfig
    from reprlab.runs import prepare_data

    cfg = RunConfig.from_dict(_cfg(tmp_path))
    splits = prepare_data(cfg)
    pool = feature_training_images(cfg, splits.train)
    assert len(splits.train) == 360 and len(pool) == 5000
    # never a test image: the test split is the dataset's own test file
    test_rows = {bytes(r) for r in splits.test.images.flatten(1).numpy()}
    assert not any(bytes(r) in test_rows for r in pool.images[:1000].flatten(1).numpy())
    run_train = RunConfig.from_dict(_cfg(tmp_path, **{"generation.feature_data": "run_train"}))
    assert feature_training_images(run_train, splits.train) is splits.train
    with pytest.raises(ConfigError, match="feature_data"):
        RunConfig.from_dict(_cfg(tmp_path, **{"generation.feature_data": "everything"}))


def test_runs_of_different_seeds_share_one_judge_seeded_by_feature_seed(tmp_path):
    """The feature network is seeded by generation.feature_seed, not by the run's seed: a seed sweep (or a model
    against its baseline at another seed) is scored by one network; another feature_seed trains another."""
    from reprlab.capabilities.generation.task import _feature_net
    from reprlab.config import RunConfig
    from reprlab.runs import prepare_data

    def judge(**over):
        cfg = RunConfig.from_dict(_cfg(tmp_path, **{"generation.feature_max_images": 300, **over}))
        return {k: v.clone() for k, v in _feature_net(cfg, prepare_data(cfg).train, None).state_dict().items()}

    base = judge(seed=0)
    other_seed = judge(seed=1)
    assert all(torch.equal(base[k], other_seed[k]) for k in base)
    reseeded = judge(seed=0, **{"generation.feature_seed": 1})
    assert not all(torch.equal(base[k], reseeded[k]) for k in base)
    assert len(list((tmp_path / "cache" / "features").iterdir())) == 2
    with pytest.raises(ConfigError, match="feature_seed"):
        RunConfig.from_dict(_cfg(tmp_path, **{"generation.feature_seed": -1}))


def test_sample_cli_and_evaluate(gan_run, tmp_path):
    from reprlab.cli.main import main
    from reprlab import api

    result, _ = gan_run
    assert main(["sample", str(result.run_dir), "--n", "9", "--seed", "3", "--out", str(tmp_path)]) == 0
    z = np.load(tmp_path / "samples_seed3_n9.npz")
    assert z["images"].shape == (9, 1, 28, 28) and z["images"].dtype == np.uint8 and z["noise"].shape == (9, 16)
    assert (tmp_path / "samples_seed3_n9.png").read_bytes()[:4] == b"\x89PNG"
    again = tmp_path / "again"
    main(["sample", str(result.run_dir), "--n", "9", "--seed", "3", "--out", str(again)])
    assert np.array_equal(np.load(again / "samples_seed3_n9.npz")["images"], z["images"])  # seeded
    scores = api.evaluate(result.run_dir)
    assert {"test/fd", "test/kid", "test/precision", "test/recall"} <= set(scores)


def test_broken_gan_is_flagged_in_status_and_summary(tmp_path):
    """Discriminator lr 100x the generator's with a frozen-ish generator: the discriminator wins."""
    import reprlab

    cfg = _cfg(tmp_path, **{"train.epochs": 4, "train.groups": {"discriminator": {"lr": 2e-2}, "generator": {"lr": 1e-6}},
                            "generation.patience": 2, "eval.report": False})
    result = reprlab.train(cfg)
    status = json.loads((result.run_dir / "status.json").read_text())
    kinds = {f["kind"] for f in status.get("failures", [])}
    assert "discriminator_wins" in kinds, (status, [(r["train/d_loss"], r["train/d_fake"]) for r in result.history])
    assert "GAN FAILURE: the discriminator wins" in result.summary
    assert "gan_discriminator_wins" in {f["check"] for f in status["health"]["findings"]}  # the health verdict too
    assert json.loads((result.run_dir / "metrics.json").read_text())["gan/discriminator_wins_epoch"] >= 1
    index = json.loads((result.run_dir / "generation" / "index.json").read_text())
    diagnosis = [i for i in index["items"] if i["kind"] == "diagnosis"]
    assert diagnosis and "Advice:" in diagnosis[0]["caption"]  # the report shows the diagnosis


@pytest.mark.parametrize("over,match", [
    ({"data.max_train": 60, "train.batch_size": 64}, "fewer than one batch"),
    ({"model.noise_dim": 0}, "noise_dim"),
    ({"data.scale": "0_1"}, "data.scale=-1_1"),
    ({"model": {"name": "conv_ae", "latent_dim": 8}, "data.scale": "0_1"}, "no prior to sample"),
    ({"generation.k": 150}, "generation.k"),
])
def test_bad_input_fails_before_a_run_directory(tmp_path, over, match):
    import reprlab

    with pytest.raises(ReprlabError, match=match) as info:
        reprlab.train(_cfg(tmp_path, **over))
    assert "Fix:" in str(info.value)
    assert not (tmp_path / "runs").exists()


def test_reconstruct_refuses_a_gan_and_generate_a_plain_autoencoder(tmp_path):
    import reprlab

    with pytest.raises(ConfigError, match="does not reconstruct"):
        reprlab.train(_cfg(tmp_path, task="reconstruct"))
    with pytest.raises(ConfigError, match="no prior to sample"):
        reprlab.train(_cfg(tmp_path, **{"model": {"name": "fc_ae", "latent_dim": 4}, "data.scale": "0_1"}))
    from reprlab.capabilities.generation.task import require_generative, sample01
    with pytest.raises(ConfigError, match="no prior to sample"):  # generation metrics asked for an autoencoder
        sample01(create_model("conv_ae", input_shape=(1, 28, 28), latent_dim=4), 8)
    require_generative(create_model("vae", input_shape=(1, 28, 28), latent_dim=4))  # a VAE is a generator
    assert not (tmp_path / "runs").exists()


def test_unlabelled_non_square_images_cannot_get_a_rotation_feature_network(tmp_path):
    from reprlab.capabilities.generation.task import _check_feature_recipe
    from reprlab.config import RunConfig
    from reprlab.data.dataset import ImageData

    cfg = RunConfig.from_dict({"generation": {}})
    with pytest.raises(ConfigError, match="square"):
        _check_feature_recipe(cfg, ImageData(torch.rand(4, 1, 12, 16)))
    cfg = RunConfig.from_dict({"generation": {"feature_objective": "classes"}})
    with pytest.raises(ConfigError, match="needs labels"):
        _check_feature_recipe(cfg, ImageData(torch.rand(4, 1, 12, 12)))


def test_vae_reconstruct_run_gets_generation_metrics_by_hook_and_evaluate_flag(tmp_path, capsys):
    import reprlab
    from reprlab.cli.main import main

    cfg = _cfg(tmp_path, task="reconstruct", model={"name": "vae", "arch": "fc", "hidden_sizes": [32], "latent_dim": 4},
               **{"data.scale": "0_1", "train.epochs": 1, "generation.for_vae": True, "eval.report": False})
    result = reprlab.train(cfg)
    m = json.loads((result.run_dir / "metrics.json").read_text())
    assert {"test/mse", "test/fd", "test/precision", "test/recall"} <= set(m)  # reconstruct and generation side by side
    assert (result.run_dir / "generation" / "samples.png").exists()
    capsys.readouterr()
    assert main(["evaluate", str(result.run_dir), "--generation"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "test/mse" in out and out["test/fd"] == pytest.approx(m["test/fd"], rel=1e-4)
    # a plain autoencoder run: generation metrics are refused with one clear error
    ae = reprlab.train(_cfg(tmp_path, task="reconstruct", model={"name": "fc_ae", "hidden_sizes": [16], "latent_dim": 4},
                            **{"data.scale": "0_1", "train.epochs": 1, "eval.report": False}))
    assert main(["evaluate", str(ae.run_dir), "--generation"]) == 2
    assert "no prior to sample" in capsys.readouterr().err


# -- real data --------------------------------------------------------------------------------
@pytest.mark.realdata
def test_dcgan_on_real_fashion_mnist_judged_by_a_classifier_of_the_whole_training_split(real_data_dir, tmp_path):
    """A capped run (500 images) is judged by a feature classifier trained on the whole training split (60,000
    images, a seeded 3,000 of them here): the yardstick does not depend on data.max_train."""
    import reprlab

    torch.set_num_threads(1)
    cfg = _cfg(tmp_path, **{"data.name": "fashion-mnist", "data.data_dir": str(real_data_dir), "data.max_train": 500,
                            "data.max_test": 500, "train.epochs": 2, "generation.feature_max_images": 3000,
                            "generation.feature_epochs": 2, "eval.report": False})
    result = reprlab.train(cfg)
    meta = json.loads((result.run_dir / "generation" / "feature_net.json").read_text())
    assert meta["train_images"] == 60000 and meta["recipe"]["max_images"] == 3000
    m = result.metrics
    assert np.isfinite(m["test/fd"]) and 0 < m["test/real_max_class_share"] < 0.3
    # the same run capped at 300 images gets the very same judge (same cache entry)
    cfg["data"]["max_train"] = 300
    again = reprlab.train(cfg)
    assert json.loads((again.run_dir / "generation" / "feature_net.json").read_text())["sha256"] == meta["sha256"]
