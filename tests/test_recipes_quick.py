"""Every recipe under experiments/ runs end to end in quick mode (tiny data, one epoch, two trials, two folds):
all its tables filled with numbers, every step finished, the report written; the recipes that need real data
(the faces folder, the digit domains) get it through the ``real_data_dir`` fixture, the others use the
embedded Fashion-MNIST sample; optional steps get a weights file the test writes. Each report opens in headless Chromium with every image loaded and no console
error. A second run of one recipe reuses every step."""

from __future__ import annotations

import json
import math
import time

import pytest

from reprlab.experiments.recipes import list_recipe_files, load, run_recipe
from test_report_browser import assert_page_loads

pytestmark = pytest.mark.usefixtures("single_thread")

RECIPES = sorted(p.stem for p in list_recipe_files())
#: Recipes whose data is not the embedded sample, even in quick mode.
REAL_DATA = {"architecture-sweep", "faces-and-digit-adaptation"}


def test_the_five_recipes_are_there():
    assert set(RECIPES) >= {"ae-clustering", "generative-study", "anomaly-autoencoders", "faces-and-digit-adaptation",
                            "architecture-sweep"}
    for name in RECIPES:
        r = load(name, quick=True)
        assert r.budget["cpu_minutes"] > 0 and r.description and r.tables
        assert r.expect == [], f"{name}: quick mode has no expectations (tiny data says nothing about the study)"
        assert load(name).expect, f"{name}: the full recipe states its headline expectations"


@pytest.fixture(scope="module")
def resnet18_weights(tmp_path_factory):
    """A ResNet-18 state dict in torchvision's layout (random values: none can be downloaded here), for the
    optional steps that start from ImageNet weights (generative-study's ``resnet_imagenet``)."""
    import torch

    from reprlab.models import create_model

    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(create_model("resnet18", input_shape=(3, 32, 32), num_classes=1000, stem="imagenet").state_dict(), path)
    return path


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_runs_end_to_end_in_quick_mode(name, tmp_path, request, monkeypatch, resnet18_weights):
    monkeypatch.setenv("REPRLAB_RESNET18_WEIGHTS", str(resnet18_weights))  # so every optional step runs too
    data_dir = str(request.getfixturevalue("real_data_dir")) if name in REAL_DATA else None
    started = time.perf_counter()
    result = run_recipe(name, quick=True, output_dir=tmp_path, data_dir=data_dir)
    seconds = time.perf_counter() - started
    print(f"{name}: quick mode {seconds:.1f} s")
    assert set(result.trained) == set(result.recipe.steps)
    summary = json.loads((tmp_path / f"{name}-quick" / "recipe.json").read_text())
    assert summary["tables"]
    for table in summary["tables"]:
        for row in table["rows"]:
            for column, value in zip(table["columns"], row["cells"]):
                assert isinstance(value, (int, float)) and math.isfinite(value), \
                    f"{name}: table {table['title']!r}, row {row['label']!r}, column {column!r} is {value!r}"
    html = result.report.read_text()
    assert result.recipe.name in html and "<img " in html
    assert "missing: " not in html, (f"{name}: a figure the recipe lists was not found (its file glob is wrong, "
                                     "or quick mode turns that step's figures off)")
    assert_page_loads(tmp_path, html, "recipe-report.html", what=f"{name}'s report")

