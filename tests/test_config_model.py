"""The model section is checked against the model registry before any data is loaded; checkpoints by default."""

from __future__ import annotations

import pytest

import reprlab
from reprlab.base.errors import ConfigError, DataError
from reprlab.config import RunConfig


def missing_data(tmp_path) -> dict:
    """A data section whose files do not exist: anything that loads data fails with a DataError."""
    return {"name": "arrays", "path": str(tmp_path / "nowhere.npz")}


def test_the_missing_data_fails_on_data_when_the_model_is_fine(tmp_path):
    # the control for the tests below: with a good model section the error is about the data
    with pytest.raises(DataError, match="nowhere.npz"):
        reprlab.train({"data": missing_data(tmp_path), "model": {"name": "conv_ae", "latent_dim": 8},
                       "output_dir": str(tmp_path / "runs")})


@pytest.mark.parametrize("model, message", [
    ({"name": "conv_ae", "laten_dim": 8},
     "unknown config key model.laten_dim. Fix: did you mean model.latent_dim? valid keys of model conv_ae:"),
    ({"name": "cov_ae"}, "unknown model 'cov_ae'. Fix: did you mean 'conv_ae'?"),
    ({"name": "conv_ae", "latent_dim": 0}, "model.latent_dim must be >= 1, got 0. Fix: set model.latent_dim to at least 1"),
    ({"name": "conv_ae", "norm": "batchnorm"}, "model.norm must be one of"),
    ({"name": "fc_ae", "output_range": "-1_1"}, "model.output_range='-1_1' does not match data.scale='0_1'"),
])
def test_model_mistakes_fail_before_any_data_is_loaded(tmp_path, model, message):
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({"data": missing_data(tmp_path), "model": model})
    assert str(info.value).startswith(message)
    with pytest.raises(ConfigError) as info:  # through the run API: the model error, not the data's
        reprlab.train({"data": missing_data(tmp_path), "model": model, "output_dir": str(tmp_path / "runs")})
    assert str(info.value).startswith(message)
    assert not (tmp_path / "runs").exists()


def test_model_typo_in_an_override_fails_in_with_overrides(tmp_path):
    cfg = RunConfig.from_dict({"data": missing_data(tmp_path)})
    with pytest.raises(ConfigError, match=r"did you mean model\.latent_dim\?"):
        cfg.with_overrides(["model.laten_dim=8"])


def test_check_model_uses_the_configured_shape():
    # rotnet needs square images: data.resize tells the shape before any data is loaded
    with pytest.raises(ConfigError, match="model 'rotnet'.*square"):
        RunConfig.from_dict({"data": {"resize": [16, 24]}, "model": {"name": "rotnet"}})
    RunConfig.from_dict({"data": {"resize": [16, 16]}, "model": {"name": "rotnet"}})


def test_train_runs_and_keeps_best_and_last_only_by_default(tmp_path, tiny_arrays):
    cfg = {"seed": 0, "output_dir": str(tmp_path / "runs"), "name": "plain",
           "data": {"name": "arrays", "path": str(tiny_arrays), "val_fraction": 0.2},
           "model": {"name": "fc_ae", "latent_dim": 2, "hidden_sizes": [8]},
           "train": {"epochs": 2, "batch_size": 32, "progress": "off", "num_threads": 1},
           "eval": {"figures": False, "report": False}}
    run = reprlab.train(cfg).run_dir
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best", "last"]
    saved = RunConfig.from_yaml(run / "config.yaml")  # the resolved model section validates too
    assert saved.train.checkpoint_every is None and saved.model["input_shape"] == [1, 12, 12]
    cfg["name"], cfg["train"]["checkpoint_every"] = "numbered", 1
    run = reprlab.train(cfg).run_dir
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best", "epoch_0001", "epoch_0002", "last"]
