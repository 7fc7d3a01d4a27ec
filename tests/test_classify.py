"""Tests of few-label classification: label budgets, the classifier regimes and parameter groups,
pretrained encoders from run directories, the classify task end to end, bad input before any run
directory, the frozen-code baselines, the plots and `reprlab finetune`."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from reprlab.base.errors import ConfigError, ModelError, ReprlabError, RunDirError
from reprlab.capabilities.classification import (budget_splits, code_baselines, frozen_code_baselines, label_budget,
                                                 parse_budget, plot_accuracy_vs_labels, summarise)
from reprlab.cli.main import main
from reprlab.config import RunConfig
from reprlab.data.batch import Batch
from reprlab.experiments.train import train
from reprlab.models import create_model
from reprlab.runs import load_run_model, prepare_data
from reprlab.tasks import get_task
from reprlab.training.engine import Trainer

from conftest import sgd_step_context

pytestmark = pytest.mark.usefixtures("single_thread")

DATA = {"name": "fashion-mnist-sample", "max_train": 400, "max_test": 60, "val_fraction": 0.25}
TRAIN = {"epochs": 1, "batch_size": 32, "progress": "off", "num_threads": 1}
EVAL = {"report": False, "figures": False}
TINY_AE = {"name": "conv_ae", "latent_dim": 6, "channels": [4, 8]}


def classify_cfg(root, name, model, labels=30, **extra):
    return {"seed": 0, "output_dir": str(root), "name": name, "task": "classify", "data": dict(DATA),
            "model": model, "train": dict(TRAIN), "eval": dict(EVAL), "classify": {"labels": labels}, **extra}


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain")
    return train({"seed": 0, "output_dir": str(root), "name": "ae", "data": dict(DATA), "model": dict(TINY_AE),
                  "train": dict(TRAIN), "eval": dict(EVAL)}).run_dir


# -- budgets -----------------------------------------------------------------------------------

def test_budget_is_balanced_seeded_and_nested():
    labels = torch.arange(300) % 10
    idx = label_budget(labels, 100, seed=3)
    assert len(idx) == 100 and torch.bincount(labels[idx]).tolist() == [10] * 10
    assert torch.equal(idx, label_budget(labels, 100, seed=3))
    assert not torch.equal(idx, label_budget(labels, 100, seed=4))
    assert set(label_budget(labels, 10, seed=3).tolist()) <= set(idx.tolist())
    odd = label_budget(labels, 13, seed=0)
    assert sorted(torch.bincount(labels[odd]).tolist()) == [1] * 7 + [2] * 3
    assert label_budget(labels, None, seed=0).tolist() == list(range(300))
    assert parse_budget("all") is None and parse_budget("100") == 100


def test_budget_refusals_name_the_numbers():
    labels = torch.tensor([0] * 5 + [1] * 50 + [2] * 50)
    with pytest.raises(ConfigError, match=r"classify.labels=2 is below the number of classes \(3\)"):
        label_budget(labels, 2, seed=0)
    with pytest.raises(ConfigError, match="asks 10 labelled images of class 0, but the training split has only 5") as e:
        label_budget(labels, 30, seed=0)
    assert "at most 15 labels" in str(e.value)
    for bad in (0, -3, "many", 2.5, True):
        with pytest.raises(ConfigError, match="classify.labels"):
            parse_budget(bad)


def test_the_same_labelled_images_for_every_method():
    """The fine-tuned classifier, the ResNet-18 from scratch and the baselines share one subset per seed."""
    subsets = []
    for model in ({"name": "classifier", "encoder": "conv_ae", "encoder_options": TINY_AE},
                  {"name": "resnet18"}, {"name": "classifier", "freeze": "encoder"}):
        cfg = RunConfig.from_dict({"task": "classify", "data": DATA, "model": model, "classify": {"labels": 40}})
        subsets.append(get_task("classify").prepare_data(cfg).train)
    cfg = RunConfig.from_dict({"task": "classify", "data": DATA, "classify": {"labels": 40}})
    subsets.append(budget_splits(cfg, prepare_data(cfg))[0].train)  # what the baselines use
    for other in subsets[1:]:
        assert torch.equal(other.images, subsets[0].images) and torch.equal(other.labels, subsets[0].labels)
    assert torch.bincount(subsets[0].labels).tolist() == [4] * 10
    other_seed = RunConfig.from_dict({"task": "classify", "data": DATA, "seed": 1, "classify": {"labels": 40}})
    assert not torch.equal(get_task("classify").prepare_data(other_seed).train.images, subsets[0].images)


# -- the classifier model ----------------------------------------------------------------------

def tiny_classifier(freeze="none", **kw):
    return create_model("classifier", input_shape=(1, 28, 28), encoder="conv_ae",
                        encoder_options={"latent_dim": 6, "channels": [4, 8]}, num_classes=3, freeze=freeze, **kw)


def test_freeze_regimes_and_parameter_groups():
    torch.manual_seed(0)
    full, probe, partial = tiny_classifier(), tiny_classifier("encoder"), tiny_classifier("all-but-1")
    assert sorted(full.optimizer_groups()) == ["encoder", "head"]
    assert list(probe.optimizer_groups()) == ["head"]
    assert not any(p.requires_grad for p in probe.encoder.parameters())
    blocks = partial.encoder_blocks()
    assert len(blocks) == 3  # conv+BN, conv+BN, dense bottleneck
    trainable = {id(p) for p in partial.optimizer_groups()["encoder"]}
    assert trainable == {id(p) for m in blocks[-1] for p in m.parameters()}
    # frozen BatchNorm keeps its statistics in training mode
    probe.train()
    bn = next(m for m in probe.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = bn.running_mean.clone()
    probe(torch.rand(8, 1, 28, 28), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]))
    assert not bn.training and torch.equal(bn.running_mean, before)
    assert not hasattr(probe, "decode") and "decoder" not in dict(probe.encoder.named_children()) or \
        isinstance(probe.encoder.decoder, torch.nn.Identity)
    with pytest.raises(ConfigError, match="only 3 blocks"):
        tiny_classifier("all-but-4")
    with pytest.raises(ConfigError, match="freeze"):
        tiny_classifier("all-but-0")
    with pytest.raises(ConfigError, match="freeze"):
        tiny_classifier("half")
    mlp = tiny_classifier(head="mlp", head_hidden=7, dropout=0.3, feature_norm=True)
    assert mlp.logits(torch.rand(4, 1, 28, 28)).shape == (4, 3)


def test_two_groups_step_like_one_joint_step():
    """Encoder and head optimisers stepped from one forward equal one optimiser over both."""
    torch.manual_seed(0)
    a = tiny_classifier(dropout=0.0)
    b = tiny_classifier(dropout=0.0)
    b.load_state_dict(a.state_dict())
    x, y = torch.rand(8, 1, 28, 28), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    ctx = sgd_step_context(a, lr=0.1)
    a.train(), b.train()
    a.training_step(Batch(x, y), ctx)
    joint = torch.optim.SGD([p for p in b.parameters() if p.requires_grad], lr=0.1)
    b(x, y).loss.backward()
    joint.step()
    for (n, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(pa, pb, atol=1e-6), n


def test_group_learning_rates_come_from_the_config():
    model = tiny_classifier()
    trainer = Trainer(epochs=1, lr=1e-3, group_options={"encoder": {"lr": 1e-5}, "head": {"lr": 1e-2}})
    trainer._build_optimizers(model)
    assert trainer.optimizers["encoder"].param_groups[0]["lr"] == 1e-5
    assert trainer.optimizers["head"].param_groups[0]["lr"] == 1e-2


def test_resnet18_trunk_with_imagenet_weights_file(tmp_path):
    src = create_model("resnet18", input_shape=(3, 32, 32), num_classes=1000, stem="imagenet")
    torch.save(src.state_dict(), tmp_path / "r18.pth")
    clf = create_model("classifier", input_shape=(1, 32, 32), encoder="resnet18", num_classes=4,
                       encoder_options={"stem": "imagenet"}, pretrained=str(tmp_path / "r18.pth"), freeze="all-but-2")
    assert not torch.allclose(clf.encoder.conv1.weight, src.conv1.weight.sum(1, keepdim=True))  # not read yet
    assert "weights file" in clf.load_pretrained()
    assert torch.allclose(clf.encoder.conv1.weight, src.conv1.weight.sum(1, keepdim=True))
    assert len(clf.encoder_blocks()) == 9
    trainable = {n.split(".")[1] for n, p in clf.named_parameters() if p.requires_grad and n.startswith("encoder.")}
    assert trainable == {"layer4"}  # the last two BasicBlocks
    bad = create_model("classifier", input_shape=(1, 28, 28), encoder="conv_ae", pretrained=str(tmp_path / "r18.pth"))
    with pytest.raises(ModelError, match="only a resnet18 encoder"):
        bad.load_pretrained()


# -- pretrained runs and the classify task -----------------------------------------------------

def test_finetune_an_autoencoder_run_end_to_end(tmp_path, ae_run):
    cfg = classify_cfg(tmp_path, "probe", {"name": "classifier", "pretrained": str(ae_run), "freeze": "all-but-1"},
                       labels=30, eval={"report": False, "figures": True})
    cfg["train"]["groups"] = {"encoder": {"lr": 1e-4}, "head": {"lr": 1e-2}}
    result = train(cfg)
    m = result.metrics
    assert m["classify/num_labels"] == 30 and m["best/monitor"] == "val/acc"
    assert {"test/acc", "test/loss", "test/balanced_acc", "test/acc_class_0", "test/acc_class_9"} <= set(m)
    assert 0 <= m["test/acc"] <= 1 and m["test/num_images"] == 60
    run = result.run_dir
    for f in ("classification/confusion.png", "classification/per_class.csv", "classification/confusion.csv",
              "classification/index.json", "figures/loss_curves.png"):
        assert (run / f).is_file(), f
    csv_rows = (run / "classification" / "per_class.csv").read_text().splitlines()
    assert csv_rows[1].startswith("0,T-shirt/top,") and len(csv_rows) == 11
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert "val/acc" in header and "lr/encoder" in header and "lr/head" in header
    # the frozen blocks hold the autoencoder's weights; the trained block moved away from them
    ae = load_run_model(ae_run)
    clf = load_run_model(run)
    assert torch.equal(clf.encoder.encoder.stage0[0].weight, ae.encoder.stage0[0].weight)
    assert not torch.equal(clf.encoder.encoder.to_latent[1].weight, ae.encoder.to_latent[1].weight)
    # a supervised classify run is itself a pretraining source (its encoder is reused, the head is new)
    again = train(classify_cfg(tmp_path, "second", {"name": "classifier", "pretrained": str(run), "freeze": "encoder"}))
    second = load_run_model(again.run_dir)
    assert second.config.encoder == "classifier"
    assert torch.equal(second.encoder.encoder.encoder.stage0[0].weight, ae.encoder.stage0[0].weight)


def test_selection_last_keeps_the_final_epoch_and_needs_no_validation_labels(tmp_path):
    cfg = classify_cfg(tmp_path, "last", {"name": "classifier", "encoder": "conv_ae", "latent_dim": 6,
                                          "encoder_options": {"channels": [4, 8]}},
                       classify={"labels": 30, "selection": "last"})
    cfg["data"]["val_fraction"] = 0.0
    cfg["train"].update(epochs=3, lr=0.5)  # a rate that makes later epochs no better than the first
    result = train(cfg)
    m = result.metrics
    assert m["best/monitor"] == "epoch" and m["best/epoch"] == 3
    assert m["classify/num_labels"] == 30 and m["classify/num_val_labels"] == 0
    best, last = load_run_model(result.run_dir, "best"), load_run_model(result.run_dir, "last")
    assert all(torch.equal(a, b) for a, b in zip(best.state_dict().values(), last.state_dict().values()))


def _no_new_runs(root):
    return not root.exists() or not any(root.iterdir())


def test_bad_input_is_refused_before_any_run_directory(tmp_path, ae_run):
    out = tmp_path / "runs"
    clf = {"name": "classifier", "pretrained": str(ae_run)}
    cases = [
        (classify_cfg(out, "a", clf, labels=5), ConfigError, "below the number of classes"),
        (classify_cfg(out, "b", clf, labels=2000), ConfigError, "but the training split has only"),
        (dict(classify_cfg(out, "c", clf), data={**DATA, "resize": [32, 32]}), ModelError,
         r"takes images of shape \(1, 28, 28\) but the data has \(1, 32, 32\)"),
        (classify_cfg(out, "d", {"name": "classifier", "pretrained": str(tmp_path / "nowhere")}), RunDirError,
         "neither a run directory"),
        (classify_cfg(out, "e", {"name": "conv_ae"}), ConfigError, "not a classifier"),
        (classify_cfg(out, "f", {"name": "resnet18", "num_classes": 3}), ConfigError, "num_classes=3"),
        (classify_cfg(out, "g", clf, classify={"labels": 30, "selection": "first"}), ConfigError,
         "classify.selection"),
    ]
    for cfg, err, match in cases:
        with pytest.raises(err, match=match) as info:
            train(cfg)
        assert "Fix:" in str(info.value)
    assert _no_new_runs(out)


def test_a_run_whose_model_has_no_encoder_is_refused(tmp_path, ae_run):
    from reprlab.models import registry
    from reprlab.models.base import ModelConfig, ReprModel

    class NoEncoder(ReprModel):  # a registered model without encode (a GAN generator, say)
        pass

    registry._MODELS["no_encoder_test"] = (NoEncoder, ModelConfig)
    try:
        fake = tmp_path / "gan"
        shutil.copytree(ae_run, fake)
        spec_path = fake / "checkpoints" / "best" / "model.json"
        spec = json.loads(spec_path.read_text())
        spec_path.write_text(json.dumps({**spec, "model": "no_encoder_test"}))
        with pytest.raises(ConfigError, match="has no encoder"):
            train(classify_cfg(tmp_path / "runs", "x", {"name": "classifier", "pretrained": str(fake)}))
        with pytest.raises(ConfigError, match="has no encoder"):
            main_config = __import__("reprlab.capabilities.classification", fromlist=["x"]).finetune_config
            main_config(fake, labels=10)
    finally:
        registry._MODELS.pop("no_encoder_test")
    assert _no_new_runs(tmp_path / "runs")


# -- baselines and plots -----------------------------------------------------------------------

def test_code_baselines_on_separable_codes():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (3, 5))
    Xtr = np.concatenate([rng.normal(c, 0.3, (4, 5)) for c in centres]); ytr = np.repeat(np.arange(3), 4)
    Xte = np.concatenate([rng.normal(c, 0.3, (30, 5)) for c in centres]); yte = np.repeat(np.arange(3), 30)
    res = code_baselines(Xtr, ytr, Xte, yte)
    assert set(res) == {"logreg", "knn"} and all(r["acc"] > 0.95 for r in res.values())
    chance = code_baselines(Xtr, ytr, Xte, rng.permutation(yte))  # labels unrelated to the codes
    assert all(r["acc"] < 0.6 for r in chance.values())
    with pytest.raises(ConfigError, match="NaN"):
        code_baselines(np.full((3, 2), np.nan), [0, 1, 2], Xte[:, :2], yte)


def test_frozen_code_baselines_use_the_encoder(ae_run):
    cfg = RunConfig.from_dict({"task": "classify", "data": DATA, "classify": {"labels": 50}})
    splits = budget_splits(cfg, prepare_data(cfg))[0]
    res = frozen_code_baselines(load_run_model(ae_run), splits.train, splits.test)
    assert set(res) == {"logreg", "knn"} and all(0.2 < r["acc"] <= 1 for r in res.values())  # well above chance


def test_summary_and_accuracy_plot(tmp_path):
    rows = [{"method": m, "labels": k, "seed": s, "acc": a, "seconds": 1.0}
            for m, base in (("scratch", 0.5), ("pretrained", 0.6)) for k in (10, 100, "all")
            for s, a in ((0, base), (1, base + 0.1))]
    table = summarise(rows)
    assert [(r["method"], r["labels"]) for r in table][:3] == [("scratch", 10), ("scratch", 100), ("scratch", "all")]
    assert table[0]["mean"] == pytest.approx(0.55) and table[0]["std"] == pytest.approx(np.std([0.5, 0.6], ddof=1))
    path = plot_accuracy_vs_labels(rows, tmp_path / "acc.png")
    assert path.stat().st_size > 1000
    with pytest.raises(ReprlabError, match="no results"):
        plot_accuracy_vs_labels([], tmp_path / "none.png")


# -- the CLI -----------------------------------------------------------------------------------

def test_reprlab_finetune_cli(tmp_path, ae_run, capsys):
    rc = main(["finetune", str(ae_run), "--labels", "20", "--freeze", "none", "--epochs", "1",
               "--output-dir", str(tmp_path), "--name", "ft", "data.max_train=400", "data.max_test=40",
               "data.val_fraction=0.25", "train.progress=off", "eval.report=false", "eval.figures=false"])
    assert rc == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == str(tmp_path / "ft") and any("test/acc=" in line for line in out[:-1])
    cfg = RunConfig.from_yaml(tmp_path / "ft" / "config.yaml")
    assert cfg.task == "classify" and cfg.classify.labels == 20 and cfg.model["freeze"] == "none"
    assert cfg.train.groups == {"encoder": {"lr": 1e-4}, "head": {"lr": 1e-3}}
    assert cfg.model["pretrained_source"] == str(ae_run)
    rc = main(["finetune", str(ae_run), "--freeze", "sometimes", "--output-dir", str(tmp_path / "bad")])
    assert rc == 2 and "error:" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
