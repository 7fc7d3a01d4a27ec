"""Tests of semi-supervised few-label training (FixMatch): the loss terms, the classifier step that
uses the unlabelled batch, the `classify.unlabelled` images, `reprlab finetune --unlabelled`, and
the refusals before any run directory."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from reprlab.base.errors import ConfigError
from reprlab.cli.main import main
from reprlab.config import RunConfig
from reprlab.data.batch import Batch
from reprlab.experiments.train import train
from reprlab.models import create_model
from reprlab.models.semisup import align_distribution, fixmatch_terms, pseudo_labels, strong_view
from reprlab.tasks import get_task

from conftest import sgd_step_context

pytestmark = pytest.mark.usefixtures("single_thread")

DATA = {"name": "fashion-mnist-sample", "max_train": 400, "max_test": 60, "val_fraction": 0.25}
TRAIN = {"epochs": 1, "batch_size": 16, "progress": "off", "num_threads": 1}
EVAL = {"report": False, "figures": False}
ENCODER = {"latent_dim": 6, "channels": [4, 8]}


def semi_cfg(root, name, *, labels=30, unlabelled="all", semi="fixmatch", **model):
    return {"seed": 0, "output_dir": str(root), "name": name, "task": "classify",
            "data": {**DATA, "augment": {"flip": True, "crop_padding": 2}},
            "model": {"name": "classifier", "encoder": "conv_ae", "encoder_options": dict(ENCODER),
                      "semi_supervised": semi, **model},
            "train": dict(TRAIN), "eval": dict(EVAL), "classify": {"labels": labels, "unlabelled": unlabelled}}


def test_pseudo_labels_and_the_masked_unlabelled_loss():
    weak = torch.tensor([[5.0, 0.0, 0.0], [0.0, 0.2, 0.0], [0.0, 0.0, 6.0]])
    pseudo, mask = pseudo_labels(weak, confidence=0.9)
    assert pseudo.tolist() == [0, 1, 2] and mask.tolist() == [1.0, 0.0, 1.0]
    labelled, labels = torch.tensor([[2.0, 0.0, 0.0]]), torch.tensor([0])
    strong = torch.randn(3, 3)
    t = fixmatch_terms(labelled, labels, strong, pseudo, mask, unlabelled_weight=0.5)
    ce = F.cross_entropy(strong, pseudo, reduction="none")
    expected_u = (ce[0] + ce[2]) / 3  # the unconfident image counts in the mean with weight 0
    assert torch.allclose(t["unlabelled"], expected_u)
    assert torch.allclose(t["supervised"], F.cross_entropy(labelled, labels))
    assert torch.allclose(t["loss"], t["supervised"] + 0.5 * expected_u)
    assert float(t["mask_rate"]) == pytest.approx(2 / 3)
    none = fixmatch_terms(labelled, labels, strong, *pseudo_labels(weak, confidence=1.0), unlabelled_weight=1.0)
    assert float(none["unlabelled"]) == 0.0 and float(none["mask_rate"]) == 0.0


def test_distribution_alignment_lowers_the_over_predicted_class():
    running = torch.tensor([0.7, 0.2, 0.1])  # the model has been predicting class 0 far too often
    weak = torch.log(torch.tensor([[0.96, 0.02, 0.02], [0.02, 0.96, 0.02]]))
    plain, plain_mask = pseudo_labels(weak, confidence=0.95)
    aligned, mask = pseudo_labels(weak, confidence=0.95, running_mean=running.clone())
    assert plain_mask.tolist() == [1.0, 1.0] and mask.tolist() == [0.0, 1.0]  # class 0 no longer passes
    rm = running.clone()
    align_distribution(torch.softmax(weak, 1), rm, momentum=0.5)
    assert torch.allclose(rm, 0.5 * running + 0.5 * torch.softmax(weak, 1).mean(0))


def test_checking_a_classifier_config_leaves_the_global_rng_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    from reprlab.models.classifier import ClassifierConfig

    torch.manual_seed(0)
    ClassifierConfig(input_shape=(1, 28, 28), encoder="conv_ae", strong_augment={"cutout": 0.3})
    assert torch.equal(torch.rand(3), expected)


def test_strong_view_is_seeded_in_range_and_differs_from_the_input():
    x = torch.rand(4, 1, 12, 12)
    a = strong_view(x, value_range=(0.0, 1.0), generator=torch.Generator().manual_seed(0))
    b = strong_view(x, value_range=(0.0, 1.0), generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and not torch.allclose(a, x) and 0 <= float(a.min()) and float(a.max()) <= 1
    y = strong_view(x * 2 - 1, value_range=(-1.0, 1.0), options={"brightness": 0.0, "contrast": 0.0})
    assert float(y.min()) >= -1 and float(y.max()) <= 1


def test_the_classifier_step_learns_from_the_unlabelled_batch():
    """With every pseudo-label confident, the step's loss and update depend on the unlabelled images."""
    torch.manual_seed(0)
    x, y = torch.rand(6, 1, 28, 28), torch.tensor([0, 1, 2, 0, 1, 2])
    u1, u2 = torch.rand(6, 1, 28, 28), torch.rand(6, 1, 28, 28)

    def step(unlabelled, semi="fixmatch", weight=1.0, align=False, model=None):
        torch.manual_seed(1)
        m = model or create_model("classifier", input_shape=(1, 28, 28), encoder="conv_ae",
                                  encoder_options=dict(ENCODER), num_classes=3, semi_supervised=semi, confidence=0.0,
                                  unlabelled_weight=weight, distribution_alignment=align)
        ctx = sgd_step_context(m, lr=0.5)
        torch.manual_seed(2)
        terms = m.training_step(Batch(x, y, target=None if unlabelled is None else Batch(unlabelled)), ctx)
        return (terms, m.head[-1].weight.detach().clone()) if model is None else m

    t1, w1 = step(u1)
    t2, w2 = step(u2)
    assert float(t1["mask_rate"]) == 1.0 and float(t1["unlabelled"]) > 0
    assert not torch.allclose(t1["unlabelled"], t2["unlabelled"]) and not torch.allclose(w1, w2)
    t0, w0 = step(u1, weight=0.0)  # the same images, the unlabelled term weighted 0: another update
    assert torch.allclose(t0["loss"], t0["supervised"]) and torch.allclose(t0["supervised"], t1["supervised"])
    assert not torch.allclose(w0, w1)
    plain, _ = step(None)  # no unlabelled batch: the plain cross-entropy step
    assert "unlabelled" not in plain
    ignored, _ = step(u1, semi="none")  # a supervised model ignores a target batch
    assert "unlabelled" not in ignored
    aligned = create_model("classifier", input_shape=(1, 28, 28), encoder="conv_ae", encoder_options=dict(ENCODER),
                           num_classes=3, semi_supervised="fixmatch", distribution_alignment=True)
    step(u1, model=aligned)  # the moving average of the predictions leaves the uniform start
    assert not torch.allclose(aligned.prediction_mean(3), torch.full((3,), 1 / 3))


