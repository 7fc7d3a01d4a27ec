"""A detection run on disk: what ``reprlab detect`` writes.

::

    config.yaml         the detector's parameters, the model and the data it saw
    status.json         {"state": "finished", ...}
    metrics.json        test/auroc, test/average_precision, test/precision, test/recall, test/f1,
                        test/threshold, test/flagged_fraction, fit/score times
    scores.csv          one row per test image: index, score, predicted (0/1), label, class
    checkpoints/best/   the trained model (model.safetensors + model.json; reload with reprlab.load_run_model)
    figures/            roc_curve.png, score_histogram.png, most_anomalous.png, least_anomalous.png
    report.md           the metrics and the figures on one page
    report.html         the same in the house HTML report (self-contained; ``reprlab report`` rewrites it)

Example:
    >>> path = run_detection(data="fashion-mnist", normal_class=0, score="mse", epochs=2,
    ...                      data_dir="../shared/data", output_dir="runs")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import torch
import yaml

from reprlab.capabilities.anomaly.detector import AnomalyDetector
from reprlab.capabilities.anomaly.protocols import DetectionResult, check_no_overlap, detect, load_images, one_class_split
from reprlab.base.errors import ConfigError, ReprlabError
from reprlab.runs import RunDir, environment_info
from reprlab.base.io import write_json, write_text
from reprlab.data import load_dataset
from reprlab.capabilities.anomaly.metrics import _as_labels, _check_both_classes
from reprlab.models.io import save_model
from reprlab.capabilities.anomaly.plots import save_detection_figures
from reprlab.reporting.report import write_report

logger = logging.getLogger(__name__)

__all__ = ["run_detection", "write_detection_run"]


def run_detection(*, data: str | None = None, normal_class: int | None = None, normal: str | None = None,
                  test: str | None = None, test_labels: str | None = None, data_dir: str | None = None,
                  max_train: int | None = None, max_test: int | None = None, output_dir: str | os.PathLike = "runs",
                  name: str | None = None, figures: bool = True, preset: str | None = None,
                  **detector_params: Any) -> Path:
    """Run the one-class protocol (``data`` + ``normal_class``) or user-defined sets (``normal`` + ``test``).

    ``detector_params`` are :class:`AnomalyDetector` arguments, applied on top of
    :data:`~reprlab.capabilities.anomaly.detector.PRESETS` ``[preset]`` when a preset is named.
    Everything is checked before the run directory is created. Returns its path.
    """
    if (data is None) == (normal is None):
        raise ConfigError("give either --data with --normal-class (one-class protocol) or --normal with --test",
                          fix="e.g. `reprlab detect --data fashion-mnist --normal-class 0` or "
                              "`reprlab detect --normal normal.npz --test test.npz --test-labels labels.npy`")
    det = AnomalyDetector.from_preset(preset, **detector_params) if preset else AnomalyDetector(**detector_params)
    det._validate()  # bad parameters fail before any data is loaded
    gen = torch.Generator().manual_seed(int(det.random_state))
    if data is not None:
        if normal_class is None:
            raise ConfigError("the one-class protocol needs the normal class", fix="add --normal-class N (e.g. 0)")
        if test is not None or test_labels is not None:
            raise ConfigError("--test/--test-labels are for user-defined sets, not --data",
                              fix="drop them, or use --normal instead of --data")
        train_all = load_dataset(data, "train", data_dir=data_dir)
        test_all = load_dataset(data, "test", data_dir=data_dir)
        check_no_overlap(train_all, test_all)
        normal_data, test_data, y = one_class_split(train_all, test_all, normal_class)
        if max_test is not None and max_test < len(test_data):
            idx = torch.randperm(len(test_data), generator=gen)[:max_test]
            test_data, y = test_data.subset(idx), y[idx.numpy()]
        labels: Any = y
        source = {"protocol": "one-class", "data": data, "normal_class": int(normal_class),
                  "class_name": (train_all.class_names or [str(normal_class)] * (int(normal_class) + 1))[int(normal_class)]}
    else:
        if test is None:
            raise ConfigError("--normal needs --test (the images to score)", fix="add --test PATH")
        normal_data = load_images(normal, name="normal")
        test_data = load_images(test, test_labels, name="test")
        labels = None if test_labels is None else test_data.labels.numpy()
        source = {"protocol": "user-defined", "normal": str(normal), "test": str(test),
                  "test_labels": None if test_labels is None else str(test_labels)}
    if max_train is not None and max_train < len(normal_data):
        normal_data = normal_data.subset(torch.randperm(len(normal_data), generator=gen)[:max_train])
    check_no_overlap(normal_data, test_data, train_name="normal (training) images")
    if labels is not None:
        _check_both_classes(_as_labels(labels, len(test_data)), "ROC AUC")
    result = detect(normal_data, test_data, test_labels=labels, detector=det, check_overlap=False,
                    normal_class=normal_class)
    source.update({"num_normal_train": len(normal_data), "num_test": len(test_data)})
    return write_detection_run(result, output_dir=output_dir, name=name, source=source, figures=figures)


def _score_label(score: Any) -> str:
    names = [score] if isinstance(score, str) else list(score)
    return " + ".join(names) + (" (standardised sum)" if len(names) > 1 else "")


def write_detection_run(result: DetectionResult, *, output_dir: str | os.PathLike = "runs", name: str | None = None,
                        source: dict[str, Any] | None = None, figures: bool = True) -> Path:
    """Write a :class:`DetectionResult` as a run directory (see the module docstring); returns its path."""

    det = result.detector
    params = det.get_params() if det is not None else {}
    model_label = det._model_label() if det is not None else "none"
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    data_label = (source or {}).get("data") or "user"
    if name:
        run = RunDir.create(output_dir, name, kind="detect")
    else:
        score = params.get("score", "score")
        what = model_label if model_label != "none" else "+".join([score] if isinstance(score, str) else score)
        run = RunDir.create(output_dir, f"detect-{what}-{data_label}-{stamp}".replace("/", "_"), exist_ok_suffix=True, kind="detect")
    run.set_status("running")
    config = {k: _plain(v) for k, v in params.items()}
    model_cfg = {"name": model_label}
    fitted = getattr(det, "model_", None) if det is not None else None
    if fitted is not None and hasattr(fitted, "config"):
        model_cfg.update(fitted.config.to_dict())
    write_text(run.path / "config.yaml", yaml.safe_dump({"detector": config, "model": model_cfg, "data": source or {}},
                                                        sort_keys=False))
    write_json(run.path / "env.json", environment_info(seed=params.get("random_state")))
    metrics = result.prefixed("test")
    metrics.update({k: round(v, 3) for k, v in result.timings.items()})
    if det is not None and getattr(det, "history_", None):
        metrics["epochs"] = len(det.history_)
        last = det.history_[-1]
        metrics.update({k: v for k, v in last.items() if k.startswith("train/")})
    write_json(run.path / "metrics.json", metrics)
    result.to_csv(run.path / "scores.csv")
    model = getattr(det, "model_", None) if det is not None else None
    if model is not None and hasattr(model, "config"):
        save_model(model, run.checkpoints / "best" / "model")
    paths: Sequence[Path] = []
    if figures:
        paths = save_detection_figures(result, run.figures, score_label=_score_label(params.get("score", "score")))
    write_text(run.path / "report.md", _report(result, metrics, source or {}, {**params, "model": model_label},
                                               paths, run.path))
    run.set_status("finished")
    if figures:
        try:
            write_report(run.path)
        except ReprlabError as exc:  # the Markdown report is complete; the HTML one is a convenience
            logger.warning("could not write report.html: %s", exc)
    return run.path


def _plain(value: Any) -> Any:
    """A YAML-safe copy of a parameter value (tuples become lists, objects their str)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (int, float, str, bool, type(None))):
        return value
    return str(value)


