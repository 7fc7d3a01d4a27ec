"""The layered layout keeps the old import paths, finds its plugins and records run kinds."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("old, new", [
    ("reprlab.analysis", "reprlab.capabilities.analysis"),
    ("reprlab.analysis.pipeline", "reprlab.capabilities.analysis.pipeline"),
    ("reprlab.clustering", "reprlab.capabilities.clustering"),
    ("reprlab.clustering.pipeline", "reprlab.capabilities.clustering.pipeline"),
    ("reprlab.anomaly", "reprlab.capabilities.anomaly"),
    ("reprlab.anomaly.scores", "reprlab.capabilities.anomaly.scores"),
])
def test_old_import_paths_are_the_new_modules(old, new):
    # the same module object: no second copy (which would register models or sections twice)
    assert importlib.import_module(old) is importlib.import_module(new)


def test_old_error_classes_are_the_new_ones():
    import reprlab.base.errors as new
    import reprlab.errors as old

    assert old.ConfigError is new.ConfigError and old.ReprlabError is new.ReprlabError


def test_plugins_register_their_sections_and_hooks():
    from reprlab.base.plugins import load_plugins
    from reprlab.config import RunConfig
    from reprlab.runs import list_post_run_hooks

    assert {"analysis", "clustering"} <= set(load_plugins())
    hooks = list_post_run_hooks()
    assert hooks.index("analysis") < hooks.index("clustering")  # analysis (order 10) before clustering (20)
    cfg = RunConfig.from_dict({"cluster": {"enabled": True, "reducer": "pca"}})
    assert cfg.cluster.reducer == "pca" and "cluster" in cfg.to_dict()


def test_unknown_top_level_section_names_the_known_ones():
    from reprlab.base.errors import ConfigError
    from reprlab.config import RunConfig

    with pytest.raises(ConfigError, match=r"unknown config key clustr.*did you mean cluster\?"):
        RunConfig.from_dict({"clustr": {}})


def test_post_run_hooks_run_in_order_and_a_failing_one_is_skipped():
    from reprlab.base.errors import ConfigError
    from reprlab.runs import PostRunContext, register_post_run_hook, run_post_run_hooks
    from reprlab.runs.hooks import _HOOKS, unregister_post_run_hook

    saved = dict(_HOOKS)
    _HOOKS.clear()
    seen = []
    try:
        register_post_run_hook("second", lambda ctx: seen.append("second") or {"b": 2.0}, order=2)
        register_post_run_hook("first", lambda ctx: seen.append("first") or {"a": 1.0}, order=1)

        def broken(ctx):
            raise ConfigError("cannot", fix="nothing")
        register_post_run_hook("broken", broken, order=3)
        out = run_post_run_hooks(PostRunContext(cfg=None, run=None, model=None, splits=None, device=None))
        assert seen == ["first", "second"] and out == {"a": 1.0, "b": 2.0}
        unregister_post_run_hook("broken")
    finally:
        _HOOKS.clear()
        _HOOKS.update(saved)


def test_run_kind_is_recorded_and_older_runs_are_inferred(tmp_path):
    from reprlab.runs import RunDir

    run = RunDir.create(tmp_path, "a", kind="detect")
    assert run.kind == "detect"
    (run.path / "run.json").unlink()
    (run.path / "config.yaml").write_text("detector:\n  score: mse\n")
    assert RunDir(run.path).kind == "detect"
    (run.path / "config.yaml").write_text("model:\n  name: conv_ae\n")
    assert RunDir(run.path).kind == "train"


def test_paired_loader_epochs_follow_the_larger_or_smaller_side():
    import torch

    from reprlab.data.dataset import ImageData
    from reprlab.training.loader import PairedLoader

    src = ImageData(torch.rand(40, 1, 4, 4), torch.arange(40) % 3)
    tgt = ImageData(torch.rand(12, 1, 4, 4))
    larger = PairedLoader(src, tgt, batch_size=4, seed=1)
    smaller = PairedLoader(src, tgt, batch_size=4, seed=1, epoch_by="smaller")
    assert len(larger) == 10 and len(smaller) == 3
    steps = list(larger.epoch(0))
    assert len(steps) == 10 and all(len(s.target) == 4 for s in steps)
    assert steps[0].domains.tolist() == [0] * 4 and steps[0].target.domains.tolist() == [1] * 4
    # the same seed replays the same batches (resume), another epoch draws others
    again = list(PairedLoader(src, tgt, batch_size=4, seed=1).epoch(0))
    assert all(torch.equal(a.images, b.images) and torch.equal(a.target.images, b.target.images)
               for a, b in zip(steps, again))
    assert not torch.equal(steps[0].images, next(iter(larger.epoch(1))).images)
    # the target side cycles: every target image is seen within an epoch over the larger side
    seen = torch.cat([s.target.images for s in steps[:3]])
    assert sorted(seen.flatten(1).sum(1).tolist()) == sorted(tgt.images.flatten(1).sum(1).tolist())
    # a larger target batch (FixMatch's unlabelled ratio); an epoch over the larger side counts in steps of each
    wide = PairedLoader(tgt, src, batch_size=2, seed=1, target_batch_size=8)
    assert len(wide) == 6 and [(len(s), len(s.target)) for s in wide.epoch(0)] == [(2, 8)] * 6
    from reprlab.base.errors import ConfigError
    with pytest.raises(ConfigError, match=r"fewer images per rank than one batch \(50\)") as info:
        PairedLoader(src, tgt, batch_size=4, target_batch_size=50)
    assert "train.target_batch_size" in str(info.value)


def test_batches_carry_labels_through_splits_and_subsets():
    from reprlab.config import RunConfig
    from reprlab.runs import prepare_data
    from reprlab.training.loader import BatchLoader

    cfg = RunConfig.from_dict({"data": {"name": "fashion-mnist-sample", "max_train": 60, "max_test": 20}})
    splits = prepare_data(cfg)
    for part in (splits.train, splits.val, splits.test):
        assert part.labels is not None and len(part.labels) == len(part)
    batch = next(iter(BatchLoader(splits.train, batch_size=8, seed=0).epoch(0)))
    idx = BatchLoader(splits.train, batch_size=8, seed=0).indices(0)[:8]
    assert batch.labels.tolist() == splits.train.labels[idx].tolist()


def test_list_tasks_includes_the_capability_tasks():
    import subprocess
    import sys

    # a fresh interpreter: nothing has loaded the capability plugins yet
    out = subprocess.run([sys.executable, "-c", "from reprlab.tasks import list_tasks; print(' '.join(list_tasks()))"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert {"reconstruct", "generate", "classify"} <= set(out)


def test_a_healthy_default_run_logs_no_warning(tmp_path, caplog):
    """The default path (training, final evaluation, the quick analysis, the report) is quiet at WARNING."""
    import logging

    import reprlab

    cfg = {"seed": 0, "output_dir": str(tmp_path / "runs"), "name": "quiet",
           "data": {"name": "fashion-mnist-sample", "max_train": 800, "max_test": 200},
           "model": {"name": "fc_ae", "latent_dim": 16, "hidden_sizes": [128]},
           "train": {"epochs": 4, "batch_size": 32, "lr": 2e-3, "progress": "off", "num_threads": 1}}
    with caplog.at_level(logging.INFO, logger="reprlab"):
        result = reprlab.train(cfg)
    assert (result.run_dir / "report.html").exists() and (result.run_dir / "analysis" / "index.json").exists()
    assert "analysis 'samples' skipped" in caplog.text  # said, at INFO: an autoencoder has no prior
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_the_facade_offers_search_cv_and_sweep():
    import reprlab
    from reprlab.experiments import cv, search, sweep

    assert reprlab.tune is search.tune and reprlab.cross_validate is cv.cross_validate and reprlab.sweep is sweep.sweep
