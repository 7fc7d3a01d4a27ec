"""``reprlab detect``: the output directory, and bad input as one-line errors with exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from reprlab.cli import main


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Normal images (horizontal bars), test images (half vertical bars = anomalies), 0/1 labels."""
    root = tmp_path_factory.mktemp("detect")
    rng = np.random.default_rng(0)

    def bars(n: int, vertical: bool) -> np.ndarray:
        x = (rng.random((n, 16, 16)) * 25).astype(np.uint8)
        for i, p in enumerate(rng.integers(4, 11, n)):
            if vertical:
                x[i, 2:-2, p:p + 2] = 230
            else:
                x[i, p:p + 2, 2:-2] = 230
        return x

    np.savez(root / "normal.npz", x=bars(120, False))
    np.save(root / "test.npy", np.concatenate([bars(30, False), bars(30, True)]))
    np.save(root / "labels.npy", np.array([0] * 30 + [1] * 30))
    np.save(root / "one_class.npy", np.zeros(60, dtype=np.int64))
    return {k: root / f"{k}.{'npz' if k == 'normal' else 'npy'}" for k in ("normal", "test", "labels", "one_class")}


def test_detect_user_sets_writes_a_run_directory(tmp_path, files, capsys):
    code = main(["--quiet", "detect", "--normal", str(files["normal"]), "--test", str(files["test"]),
                 "--test-labels", str(files["labels"]), "--model", "fc_ae", "--score", "mse,pixel_knn",
                 "--epochs", "2", "--batch-size", "16", "--latent-dim", "4", "--contamination", "0.05",
                 "--out", str(tmp_path), "--name", "run1"])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    run = Path(out[-1])
    assert run == tmp_path / "run1" and "test/auroc=" in out[-2]
    for rel in ("metrics.json", "scores.csv", "config.yaml", "status.json", "report.md", "report.html",
                "checkpoints/best/model.safetensors", "figures/roc_curve.png", "figures/score_histogram.png",
                "figures/most_anomalous.png", "figures/least_anomalous.png"):
        assert (run / rel).exists(), rel
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("test/auroc", "test/average_precision", "test/precision", "test/recall", "test/f1"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["test/auroc"] > 0.9
    rows = (run / "scores.csv").read_text().splitlines()
    assert rows[0] == "index,score,predicted,label" and len(rows) == 61
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    assert "figures/roc_curve.png" in (run / "report.md").read_text()


def test_detect_without_labels_reports_the_flagged_fraction(tmp_path, files, capsys):
    code = main(["--quiet", "detect", "--normal", str(files["normal"]), "--test", str(files["test"]),
                 "--score", "pixel_knn", "--out", str(tmp_path)])
    assert code == 0
    run = Path(capsys.readouterr().out.strip().splitlines()[-1])
    metrics = json.loads((run / "metrics.json").read_text())
    assert "test/auroc" not in metrics and 0 <= metrics["test/flagged_fraction"] <= 1
    assert not (run / "figures" / "roc_curve.png").exists()


@pytest.mark.parametrize("args,message", [
    (["--contamination", "0.6"], "contamination must be in (0, 0.5]"),
    (["--contamination", "0"], "contamination must be in (0, 0.5]"),
    (["--test-labels", "ONE_CLASS"], "needs both normal and anomalous test images"),
    (["--score", "bogus"], "score must be one of"),
])
def test_bad_input_is_one_line_and_exit_2_before_any_directory(tmp_path, files, capsys, args, message):
    args = [str(files["one_class"]) if a == "ONE_CLASS" else a for a in args]
    code = main(["detect", "--normal", str(files["normal"]), "--test", str(files["test"]), "--score", "pixel_knn",
                 "--out", str(tmp_path / "runs"), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("error: ") and message in err[-1] and "Fix:" in err[-1]
    assert not (tmp_path / "runs").exists()


def test_training_data_containing_the_test_set_is_refused(tmp_path, files, capsys):
    test = np.load(files["test"])
    np.save(tmp_path / "leaky.npy", np.concatenate([np.load(files["normal"])["x"], test[:10]]))
    code = main(["detect", "--normal", str(tmp_path / "leaky.npy"), "--test", str(files["test"]),
                 "--score", "pixel_knn", "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and "contain 10 of the 60 test images" in err
    assert not (tmp_path / "runs").exists()


def test_detect_through_the_installed_entry_point(tmp_path, files):
    proc = run_cli("--quiet", "detect", "--normal", str(files["normal"]), "--test", str(files["test"]),
                   "--test-labels", str(files["labels"]), "--score", "pixel_knn", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    run = Path(proc.stdout.strip().splitlines()[-1])
    assert json.loads((run / "metrics.json").read_text())["test/auroc"] > 0.9


def test_one_class_protocol_needs_the_normal_class(tmp_path, capsys):
    code = main(["detect", "--data", "fashion-mnist-sample", "--out", str(tmp_path / "x")])
    assert code == 2 and "--normal-class" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_one_class_protocol_on_the_embedded_sample(tmp_path, capsys):
    code = main(["--quiet", "detect", "--data", "fashion-mnist-sample", "--normal-class", "1", "--score",
                 "pixel_knn,hog_knn", "--max-test", "300", "--out", str(tmp_path), "--name", "oc"])
    assert code == 0
    metrics = json.loads((tmp_path / "oc" / "metrics.json").read_text())
    assert metrics["test/auroc"] > 0.9 and metrics["test/num_images"] == 300
    header = (tmp_path / "oc" / "scores.csv").read_text().splitlines()[0]
    assert header == "index,score,predicted,label,class"


def test_detect_preset_with_an_explicit_override(tmp_path, files, capsys):
    import yaml

    code = main(["--quiet", "detect", "--preset", "fast", "--n-neighbors", "3", "--normal", str(files["normal"]),
                 "--test", str(files["test"]), "--test-labels", str(files["labels"]), "--out", str(tmp_path),
                 "--name", "fast"])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and Path(out[-1]) == tmp_path / "fast"
    detector = yaml.safe_load((tmp_path / "fast" / "config.yaml").read_text())["detector"]
    assert detector["score"] == ["pixel_knn", "hog_knn"] and detector["pixel_blur"] == 1.0
    assert detector["n_neighbors"] == 3  # the explicit option wins over the preset's 5
    assert json.loads((tmp_path / "fast" / "metrics.json").read_text())["test/auroc"] > 0.9


def test_unknown_preset_is_a_usage_error(tmp_path, files, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["detect", "--preset", "quick", "--normal", str(files["normal"]), "--test", str(files["test"]),
              "--out", str(tmp_path)])
    assert exc.value.code == 2 and "invalid choice: 'quick'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_cli_preset_choices_are_the_library_presets():
    import argparse

    from reprlab.capabilities.anomaly import PRESETS
    from reprlab.cli import build_parser as _parser

    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    preset = next(a for a in sub.choices["detect"]._actions if a.dest == "preset")
    assert tuple(preset.choices) == tuple(PRESETS)
