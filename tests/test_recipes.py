"""The recipe framework (reprlab.experiments.recipes) on tiny recipes: reuse of finished steps, a changed or
failed step retrained into a new directory, expectations, bad recipes refused before anything trains, the
CLI, and the report in a real browser. The five shipped recipes run end to end in test_recipes_quick.py."""

from __future__ import annotations

import copy
import importlib
import json

import pytest
import torch
import yaml
from conftest import REPO, run_cli

from reprlab.base.errors import ConfigError, ReprlabError
from reprlab.experiments.recipes import list_recipe_files, run_recipe
from reprlab.experiments.recipes.spec import Expectation

train_module = importlib.import_module("reprlab.experiments.train")  # the package re-exports train() under that name

pytestmark = pytest.mark.usefixtures("single_thread")

TINY_RUN = {"model": {"name": "fc_ae", "latent_dim": 4, "hidden_sizes": [16]},
            "train": {"epochs": 1, "batch_size": 32, "progress": "off", "sanity_check": False},
            "eval": {"report": False, "figures": False}}
TINY = {
    "name": "tiny",
    "description": "two tiny autoencoders and an anomaly analysis",
    "budget": {"cpu_minutes": 0.1},
    "data": {"name": "fashion-mnist-sample", "max_train": 96, "max_test": 48},
    "steps": {
        "a": {"kind": "train", "normal_class": 0, "config": TINY_RUN},
        "b": {"kind": "train", "normal_class": 0, "config": TINY_RUN, "overrides": ["model.latent_dim=3"]},
        "scores": {"kind": "anomaly", "runs": ["a", "b"], "normal_class": 0, "kmeans": [2], "pca": [2]},
    },
    "tables": [{"title": "AUROC", "columns": {"recon": "auroc_recon", "k-means 2": "auroc_kmeans2"},
                "rows": {"A": {"step": "scores", "prefix": "a/"}, "B": {"step": "scores", "prefix": "b/"}}},
               {"title": "MSE", "columns": {"MSE": "test/mse"}, "rows": {"A": "a", "B": "b"}}],
    "expect": [{"step": "scores", "metric": "a/auroc_recon", "at_least": 0.0, "label": "always passes"},
               {"step": "a", "metric": "test/mse", "at_most": 0.0, "label": "always fails"}],
}


@pytest.fixture
def count_trains(monkeypatch):
    """Count the calls of experiments.train.train (the one path every run step takes)."""
    calls = []
    real = train_module.train

    def counting(*args, **kwargs):
        calls.append(kwargs.get("run_dir"))
        return real(*args, **kwargs)
    monkeypatch.setattr(train_module, "train", counting)
    return calls


def tiny(**changes) -> dict:
    r = copy.deepcopy(TINY)
    r.update(changes)
    return r


def test_runs_tables_expectations_and_reuses_finished_steps(tmp_path, count_trains):
    first = run_recipe(tiny(), output_dir=tmp_path)
    assert len(count_trains) == 2 and first.trained == ["a", "b", "scores"] and first.reused == []
    root = tmp_path / "tiny"
    assert first.report == root / "report.html" and first.report.is_file()
    summary = json.loads((root / "recipe.json").read_text())
    auroc = summary["tables"][0]["rows"][0]["cells"][0]
    assert 0.0 <= auroc <= 1.0 and summary["steps"]["a"]["metrics"]["test/mse"] > 0
    assert [e["result"] for e in first.expectations] == ["pass", "fail"]
    assert "FAIL" in first.expectation_lines() and "PASS" in first.expectation_lines()
    html = first.report.read_text()
    assert "AUROC" in html and "always fails" in html and html.count("<img ") >= 6

    second = run_recipe(tiny(), output_dir=tmp_path)
    assert len(count_trains) == 2, "a second run of the same recipe trained again"
    assert second.trained == [] and second.reused == ["a", "b", "scores"]
    assert second.tables == first.tables