def _report(result: DetectionResult, metrics: dict[str, Any], source: dict[str, Any], params: dict[str, Any],
            figures: Sequence[Path], root: Path) -> str:
    lines = ["# Anomaly detection run", ""]
    if source.get("protocol") == "one-class":
        lines.append(f"One-class protocol on **{source['data']}**: class {source['normal_class']} "
                     f"({source.get('class_name', '')}) is normal, every other class of the test set is an anomaly.")
    else:
        lines.append(f"User-defined sets: normal images `{source.get('normal')}`, test images `{source.get('test')}`.")
    lines += ["", f"Detector: score `{_score_label(params.get('score'))}`, model `{params.get('model')}`, "
              f"contamination {params.get('contamination')}, {params.get('epochs')} epochs, "
              f"random_state {params.get('random_state')}.", "", "| metric | value |", "|---|---|"]
    for k, v in metrics.items():
        lines.append(f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |")
    lines += ["", "Scores: higher = more anomalous; an image is flagged when its score exceeds the threshold "
              "(the training scores' (1 - contamination) quantile). `scores.csv` lists every test image.", ""]
    for p in figures:
        rel = Path(p).relative_to(root)
        lines += [f"![{rel.stem.replace('_', ' ')}]({rel.as_posix()})", ""]
    return "\n".join(lines)
