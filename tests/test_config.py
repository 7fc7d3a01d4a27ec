"""Config loading, overrides and validation errors."""

from __future__ import annotations

import pytest

from reprlab.config import RunConfig, apply_overrides
from reprlab.base.errors import ConfigError


def test_defaults_validate_and_roundtrip_yaml(tmp_path):
    cfg = RunConfig.from_dict({})
    path = tmp_path / "c.yaml"
    path.write_text(cfg.to_yaml())
    assert RunConfig.from_yaml(path).to_dict() == cfg.to_dict()


def test_overrides_parse_values():
    cfg = RunConfig.from_dict({}).with_overrides(
        ["model.latent_dim=8", "train.lr=1e-4", "data.resize=[32, 32]", "train.grad_clip=null", "model.name=vae"])
    assert cfg.model["latent_dim"] == 8 and cfg.train.lr == 1e-4 and cfg.data.resize == [32, 32]
    assert cfg.model["name"] == "vae" and cfg.train.grad_clip is None


@pytest.mark.parametrize("text, expected", [("off", "off"), ("on", "on"), ("auto", "auto"), ("no", "off")])
def test_progress_on_off_survive_yaml_booleans(tmp_path, text, expected):
    assert RunConfig.from_dict({}).with_overrides([f"train.progress={text}"]).train.progress == expected
    path = tmp_path / "c.yaml"
    path.write_text(f"train:\n  progress: {text}\n")
    assert RunConfig.from_yaml(path).train.progress == expected


def test_yaml_scientific_notation_is_a_number(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 1e-3\n")
    assert RunConfig.from_yaml(path).train.lr == pytest.approx(1e-3)


@pytest.mark.parametrize("override, phrase", [
    ("train.lr=-0.1", "train.lr must be > 0"),
    ("train.epochs=0", "train.epochs must be >= 1"),
    ("train.optimizer=adamax", "train.optimizer must be one of"),
    ("data.scale=0_255", "data.scale must be one of"),
    ("data.val_fraction=1.5", "data.val_fraction must be <= 0.9"),
    ("train.batchsize=3", "unknown config key train.batchsize"),
    ("data.resize=[32]", "data.resize must be [H, W]"),
    ("train.early_stopping.patience=0", "patience must be >= 1"),
    ("train.ema_decay=1", "train.ema_decay=1.0 never moves the average"),
    ("train.ema_decay=0", "train.ema_decay must be > 0"),
])
def test_bad_values_name_the_key_and_fix(override, phrase):
    with pytest.raises(ConfigError, match="Fix:") as info:
        RunConfig.from_dict({}).with_overrides([override])
    assert phrase in str(info.value)


def test_typo_suggests_the_key():
    with pytest.raises(ConfigError, match="did you mean train"):
        RunConfig.from_dict({"trian": {}})


def test_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        RunConfig.from_yaml(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        RunConfig.from_yaml(tmp_path / "missing.yaml")


def test_override_without_equals():
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["model.latent_dim"])
