"""Real data: MNIST (source, 500 images) -> MNIST-M (the shared test split, protocol holdout) with DANN, 1 epoch.

Checks the protocol the run records (holdout of MNIST-M's 9,001 test images: 70% adaptation without
labels, 30% evaluation, seeded) and that the label-free, oracle and last-epoch metrics exist.
"""

from __future__ import annotations

import json

import pytest

import reprlab

pytestmark = pytest.mark.usefixtures("single_thread", "restore_logging")


def test_mnist_to_mnistm_dann_one_epoch_on_the_holdout_protocol(tmp_path, real_data_dir):
    cfg = {"task": "adapt", "seed": 0, "output_dir": str(tmp_path / "runs"), "name": "mnist_mnistm",
           "data": {"name": "mnist", "data_dir": str(real_data_dir), "download": False, "max_train": 500,
                    "max_test": 10, "val_fraction": 0.2},
           "model": {"name": "dann", "preset": "mnist"},
           "train": {"epochs": 1, "batch_size": 64, "optimizer": "sgd", "lr": 0.01, "progress": "off",
                     "num_threads": 1},
           "eval": {"figures": False, "report": False},
           "adapt": {"target": "mnist-m", "method": "dann", "max_target": 500, "max_eval": 300}}
    result = reprlab.train(cfg)
    m = json.loads((result.run_dir / "metrics.json").read_text())
    assert m["adapt/protocol"] == "holdout" and m["adapt/target"] == "mnist-m" and m["adapt/split_seed"] == 0
    assert m["adapt/eval_fraction"] == 0.3
    assert (m["adapt/adaptation_images"], m["adapt/evaluation_images"]) == (500, 300)  # capped parts of 6,300 / 2,701
    assert m["adapt/source_train_images"] == 400 and m["test/num_images"] == 300
    for key in ("test/acc", "test/balanced_acc", "oracle/acc", "last/acc", "select/epoch", "oracle/epoch"):
        assert key in m, key
    assert 0.0 <= m["test/acc"] <= 1.0 and m["best/monitor"] == "val/acc"
    protocol = json.loads((result.run_dir / "adaptation" / "protocol.json").read_text())
    assert protocol["adaptation_from"].startswith("mnist-m test split")