def test_unlabelled_images_are_the_rest_of_the_training_split_without_labels():
    cfg = RunConfig.from_dict(semi_cfg("/unused", "x"))
    splits = get_task("classify").prepare_data(cfg)
    assert len(splits.train) == 30 and splits.target is not None and splits.target.labels is None
    assert len(splits.train) + len(splits.target) == 300  # 400 images, a quarter for validation
    labelled = {bytes(img.numpy()) for img in splits.train.images}
    assert not labelled & {bytes(img.numpy()) for img in splits.target.images}
    capped = get_task("classify").prepare_data(RunConfig.from_dict(semi_cfg("/unused", "y", unlabelled=50)))
    assert len(capped.target) == 50
    plain = get_task("classify").prepare_data(RunConfig.from_dict(semi_cfg("/unused", "z", unlabelled="none",
                                                                           semi="none")))
    assert plain.target is None


def test_fixmatch_classify_run_end_to_end(tmp_path):
    result = train(semi_cfg(tmp_path, "fm", confidence=0.2))
    m = result.metrics
    assert m["classify/num_labels"] == 30 and m["classify/num_unlabelled"] == 270
    header = (result.run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/unlabelled", "train/mask_rate", "train/supervised"} <= set(header)
    rows = (result.run_dir / "metrics.csv").read_text().splitlines()
    assert len(rows) == 2  # one epoch: one pass over the 270 unlabelled images, paired with labelled batches


def test_flexmatch_classify_run_end_to_end_keeps_its_memory_in_the_resume_state(tmp_path):
    from reprlab.training.checkpoint import load_state

    result = train(semi_cfg(tmp_path, "flex", semi="flexmatch", confidence=0.2))
    assert result.metrics["classify/num_unlabelled"] == 270
    selected = load_state(result.run_dir / "checkpoints", "last")["model"]["flexmatch_selected"]
    assert selected.shape == (270,) and (selected >= 0).any()  # the task sized the memory; the run filled it


def test_bad_semi_supervised_input_is_refused_before_any_run_directory(tmp_path):
    out = tmp_path / "runs"
    cases = [
        (semi_cfg(out, "a", semi="none"), "would not be used"),
        (semi_cfg(out, "b", unlabelled="none"), "needs unlabelled images"),
        (semi_cfg(out, "c", unlabelled=5000), "only 270 training images lie outside"),
        (semi_cfg(out, "d", unlabelled="some"), "classify.unlabelled"),
        (semi_cfg(out, "e", strong_augment={"zoom": 2}), "unknown option .zoom."),
        (semi_cfg(out, "e2", strong_augment={"cutout": 3}), "cutout=3.0 is not a fraction"),
        (semi_cfg(out, "f", confidence=1.5), "confidence"),
        (semi_cfg(out, "g", semi="mixmatch"), "semi_supervised"),
        (semi_cfg(out, "h", labels="all"), "every training image is labelled"),
    ]
    for cfg, match in cases:
        with pytest.raises(ConfigError, match=match) as info:
            train(cfg)
        assert "Fix:" in str(info.value)
    assert not out.exists() or not any(out.iterdir())


def test_reprlab_finetune_with_unlabelled_images(tmp_path, capsys):
    pre = train({"seed": 0, "output_dir": str(tmp_path), "name": "ae", "data": dict(DATA),
                 "model": {"name": "conv_ae", **ENCODER}, "train": dict(TRAIN), "eval": dict(EVAL)}).run_dir
    rc = main(["finetune", str(pre), "--labels", "20", "--freeze", "none", "--epochs", "1", "--unlabelled", "100",
               "--output-dir", str(tmp_path), "--name", "ft", "data.max_train=400", "data.max_test=40",
               "data.val_fraction=0.25", "train.progress=off", "eval.report=false", "eval.figures=false",
               "train.batch_size=16", "--rounds", "2"])
    assert rc == 0
    cfg = RunConfig.from_yaml(tmp_path / "ft" / "config.yaml")
    assert cfg.model["semi_supervised"] == "fixmatch" and cfg.classify.unlabelled == 100
    again = RunConfig.from_yaml(tmp_path / "ft-round2" / "config.yaml")  # --rounds 2: a second round from the first
    assert again.model["pretrained_source"] == str(tmp_path / "ft") and again.classify.unlabelled == 100
    out = capsys.readouterr().out
    assert "test/acc=" in out and out.strip().splitlines()[-1] == str(tmp_path / "ft-round2")


def test_flexmatch_thresholds_warm_up_then_follow_how_well_each_class_is_learned():
    from reprlab.models.semisup import flexmatch_thresholds

    assert flexmatch_thresholds(torch.full((10,), -1), 2, confidence=0.9).tolist() == [0.0, 0.0]  # nothing learned
    warming = torch.tensor([0, 0, 0, 1] + [-1] * 6)  # most images unused: they set the scale
    assert flexmatch_thresholds(warming, 2, confidence=0.9).tolist() == pytest.approx([0.9 * 0.5 / 1.5, 0.9 / 11])
    learned = torch.tensor([0] * 5 + [1] * 4 + [-1])  # the best class sets the scale and keeps the threshold
    assert flexmatch_thresholds(learned, 2, confidence=0.9).tolist() == pytest.approx([0.9, 0.9 * 0.8 / 1.2])


def _flexmatch_model(confidence):
    return create_model("classifier", input_shape=(1, 28, 28), encoder="conv_ae", encoder_options=dict(ENCODER),
                        num_classes=3, semi_supervised="flexmatch", confidence=confidence)


def test_the_flexmatch_step_lowers_thresholds_and_remembers_each_unlabelled_image():
    torch.manual_seed(0)
    x, y, u = torch.rand(6, 1, 28, 28), torch.tensor([0, 1, 2, 0, 1, 2]), torch.rand(6, 1, 28, 28)
    index = torch.tensor([3, 9, 4, 0, 17, 11])
    batch = Batch(x, y, target=Batch(u, index=index))

    def step(model):
        torch.manual_seed(2)
        return model.training_step(batch, sgd_step_context(model, lr=0.1))

    torch.manual_seed(1)
    fix = create_model("classifier", input_shape=(1, 28, 28), encoder="conv_ae", encoder_options=dict(ENCODER),
                       num_classes=3, semi_supervised="fixmatch", confidence=0.99)
    flex = _flexmatch_model(0.99)
    flex.load_state_dict(fix.state_dict())
    with pytest.raises(ConfigError, match="start_semi_supervised"):
        step(flex)  # it does not know how many unlabelled images there are
    flex.start_semi_supervised(20)
    assert float(step(fix)["mask_rate"]) < 0.5  # an untrained model is rarely 99% sure
    assert float(step(flex)["mask_rate"]) == 1.0  # FlexMatch: no class learned yet, every threshold 0
    assert flex.training_state()["flexmatch_selected"].tolist() == [-1] * 20  # none reached 0.99: none remembered

    torch.manual_seed(1)
    sure = _flexmatch_model(0.0)  # every prediction counts as sure: each image is remembered with its class
    sure.start_semi_supervised(20)
    with torch.no_grad():
        expected = sure.logits(u).argmax(1)
    step(sure)
    selected = sure.training_state()["flexmatch_selected"]
    assert selected[index].tolist() == expected.tolist()
    assert (selected[[i for i in range(20) if i not in index.tolist()]] == -1).all()

    with pytest.raises(ConfigError, match="index"):
        sure.training_step(Batch(x, y, target=Batch(u)), sgd_step_context(sure, lr=0.1))  # no indices
    with pytest.raises(ConfigError, match="index below 20"):
        sure.training_step(Batch(x, y, target=Batch(u, index=index + 10)), sgd_step_context(sure, lr=0.1))
    fresh = _flexmatch_model(0.0)
    fresh.start_semi_supervised(20)
    fresh.load_training_state(sure.training_state())
    assert torch.equal(fresh.training_state()["flexmatch_selected"], selected)
    aligned = torch.tensor([0.5, 0.3, 0.2])  # distribution alignment's average resumes too
    fresh.load_training_state({**sure.training_state(), "prediction_mean": aligned})
    assert torch.equal(fresh.prediction_mean(3), aligned) and torch.equal(fresh.training_state()["prediction_mean"],
                                                                         aligned)
    fresh.start_semi_supervised(30)
    with pytest.raises(ConfigError, match="FlexMatch memory of 30"):
        fresh.load_training_state(sure.training_state())  # saved for another unlabelled set


def test_a_flexmatch_run_resumes_its_thresholds_exactly():
    """Two epochs straight against one, then a fresh model resumed from the state: the same weights, which
    needs the memory of selected images in the resume state (a state without it is refused)."""
    from reprlab.data.dataset import ImageData
    from reprlab.training.callbacks import Callback
    from reprlab.training.engine import Trainer

    class StopAfter(Callback):  # an interruption after the first epoch
        def on_epoch_end(self, trainer, epoch, row):
            trainer.should_stop = True

    g = torch.Generator().manual_seed(0)
    data = ImageData((torch.rand(24, 1, 28, 28, generator=g) * 255).to(torch.uint8), torch.arange(24) % 3)
    val = ImageData((torch.rand(12, 1, 28, 28, generator=g) * 255).to(torch.uint8), torch.arange(12) % 3)
    unlabelled = ImageData((torch.rand(48, 1, 28, 28, generator=g) * 255).to(torch.uint8))

    def model():
        torch.manual_seed(5)
        m = _flexmatch_model(0.5)
        m.start_semi_supervised(len(unlabelled))
        return m

    def trainer(**kw):
        return Trainer(epochs=2, batch_size=8, seed=3, lr=1e-2, **kw)

    full = model()
    trainer().fit(full, data, val, target=unlabelled)
    assert (full.training_state()["flexmatch_selected"] >= 0).any()  # some images were remembered
    part = model()
    state = trainer(callbacks=[StopAfter()]).fit(part, data, val, target=unlabelled).resume_state()
    resumed = model()  # a new process: fresh memory, the weights of the stopped run
    resumed.load_state_dict(part.state_dict())
    trainer().fit(resumed, data, val, target=unlabelled, resume=state)
    for k, v in full.state_dict().items():
        assert torch.allclose(v.float(), resumed.state_dict()[k].float(), atol=1e-6), k
    assert torch.equal(full.training_state()["flexmatch_selected"], resumed.training_state()["flexmatch_selected"])
    with pytest.raises(ConfigError, match="FlexMatch memory"):
        trainer().fit(model(), data, val, target=unlabelled, resume={k: v for k, v in state.items() if k != "model"})


# -- self-training rounds ------------------------------------------------------------------------

def test_self_training_rounds_start_each_round_from_the_last_one_on_the_same_labels(tmp_path):
    from reprlab.experiments.selftrain import self_train

    results = self_train(semi_cfg(tmp_path, "st", semi="flexmatch", confidence=0.2), rounds=3)
    assert [r.run_dir for r in results] == [tmp_path / "st", tmp_path / "st-round2", tmp_path / "st-round3"]
    configs = [RunConfig.from_yaml(r.run_dir / "config.yaml") for r in results]
    assert configs[0].model["encoder"] == "conv_ae"
    for k in (1, 2):  # round k + 1 fine-tunes the classifier that round k trained, with a new head
        assert configs[k].model["encoder"] == "classifier"
        assert configs[k].model["pretrained_source"] == str(results[k - 1].run_dir)
        assert configs[k].model["semi_supervised"] == "flexmatch" and configs[k].classify.labels == 30
    labelled = [get_task("classify").prepare_data(c).train for c in configs]
    assert all(torch.equal(labelled[0].images, s.images) and torch.equal(labelled[0].labels, s.labels)
               for s in labelled[1:])
    assert all(r.metrics["classify/num_labels"] == 30 and r.metrics["classify/num_unlabelled"] == 270
               for r in results)


def test_reprlab_train_rounds_prints_every_round_and_refuses_bad_rounds_before_any_run(tmp_path, capsys):
    import yaml

    config = tmp_path / "semi.yaml"
    config.write_text(yaml.safe_dump(semi_cfg(tmp_path / "runs", "cli", confidence=0.2)))
    assert main(["train", str(config), "--rounds", "2"]) == 0
    dirs = [line for line in capsys.readouterr().out.splitlines() if line.startswith(str(tmp_path))]
    assert dirs == [str(tmp_path / "runs" / "cli"), str(tmp_path / "runs" / "cli-round2")]
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "bad"), "data": dict(DATA),
                                     "model": {"name": "conv_ae", **ENCODER}, "train": dict(TRAIN)}))
    (tmp_path / "runs" / "again-round2").mkdir()  # a later round's folder left from an earlier try
    for argv, match in ((["train", str(config), "--rounds", "0", "output_dir=" + str(tmp_path / "bad")], "rounds=0"),
                        (["train", str(plain), "--rounds", "2"], "needs a classify run"),
                        (["train", "--resume", str(tmp_path / "runs" / "cli"), "--rounds", "2"], "takes no --rounds"),
                        (["train", str(config), "--rounds", "2", "name=again"], "again-round2 (round 2) already exists")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert match in err and "Fix:" in err
    assert not (tmp_path / "bad").exists() and not (tmp_path / "runs" / "again").exists()