def test_a_changed_config_retrains_into_a_new_directory(tmp_path, count_trains):
    run_recipe(tiny(), output_dir=tmp_path)
    before = (tmp_path / "tiny" / "a" / "step.json").read_text()
    result = run_recipe(tiny(), output_dir=tmp_path, overrides=["run.train.lr=0.01"])
    assert len(count_trains) == 4  # both run steps changed
    assert result.steps["a"]["dir"] == str(tmp_path / "tiny" / "a-2")
    assert (tmp_path / "tiny" / "a" / "step.json").read_text() == before  # never overwritten
    assert "lr: 0.01" in (tmp_path / "tiny" / "a-2" / "run" / "config.yaml").read_text()
    # the analysis depends on them, so it runs again too; the old result is found again when the config returns
    assert "scores" in result.trained
    again = run_recipe(tiny(), output_dir=tmp_path)
    assert len(count_trains) == 4 and again.reused == ["a", "b", "scores"]


def test_a_failed_step_is_retrained_into_a_new_directory(tmp_path, monkeypatch):
    real = train_module.train

    def broken(*args, **kwargs):
        raise RuntimeError("boom")
    monkeypatch.setattr(train_module, "train", broken)
    with pytest.raises(RuntimeError, match="boom"):
        run_recipe(tiny(), output_dir=tmp_path)
    failed = json.loads((tmp_path / "tiny" / "a" / "step.json").read_text())
    assert failed["state"] == "failed" and "boom" in failed["error"]
    monkeypatch.setattr(train_module, "train", real)
    result = run_recipe(tiny(), output_dir=tmp_path)
    assert result.steps["a"]["dir"] == str(tmp_path / "tiny" / "a-2")
    assert json.loads((tmp_path / "tiny" / "a" / "step.json").read_text())["state"] == "failed"


@pytest.mark.parametrize("value, expected", [(0.80, "pass"), (0.86, "fail"), (0.74, "fail"), (None, "missing"),
                                             (float("nan"), "missing")])
def test_expectation_value_and_tolerance(value, expected):
    assert Expectation("s", "m", value=0.8, tolerance=0.05).check(value) == expected


def test_expectation_bounds():
    e = Expectation("s", "m", at_least=0.5, at_most=0.9)
    assert [e.check(v) for v in (0.5, 0.9, 0.49, 0.91)] == ["pass", "pass", "fail", "fail"]
    assert e.expected_text() == "≥ 0.5 and ≤ 0.9"


def _bad(**steps_or_keys) -> dict:
    r = tiny()
    for k, v in steps_or_keys.items():
        if k.startswith("step_"):
            r["steps"][k[5:]] = v
        else:
            r[k] = v
    return r


