"""The ``adapt`` config section: the target domain, the method, the protocol and the selection criterion.

The run's ``data:`` section is the labelled SOURCE; ``adapt:`` names the TARGET and how it is
used. Everything here is checked when the config is built (before any run directory exists);
rules that need the data (class counts, overlapping images) are checked by the ``adapt`` task's
``prepare_data``.

Example:
    >>> from reprlab.config import RunConfig
    >>> cfg = RunConfig.from_dict({"task": "adapt", "model": {"name": "classifier"},
    ...                            "adapt": {"target": "usps", "method": "source_only"}})
    >>> cfg.adapt.method, cfg.adapt.selection, cfg.adapt.eval_fraction
    ('source_only', 'source_val', 0.3)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reprlab.base.errors import ConfigError
from reprlab.base.validation import check_choice, check_float, check_int
from reprlab.config import register_section
from reprlab.tasks import FINAL_EPOCH

#: The methods: the two bounds train any classifier; the adaptation methods need their model.
METHODS = ("source_only", "dann", "pixelda", "target_only")
#: ``auto``: the target's train split for adaptation and its test split for evaluation where both
#: exist, else ``holdout``; ``splits``: require both; ``holdout``: split one set of target images.
PROTOCOLS = ("auto", "splits", "holdout")
#: Label-free criteria that pick the default checkpoint: (monitored key, mode).
SELECTIONS: dict[str, tuple[str, str]] = {
    "source_val": ("val/acc", "max"),
    "entropy": ("select/target_entropy", "min"),
    "dev": ("select/dev", "min"),
    "snd": ("select/snd", "max"),
    # the final checkpoint. DANN's schedule (lambda rising to 1, the learning rate annealed)
    # is built to end on the adapted model; source accuracy falls as adaptation rises, which
    # biases source_val towards early, barely adapted epochs (BENCHMARKS.md, issue 14)
    "last": FINAL_EPOCH,
}
#: ``digits``: both domains resized to 32x32, 3 channels, scaled to [-1, 1] (where data.resize /
#: data.channels are unset; data.scale always); ``data``: data.resize / channels / scale as given.
PREPROCESS = ("digits", "data")
#: Models each adaptation method needs (``allow_model`` adds one, e.g. a test's toy model).
METHOD_MODELS: dict[str, list[str]] = {"dann": ["dann"], "pixelda": ["pixelda"]}
#: Target datasets read from the user's files (``adapt.target_path``).
OWN_DATA = ("arrays", "folder")


def allow_model(method: str, model_name: str) -> None:
    """Let ``method`` (``dann`` or ``pixelda``) train model ``model_name`` too (it must follow the interface).

    Example:
        >>> allow_model("dann", "my_dann"); "my_dann" in METHOD_MODELS["dann"]
        True
        >>> METHOD_MODELS["dann"].remove("my_dann")
    """
    check_choice("method", method, tuple(METHOD_MODELS))
    if model_name not in METHOD_MODELS[method]:
        METHOD_MODELS[method].append(model_name)


@register_section("adapt")
@dataclass
class AdaptConfig:
    """Unsupervised domain adaptation (only ``task: adapt`` reads this section).

    ``target``: the target dataset (``mnist-m``, ``usps``, ``mnist``, ``svhn``, ``arrays``,
    ``folder``); ``target_path`` / ``target_labels_path``: its images (and label file) for
    ``arrays``/``folder``; ``target_test_path`` / ``target_test_labels_path``: separate evaluation
    images. ``method``: one of :data:`METHODS`. ``protocol``: one of :data:`PROTOCOLS`;
    ``eval_fraction``: the held-out evaluation share under ``holdout``; ``split_seed``: the seed of
    that split and of the ``max_target`` / ``max_eval`` subsets (``None``: the run's ``seed``).
    ``selection``: the label-free criterion of the default checkpoint (:data:`SELECTIONS`).
    ``max_target`` / ``max_eval``: caps on the adaptation / evaluation images. ``select_images``:
    target adaptation images scored each epoch by the criteria. ``preprocess``: :data:`PREPROCESS`.
    ``compare_with``: a (source-only) run directory whose features are drawn beside this run's.
    ``tsne_points``: images per domain in the t-SNE figure.
    """

    target: str | None = None
    target_path: str | None = None
    target_labels_path: str | None = None
    target_test_path: str | None = None
    target_test_labels_path: str | None = None
    method: str = "dann"
    protocol: str = "auto"
    eval_fraction: float = 0.3
    split_seed: int | None = None
    selection: str = "source_val"
    max_target: int | None = None
    max_eval: int | None = None
    select_images: int = 1000
    preprocess: str = "digits"
    compare_with: str | None = None
    tsne_points: int = 500

    def validate(self) -> None:
        check_choice("adapt.method", self.method, METHODS)
        check_choice("adapt.protocol", self.protocol, PROTOCOLS)
        check_choice("adapt.selection", self.selection, tuple(SELECTIONS))
        check_choice("adapt.preprocess", self.preprocess, PREPROCESS)
        check_float("adapt.eval_fraction", self.eval_fraction, minimum=0.0, maximum=0.9, exclusive_min=True)
        for key in ("max_target", "max_eval"):
            if getattr(self, key) is not None:
                check_int(f"adapt.{key}", getattr(self, key), minimum=1)
        if self.split_seed is not None:
            check_int("adapt.split_seed", self.split_seed, minimum=0)
        check_int("adapt.select_images", self.select_images, minimum=2)
        check_int("adapt.tsne_points", self.tsne_points, minimum=10)

    def check_run(self, cfg: Any) -> None:
        """Rules involving other sections (only for ``task: adapt``): a target, the method's model, the labels
        rule; and ``preprocess=digits`` written into ``data`` (resize / channels where unset, scale -1_1)."""
        if cfg.task != "adapt":
            return
        if self.preprocess == "digits":  # applied when the config is built, so the model checks see it
            if cfg.data.resize is None:
                cfg.data.resize = [32, 32]
            if cfg.data.channels is None:
                cfg.data.channels = 3
            cfg.data.scale = "-1_1"
        if not self.target:
            raise ConfigError("task adapt needs a target dataset but adapt.target is not set",
                              fix="set adapt.target=mnist-m (or usps, mnist, svhn; arrays/folder with adapt.target_path)")
        model = cfg.model.get("name") if isinstance(cfg.model, dict) else None
        allowed = METHOD_MODELS.get(self.method)
        if allowed is not None and model not in allowed:
            raise ConfigError(f"adapt.method={self.method} needs model.name={allowed[0]} but model.name={model}",
                              fix=f"set model.name={allowed[0]}, or choose adapt.method=source_only/target_only for "
                                  f"{model}")
        if self.method in ("source_only", "target_only") and isinstance(cfg.model, dict):
            weight = cfg.model.get("adapt_weight")
            if weight not in (None, 0, 0.0):
                raise ConfigError(f"adapt.method={self.method} trains without adaptation but model.adapt_weight={weight}",
                                  fix="drop model.adapt_weight (it is set to 0 for the bounds) or choose adapt.method=dann")
        if self.target in OWN_DATA and not self.target_path:
            raise ConfigError(f"adapt.target={self.target} needs adapt.target_path",
                              fix=f"set adapt.target_path=/path/to/your/{'images' if self.target == 'folder' else 'arrays.npz'}")
        if self.target not in OWN_DATA:
            for key in ("target_path", "target_labels_path", "target_test_path", "target_test_labels_path"):
                if getattr(self, key):
                    raise ConfigError(f"adapt.{key} is only read for adapt.target=arrays or folder, not {self.target!r}",
                                      fix=f"drop adapt.{key}, or set adapt.target=arrays/folder for your own files")
        if self.target_test_path and self.target_path and _same_path(self.target_test_path, self.target_path):
            raise ConfigError(f"adapt.target_test_path is the same file as adapt.target_path ({self.target_path}): the "
                              "evaluation images would be the adaptation images",
                              fix="give separate evaluation images, or drop adapt.target_test_path to hold out "
                                  "adapt.eval_fraction of adapt.target_path")
        if self.target_test_labels_path and not self.target_test_path:
            raise ConfigError("adapt.target_test_labels_path is set without adapt.target_test_path",
                              fix="set adapt.target_test_path too, or drop adapt.target_test_labels_path")
        if self.target_labels_path and self.target_test_path and self.method != "target_only":
            raise ConfigError(f"adapt.target_labels_path gives labels for the adaptation images ({self.target_path}), "
                              f"but with adapt.method={self.method} they are the unlabelled side: adaptation must not "
                              "see target labels (only target_only, the upper bound, trains with them; evaluation "
                              "labels belong to adapt.target_test_labels_path)",
                              fix="drop adapt.target_labels_path, or set adapt.method=target_only")
        if self.protocol == "splits" and self.target in OWN_DATA and not self.target_test_path:
            raise ConfigError(f"adapt.protocol=splits needs separate evaluation images for adapt.target={self.target}",
                              fix="set adapt.target_test_path, or adapt.protocol=holdout (or auto)")
        if self.protocol == "holdout" and self.target_test_path:
            raise ConfigError("adapt.protocol=holdout splits adapt.target_path, but adapt.target_test_path is given too",
                              fix="drop adapt.target_test_path, or set adapt.protocol=splits (or auto)")


def _same_path(a: str, b: str) -> bool:
    from pathlib import Path

    try:
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    except OSError:
        return str(a) == str(b)


#: The DANN paper's digit networks by task: (source, target) -> ``dann`` preset.
DANN_PRESETS: dict[tuple[str, str], str] = {("mnist", "mnist-m"): "mnist", ("usps", "mnist-m"): "mnist",
                                            ("mnist", "usps"): "lenet", ("usps", "mnist"): "lenet",
                                            ("svhn", "mnist"): "svhn", ("mnist", "svhn"): "svhn"}


#: Grey digit datasets: PixelDA between two of them has no colour to translate, only strokes to keep.
GREY_DIGITS = frozenset({"mnist", "usps"})


def adapt_config(source: str, target: str, method: str = "dann", *, seed: int = 0, epochs: int = 10) -> dict[str, Any]:
    """The default run config of ``reprlab adapt`` (used when ``configs/adapt_<source>_<target>.yaml`` is absent).

    Both domains: 32x32, 3 channels, [-1, 1]. ``dann`` (also for the bounds, with ``adapt_weight=0``)
    with the paper's preset for the task, trained by SGD (momentum 0.9, lr 0.01; the model anneals
    it as in the paper); ``pixelda`` with Adam (lr 2e-4, betas 0.5/0.999), and with the content-similarity
    loss (``content_weight=1``) between two grey digit datasets (MNIST, USPS): without it the generator there
    redraws digits as other digits, and the target accuracy fell below source only (MNIST -> USPS, 3 seeds:
    62.3% without, 79.5% with; BENCHMARKS.md), and with the generator's affine warp (``gen_warp``), which
    resizes the digits (USPS's fill the frame, MNIST's do not). ``configs/adapt_mnist_usps_pixelda.yaml`` and
    ``configs/adapt_usps_mnist_pixelda.yaml`` hold the measured settings and take precedence in a checkout.

    Example:
        >>> c = adapt_config("mnist", "mnist-m", "source_only")
        >>> c["model"], c["adapt"]["target"], c["data"]["resize"]
        ({'name': 'dann', 'preset': 'mnist'}, 'mnist-m', [32, 32])
    """
    check_choice("--method", method, METHODS)
    if method == "pixelda":
        model: dict[str, Any] = {"name": "pixelda"}
        if source in GREY_DIGITS and target in GREY_DIGITS:
            model.update(content_weight=1.0, gen_warp="affine")
        train: dict[str, Any] = {"optimizer": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}
    else:
        model = {"name": "dann", "preset": DANN_PRESETS.get((source, target), "mnist")}
        train = {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9}
    return {"task": "adapt", "seed": seed,
            "data": {"name": source, "resize": [32, 32], "channels": 3, "scale": "-1_1", "val_fraction": 0.1},
            "model": model,
            "train": {"epochs": epochs, "batch_size": 64, **train},
            "adapt": {"target": target, "method": method, "protocol": "auto", "selection": "source_val"}}
