"""The typed config: strict field types, one-line errors, YAML quirks, registered sections, round trips."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from reprlab.base.errors import ConfigError
from reprlab.base.validation import check_int
from reprlab.config import RunConfig, apply_overrides, register_section, section
from reprlab.config import core as config_core


@pytest.mark.parametrize("override, message", [
    ("train.tensorboard=maybe", "train.tensorboard must be true or false, got 'maybe'. Fix: set train.tensorboard=true or false"),
    ("eval.report=no_thanks", "eval.report must be true or false, got 'no_thanks'. Fix: set eval.report=true or false"),
    ("eval.show=[a,b]", "eval.show must be a list of integers, got ['a', 'b']. Fix: set eval.show to a list of integers"),
    ("train.sanity_check=7", "train.sanity_check must be true or false, got 7. Fix: set train.sanity_check=true or false"),
    ("train.epochs=2.5", "train.epochs must be an integer, got 2.5. Fix: set train.epochs to an integer"),
    ("train.lr=abc", "train.lr must be a number, got 'abc'. Fix: set train.lr to a number"),
    ("train.lr=true", "train.lr must be a number, got True"),
    ("train.tensorboard=1", "train.tensorboard must be true or false, got 1"),
    ("train.epochs='3'", "train.epochs must be an integer, got '3'"),
    ("data.max_train=many", "data.max_train must be an integer or null, got 'many'"),
    ("data.resize=[a,3]", "data.resize must be a list of integers or null, got ['a', 3]"),
    ("data.augment.flip=sometimes", "data.augment.flip must be true or false, got 'sometimes'"),
    ("train.early_stopping.min_delta=lots", "train.early_stopping.min_delta must be a number, got 'lots'"),
    ("train.early_stopping=3", "train.early_stopping must be a mapping, got 3"),
    ("name=2024", "name must be a string or null, got 2024. Fix: set name to a string or null (quote it: name='2024')"),
])
def test_wrong_types_are_one_config_error_naming_key_value_and_fix(override, message):
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({}).with_overrides([override])
    assert str(info.value).startswith(message) and "Fix:" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("override, phrase", [
    ("train.checkpoint_every=0", "train.checkpoint_every must be >= 1, got 0"),
    ("eval.k=65", "eval.k must be <= 64"),
    ("train.betas=[0.9]", "train.betas must be two numbers"),
    ("train.gamma=0", "train.gamma must be > 0"),
    ("data.channels=2", "data.channels must be 1 or 3"),
    ("train.progress=sometimes", "train.progress must be one of"),
    ("data.augment.rotation=200", "data.augment.rotation must be <= 180"),
])
def test_range_checks_are_kept(override, phrase):
    with pytest.raises(ConfigError, match="Fix:") as info:
        RunConfig.from_dict({}).with_overrides([override])
    assert phrase in str(info.value)


@pytest.mark.parametrize("raw, phrase", [
    ({"data": {"augment": {"flipp": True}}}, "unknown config key data.augment.flipp. Fix: did you mean data.augment.flip?"),
    ({"train": {"early_stopping": {"patiense": 3}}}, "did you mean train.early_stopping.patience?"),
    ({"train": {"groups": {"encoder": {"lrr": 1e-4}}}}, "unknown config key train.groups.encoder.lrr. Fix: did you mean train.groups.encoder.lr?"),
    ({"evall": {}}, "unknown config key evall. Fix: did you mean eval? valid keys:"),
])
def test_unknown_keys_suggest_the_closest(raw, phrase):
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict(raw)
    assert phrase in str(info.value) and "valid keys" in str(info.value)


def test_group_settings_are_typed_and_checked():
    cfg = RunConfig.from_dict({}).with_overrides(["train.groups.encoder.lr=1e-4", "train.groups.encoder.betas=[0.5,0.999]"])
    assert cfg.train.groups == {"encoder": {"lr": 1e-4, "betas": [0.5, 0.999]}}
    with pytest.raises(ConfigError, match=r"train\.groups\.head\.lr must be > 0, got -1\.0\. Fix: set train\.groups\.head\.lr > 0"):
        cfg.with_overrides(["train.groups.head.lr=-1"])
    with pytest.raises(ConfigError, match=r"train\.groups\.head\.optimizer must be one of"):
        cfg.with_overrides(["train.groups.head.optimizer=adamax"])


@pytest.mark.parametrize("override, scale", [
    ("data.scale=0_1", "0_1"), ("data.scale=-1_1", "-1_1"), ("data.scale='-1_1'", "-1_1"), ('data.scale="0_1"', "0_1")])
def test_scale_overrides_stay_strings(override, scale):
    cfg = RunConfig.from_dict({}).with_overrides([override])
    assert cfg.data.scale == scale and isinstance(cfg.data.scale, str)


@pytest.mark.parametrize("value", ["-1_1", "'-1_1'", '"-1_1"'])
def test_model_output_range_override_stays_a_string(value):
    cfg = RunConfig.from_dict({}).with_overrides(["data.scale=-1_1", f"model.output_range={value}"])
    assert cfg.model["output_range"] == "-1_1"
    assert apply_overrides({}, [f"model.output_range={value}"]) == {"model": {"output_range": "-1_1"}}


def test_scale_strings_in_a_yaml_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  scale: -1_1\nmodel:\n  name: conv_ae\n  output_range: -1_1\n")
    cfg = RunConfig.from_yaml(path)
    assert cfg.data.scale == "-1_1" and cfg.model["output_range"] == "-1_1"


def test_numbers_keep_working_with_the_yaml_fixes(tmp_path):
    cfg = RunConfig.from_dict({}).with_overrides(
        ["train.epochs=1_000", "train.lr='2e-4'", "model.rotation_beta='1e-1'", "model.latent_dim=1_6"])
    assert cfg.train.epochs == 1000 and cfg.train.lr == pytest.approx(2e-4)
    assert cfg.model["rotation_beta"] == pytest.approx(0.1) and cfg.model["latent_dim"] == 16
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 1e-3\n  weight_decay: 5.0e-4\n  progress: off\n")
    loaded = RunConfig.from_yaml(path)
    assert loaded.train.lr == pytest.approx(1e-3) and loaded.train.weight_decay == pytest.approx(5e-4)
    assert loaded.train.progress == "off"
    assert RunConfig.from_dict({"train": {"lr": "1e-3"}}).train.lr == pytest.approx(1e-3)  # a dict from plain yaml.safe_load


def test_yaml_round_trip_keeps_every_value(tmp_path):
    from reprlab.base.plugins import load_plugins

    load_plugins()
    cfg = RunConfig.from_dict({}).with_overrides([
        "data.scale=-1_1", "model.output_range=-1_1", "model.latent_dim=8", "train.groups.encoder.lr=1e-4",
        "train.checkpoint_every=2", "train.progress=off", "name='1e-3'", "cluster.n_clusters=auto",
        "train.early_stopping.monitor=val/mse", "data.resize=[16,16]"])
    text = cfg.to_yaml()
    path = tmp_path / "c.yaml"
    path.write_text(text)
    again = RunConfig.from_yaml(path)
    assert again.to_dict() == cfg.to_dict()
    assert again.data.scale == "-1_1" and again.cluster.n_clusters == "auto" and again.train.checkpoint_every == 2
    assert again.name == "1e-3"  # a string that YAML 1.2 reads as a number is written quoted
    assert yaml.safe_load(text)["data"]["scale"] == "-1_1"  # plain YAML 1.1 readers agree


def test_attributes_stay_mutable_and_validate_checks_them_again():
    cfg = RunConfig.from_dict({})
    cfg.data.data_dir = "/somewhere"
    cfg.model = {"name": "fc_ae", "latent_dim": 3}
    cfg.validate()
    assert cfg.data.data_dir == "/somewhere" and cfg.model_kwargs() == {"latent_dim": 3}
    cfg.train.tensorboard = "maybe"
    with pytest.raises(ConfigError, match="train.tensorboard must be true or false, got 'maybe'"):
        cfg.validate()
    cfg.train.tensorboard = False
    cfg.train.lr = "1e-2"  # repaired as on loading
    cfg.validate()
    assert cfg.train.lr == pytest.approx(1e-2)


def test_register_section_round_trip(tmp_path):
    @register_section("probe")
    @section
    class ProbeConfig:
        size: int = 3
        rate: float = 0.5
        nested: list[int] = dataclasses.field(default_factory=lambda: [1, 2])

        def validate(self) -> None:
            check_int("probe.size", self.size, minimum=1)

    @register_section("legacy")
    @dataclasses.dataclass
    class LegacyConfig:  # a plain dataclass is made a typed section too
        on: bool = False

        def validate(self) -> None:
            pass

    try:
        cfg = RunConfig.from_dict({"probe": {"size": 5, "rate": "1e-2"}, "legacy": {"on": True}})
        assert cfg.probe.size == 5 and cfg.probe.rate == pytest.approx(0.01) and cfg.legacy.on is True
        assert cfg.sections["probe"] is cfg.probe and RunConfig.from_dict({}).probe.size == 3  # defaults exist
        path = tmp_path / "c.yaml"
        path.write_text(cfg.to_yaml())
        assert RunConfig.from_yaml(path).to_dict() == cfg.to_dict()
        with pytest.raises(ConfigError, match=r"probe\.size must be >= 1, got 0"):
            cfg.with_overrides(["probe.size=0"])
        with pytest.raises(ConfigError, match=r"probe\.size must be an integer, got 2\.5"):
            cfg.with_overrides(["probe.size=2.5"])
        with pytest.raises(ConfigError, match=r"legacy\.on must be true or false, got 'maybe'"):
            cfg.with_overrides(["legacy.on=maybe"])
        with pytest.raises(ConfigError, match=r"did you mean probe\.size\?"):
            cfg.with_overrides(["probe.sise=2"])
    finally:
        config_core._REGISTERED.pop("probe", None)
        config_core._REGISTERED.pop("legacy", None)


def test_checkpoint_every_defaults_to_best_and_last_only():
    assert RunConfig.from_dict({}).train.checkpoint_every is None
    assert RunConfig.from_dict({}).with_overrides(["train.checkpoint_every=3"]).train.checkpoint_every == 3


def test_checkpoint_curve_needs_checkpoint_every():
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({"cluster": {"checkpoint_curve": True}})
    assert "train.checkpoint_every" in str(info.value) and "Fix: set train.checkpoint_every=1" in str(info.value)
    cfg = RunConfig.from_dict({"cluster": {"checkpoint_curve": True}, "train": {"checkpoint_every": 1}})
    assert cfg.cluster.checkpoint_curve and cfg.train.checkpoint_every == 1