BAD = {
    "unknown step kind": (_bad(step_a={"kind": "trian", "config": TINY_RUN}), "not a step kind.*did you mean train"),
    "unknown metric in a table": (_bad(tables=[{"title": "t", "columns": {"x": "test/msee"}, "rows": {"A": "a"}}]),
                                  "does not report metric 'test/msee'.*did you mean test/mse"),
    "unknown metric of an analysis": (_bad(tables=[{"title": "t", "columns": {"x": "auroc_pca7"},
                                                    "rows": {"A": {"step": "scores", "prefix": "a/"}}}]),
                                      "does not report metric 'a/auroc_pca7'"),
    "unknown step in a reference": (_bad(step_scores={"kind": "anomaly", "runs": ["a", "zz"], "normal_class": 0}),
                                    "refers to step 'zz'"),
    "a step referring to a later step": (_bad(step_a={"kind": "train", "config": {**TINY_RUN, "model": {
        "name": "classifier", "pretrained": "${b.run_dir}"}}}), "refers to step 'b', which comes after it"),
    "missing config file": (_bad(step_a={"kind": "train", "config": "configs/no_such.yaml"}), "no_such.yaml' not found"),
    "unknown expectation step": (_bad(expect=[{"step": "nope", "metric": "x", "value": 1, "tolerance": 0}]),
                                 "names step 'nope'"),
    "expectation without tolerance": (_bad(expect=[{"step": "a", "metric": "test/mse", "value": 1}]), "no tolerance"),
    "bad run config": (_bad(step_b={"kind": "train", "config": TINY_RUN, "overrides": ["model.latent_dim=-1"]}),
                       "steps.b.*latent_dim"),
    "unset environment variable in a step that is not optional": (
        _bad(step_b={"kind": "train", "config": {**TINY_RUN, "name": "${env:REPRLAB_SURELY_UNSET}"}}),
        r"steps.b uses \$\{env:REPRLAB_SURELY_UNSET\}, but REPRLAB_SURELY_UNSET is not set.*optional: true"),
    "optional that is neither true nor a sentence": (_bad(step_b={"kind": "train", "config": TINY_RUN, "optional": 3}),
                                                    "steps.b.optional must be true or a sentence"),
    "no budget": (_bad(budget={}), "budget.cpu_minutes"),
    "unknown step option": (_bad(step_a={"kind": "train", "config": TINY_RUN, "epochs": 3}), "unknown option"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_recipes_fail_with_one_clear_error_before_anything_trains(case, tmp_path, count_trains):
    recipe, pattern = BAD[case]
    with pytest.raises(ReprlabError, match=pattern) as info:
        run_recipe(recipe, output_dir=tmp_path)
    assert "Fix:" in str(info.value)
    assert count_trains == [] and not (tmp_path / "tiny").exists()


def test_missing_recipe_file_names_the_known_recipes():
    with pytest.raises(ConfigError, match="not a file and not a known recipe.*ae-clustering"):
        run_recipe("experiments/no-such-recipe.yaml")


def test_quick_mode_applies_its_data_overrides_steps_and_expectations(tmp_path):
    r = tiny(quick={"data": {"max_train": 64}, "overrides": ["train.batch_size=16"],
                    "steps": {"scores": {"kmeans": [3]}, "b": {"overrides": ["train.batch_size=8"]}}, "expect": []})
    r["tables"] = [{"title": "t", "columns": {"k3": "auroc_kmeans3"}, "rows": {"A": {"step": "scores", "prefix": "a/"}}}]
    result = run_recipe(r, quick=True, output_dir=tmp_path)
    assert result.out_dir == tmp_path / "tiny-quick" and result.expectations == []
    cfg = yaml.safe_load((tmp_path / "tiny-quick" / "a" / "run" / "config.yaml").read_text())
    assert cfg["data"]["max_train"] == 64 and cfg["train"]["batch_size"] == 16
    cfg_b = yaml.safe_load((tmp_path / "tiny-quick" / "b" / "run" / "config.yaml").read_text())
    assert cfg_b["train"]["batch_size"] == 8 and cfg_b["model"]["latent_dim"] == 3  # step's quick overrides last
    assert result.tables[0]["rows"][0]["cells"][0] is not None
    assert "no expectations in quick mode" in result.expectation_lines()


def test_cli_list_run_strict_and_errors(tmp_path):
    listed = run_cli("experiment", "list", cwd=REPO)
    assert listed.returncode == 0, listed.stderr
    names = {p.stem for p in list_recipe_files()}
    assert names >= {"ae-clustering", "generative-study", "anomaly-autoencoders", "faces-and-digit-adaptation",
                     "architecture-sweep"}
    for name in names:
        assert name in listed.stdout

    path = tmp_path / "tiny.yaml"
    recipe = tiny()
    long_label = "autoencoder B, a row label longer than sixteen characters"
    recipe["tables"][1]["rows"] = {"A": "a", long_label: "b"}
    path.write_text(yaml.safe_dump(recipe))
    ok = run_cli("experiment", "run", str(path), "--output-dir", str(tmp_path / "out"), "run.train.epochs=1")
    assert ok.returncode == 0, ok.stderr
    assert long_label in ok.stdout  # printed whole, not cut to the column width
    assert "always fails" in ok.stdout and "FAIL" in ok.stdout and ok.stdout.strip().endswith("report.html")
    strict = run_cli("experiment", "run", str(path), "--output-dir", str(tmp_path / "out"), "--strict", "run.train.epochs=1")
    assert strict.returncode == 1 and "0 step(s) run, 3 reused" in strict.stdout

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(BAD["unknown step kind"][0]))
    err = run_cli("experiment", "run", str(bad), "--output-dir", str(tmp_path / "out2"))
    assert err.returncode == 2 and err.stderr.startswith("error: ") and "Fix:" in err.stderr
    assert not (tmp_path / "out2" / "tiny").exists()


def test_recipe_report_opens_in_a_browser(tmp_path):
    from test_report_browser import assert_page_loads

    result = run_recipe(tiny(), output_dir=tmp_path)
    assert_page_loads(tmp_path, result.report.read_text(), "recipe.html", min_images=6, what="the recipe report")


@pytest.mark.parametrize("name", ["conv_ae", "vae"])
def test_the_architecture_sweep_triples_build_for_conv_ae_and_vae(name):
    """The (kernel, stride, padding) options the architecture-sweep recipe varies exist for both models (the VAE
    got ``stride`` and ``padding`` for it): stride 1 keeps the 50x50 map, stride 2 halves it."""
    import torch

    from reprlab.models import create_model

    extra = {"recon_loss": "mse"} if name == "vae" else {}
    sizes = {}
    for k, s, p in [(3, 1, 1), (9, 1, 4), (4, 2, 2), (6, 2, 3)]:
        m = create_model(name, input_shape=(3, 50, 50), latent_dim=4, channels=[2, 4], kernel_size=k, stride=s,
                         padding=p, **extra)
        assert m(torch.rand(2, 3, 50, 50)).reconstruction.shape == (2, 3, 50, 50)
        first = next(mod for mod in m.encoder.modules() if isinstance(mod, torch.nn.Conv2d))
        assert (first.kernel_size, first.stride, first.padding) == ((k, k), (s, s), (p, p))
        sizes[(k, s, p)] = m.encoder[:2](torch.rand(1, 3, 50, 50)).shape[-1]
    assert sizes[(3, 1, 1)] == sizes[(9, 1, 4)] == 50 and sizes[(4, 2, 2)] < 30


# -- optional steps: an input that cannot be shipped (a weights file) named by ${env:NAME} --------------------
R18 = {"task": "classify", "data": {"resize": [32, 32]},
       "model": {"name": "classifier", "encoder": "resnet18", "encoder_options": {"stem": "imagenet"},
                 "pretrained": "${env:REPRLAB_TEST_R18}", "freeze": "all-but-2", "head": "linear"},
       "classify": {"labels": 40}, "train": {"epochs": 1, "batch_size": 20, "progress": "off", "sanity_check": False},
       "eval": {"report": False, "figures": False}}


def with_imagenet_step() -> dict:
    r = tiny()
    r["steps"]["imagenet"] = {"kind": "train", "optional": "the weights file", "config": R18}
    r["steps"]["probe"] = {"kind": "analyze", "run": "imagenet", "what": ["embeddings"], "method": ["pca"],
                           "max_points": 40}
    r["tables"].append({"title": "Accuracy", "columns": {"acc": "test/acc"}, "rows": {"ImageNet": "imagenet"}})
    r["expect"].append({"step": "imagenet", "metric": "test/acc", "at_least": 0.0, "label": "imagenet accuracy"})
    return r


def test_an_optional_step_without_its_input_is_skipped_and_runs_once_it_is_given(tmp_path, monkeypatch, count_trains):
    from reprlab.models import create_model

    monkeypatch.delenv("REPRLAB_TEST_R18", raising=False)
    first = run_recipe(with_imagenet_step(), output_dir=tmp_path)
    assert len(count_trains) == 2 and first.trained == ["a", "b", "scores"]
    assert set(first.skipped) == {"imagenet", "probe"}  # probe reads the skipped step, so it is skipped too
    assert first.skipped["imagenet"] == "REPRLAB_TEST_R18 is not set (the weights file)"
    assert "reads step 'imagenet', which is skipped" in first.skipped["probe"]
    row = first.tables[-1]["rows"][0]
    assert row["cells"] == [None] and row["skipped"] == first.skipped["imagenet"]
    assert [e["result"] for e in first.expectations] == ["pass", "fail", "skipped"]
    assert [e["name"] for e in first.failed_expectations] == ["always fails"]  # skipped is not failed
    html = first.report.read_text()
    assert "not run: REPRLAB_TEST_R18 is not set (the weights file)" in html
    assert json.loads((tmp_path / "tiny" / "recipe.json").read_text())["steps"]["imagenet"]["state"] == "skipped"
    assert not (tmp_path / "tiny" / "imagenet").exists()

    weights = tmp_path / "r18.pth"
    torch.save(create_model("resnet18", input_shape=(3, 32, 32), num_classes=1000, stem="imagenet").state_dict(), weights)
    monkeypatch.setenv("REPRLAB_TEST_R18", str(weights))
    second = run_recipe(with_imagenet_step(), output_dir=tmp_path)
    assert second.skipped == {} and second.reused == ["a", "b", "scores"] and second.trained == ["imagenet", "probe"]
    assert len(count_trains) == 3
    cfg = yaml.safe_load((tmp_path / "tiny" / "imagenet" / "run" / "config.yaml").read_text())
    assert cfg["model"]["pretrained"] == str(weights)
    assert 0.0 <= second.tables[-1]["rows"][0]["cells"][0] <= 1.0
    assert [e["result"] for e in second.expectations] == ["pass", "fail", "pass"]

    monkeypatch.setenv("REPRLAB_TEST_R18", str(tmp_path / "missing.pth"))
    with pytest.raises(ConfigError, match="steps.imagenet.*missing.pth does not exist"):
        run_recipe(with_imagenet_step(), output_dir=tmp_path)
    assert len(count_trains) == 3


# -- a variants step reuses its unchanged variants ---------------------------------------------------------------
def with_variants(y_latent: int = 3) -> dict:
    r = tiny()
    r["steps"] = {"v": {"kind": "variants", "config": TINY_RUN,
                        "variants": {"x": ["model.latent_dim=2", "eval.figures=true"], "y": [f"model.latent_dim={y_latent}"]}}}
    r["tables"] = [{"title": "MSE", "columns": {"x": "x/test/mse", "y": "y/test/mse"}, "rows": {"v": "v"}}]
    r["figures"] = [{"title": "x", "step": "v", "file": "x/figures/*.png"}]
    r["expect"] = []
    return r


def test_a_changed_variant_is_retrained_alone(tmp_path, count_trains):
    first = run_recipe(with_variants(), output_dir=tmp_path)
    assert [p.name for p in count_trains] == ["x", "y"]
    step = tmp_path / "tiny" / "v"
    # a record written before parts were kept gets them when the unchanged step is reused
    record = json.loads((step / "step.json").read_text())
    (step / "step.json").write_text(json.dumps({k: v for k, v in record.items() if k != "parts"}))
    assert run_recipe(with_variants(), output_dir=tmp_path).reused == ["v"] and len(count_trains) == 2
    assert json.loads((step / "step.json").read_text())["parts"] == record["parts"]

    changed = run_recipe(with_variants(4), output_dir=tmp_path)
    assert [p.name for p in count_trains] == ["x", "y", "y"], "the unchanged variant x was trained again"
    assert changed.steps["v"]["dir"] == str(tmp_path / "tiny" / "v-2")
    assert changed.steps["v"]["outputs"]["x"] == str(step / "x") and changed.steps["v"]["outputs"]["reused_variants"] == ["x"]
    assert changed.tables[0]["rows"][0]["cells"][0] == first.tables[0]["rows"][0]["cells"][0]
    assert "latent_dim: 4" in (tmp_path / "tiny" / "v-2" / "y" / "config.yaml").read_text()
    html = changed.report.read_text()  # the reused variant's figures are found in its earlier directory
    assert "missing: " not in html and html.count("<img ") == first.report.read_text().count("<img ") > 0


def test_a_failed_variants_step_keeps_its_finished_variants(tmp_path, monkeypatch, count_trains):
    real = train_module.train

    def fails_on_y(*args, **kwargs):
        if kwargs.get("run_dir").name == "y":
            raise RuntimeError("boom")
        return real(*args, **kwargs)
    monkeypatch.setattr(train_module, "train", fails_on_y)
    with pytest.raises(RuntimeError, match="boom"):
        run_recipe(with_variants(), output_dir=tmp_path)
    monkeypatch.setattr(train_module, "train", real)
    calls = []
    monkeypatch.setattr(train_module, "train", lambda *a, **k: calls.append(k["run_dir"].name) or real(*a, **k))
    result = run_recipe(with_variants(), output_dir=tmp_path)
    assert calls == ["y"] and result.steps["v"]["outputs"]["x"] == str(tmp_path / "tiny" / "v" / "x")
