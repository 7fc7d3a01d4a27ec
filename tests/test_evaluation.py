"""Tests of reprlab.evaluation.reconstruction with tiny self-contained models (no zoo)."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from torch import nn

from reprlab.data.dataset import ImageData
from reprlab.base.errors import ModelError
from reprlab.evaluation import (
    ReconstructionReport,
    evaluate_reconstruction,
    from_model_range,
    per_image_metrics,
    reconstruct01,
    to_model_range,
)
from reprlab.models.base import ModelConfig, ModelOutput, ReprModel

from conftest import LinearAE

SHAPE = (1, 12, 12)


# ----------------------------------------------------------------------------------------
# tiny models
# ----------------------------------------------------------------------------------------
class ConstantModel(ReprModel):
    """Reconstructs every image as ``value`` (in model range) and records the inputs it saw."""

    registry_name = "test_constant"

    def __init__(self, config: ModelConfig, value: float = 0.0) -> None:
        super().__init__(config)
        self.value = value
        self.scale = nn.Parameter(torch.ones(()))
        self.seen: list[torch.Tensor] = []

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return x.flatten(1)[:, :2] * 0

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.full((z.shape[0], *self.config.input_shape), self.value) * self.scale

    def forward(self, x: torch.Tensor) -> ModelOutput:
        xhat = self.decode(self.encode(x))
        mse = (xhat - x).pow(2).mean()
        return ModelOutput(loss=mse, terms={"loss": mse}, reconstruction=xhat, latent=x.flatten(1)[:, :2])


class FakeVAE(ConstantModel):
    """Variational stand-in: per-image ELBO = -sum(x), KL = mean(x); optionally only batch means."""

    registry_name = "test_fake_vae"
    is_variational = True

    def __init__(self, config: ModelConfig, per_image: bool = True) -> None:
        super().__init__(config, value=0.5)
        self.per_image = per_image

    def forward(self, x: torch.Tensor) -> ModelOutput:
        out = super().forward(x)
        elbo = -x.flatten(1).sum(1)
        kl = x.flatten(1).mean(1)
        out.terms.update({"elbo": elbo.mean(), "kl": kl.mean(), "nll": -elbo.mean()})
        if self.per_image:
            out.extras = {"elbo_per_image": elbo, "kl_per_image": kl}
        return out


class BrokenModel(ConstantModel):
    """Returns float64 or NaN reconstructions for the second batch onwards."""

    def __init__(self, config: ModelConfig, mode: str) -> None:
        super().__init__(config, value=0.5)
        self.mode = mode
        self.calls = 0

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        y = super().decode(z)
        if self.calls >= 2:
            y = y.double() if self.mode == "float64" else y.clone().fill_(float("nan"))
        return y


def _cfg(output_range: str = "0_1") -> ModelConfig:
    return ModelConfig(input_shape=SHAPE, latent_dim=3, output_range=output_range)


def _data(n: int = 10, seed: int = 0, labels: bool = True) -> ImageData:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, *SHAPE), generator=g, dtype=torch.uint8)
    return ImageData(images, torch.arange(n) % 3 if labels else None, name="toy")


# ----------------------------------------------------------------------------------------
# per-image metrics
# ----------------------------------------------------------------------------------------
def test_identical_images_give_perfect_scores() -> None:
    x = torch.rand(4, 3, 16, 16)
    m = per_image_metrics(x, x.clone())
    assert set(m) == {"mse", "l1", "psnr", "ssim"}
    assert all(v.shape == (4,) for v in m.values())
    assert torch.all(m["mse"] == 0) and torch.all(m["l1"] == 0)
    assert torch.allclose(m["psnr"], torch.full((4,), 100.0, dtype=torch.float64))  # capped at 1e-10
    assert torch.allclose(m["ssim"], torch.ones(4, dtype=torch.float64), atol=1e-6)


def test_known_noise_gives_known_mse_l1_psnr() -> None:
    g = torch.Generator().manual_seed(1)
    x = 0.2 + 0.6 * torch.rand(3, 1, 20, 20, generator=g)
    sign = torch.randint(0, 2, x.shape, generator=g).float() * 2 - 1
    m = per_image_metrics(x, x + 0.05 * sign)
    assert np.allclose(m["mse"].numpy(), 0.0025, rtol=1e-5)
    assert np.allclose(m["l1"].numpy(), 0.05, rtol=1e-5)
    assert np.allclose(m["psnr"].numpy(), 10 * math.log10(1 / 0.0025), atol=1e-4)  # 26.02 dB
    # an image shifted by 0.1 everywhere: mse 0.01 -> 20 dB
    m2 = per_image_metrics(x[:1], x[:1] + 0.1)
    assert float(m2["psnr"][0]) == pytest.approx(20.0, abs=1e-4)
    # worse noise -> lower SSIM
    m3 = per_image_metrics(x, x + 0.2 * sign)
    assert torch.all(m3["ssim"] < m["ssim"])


def test_ssim_of_constant_images_matches_closed_form() -> None:
    a, b = 0.3, 0.5
    x = torch.full((1, 1, 16, 16), a)
    y = torch.full((1, 1, 16, 16), b)
    c1 = (0.01 * 1.0) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)  # contrast/structure terms are c2/c2 = 1
    assert float(per_image_metrics(x, y)["ssim"][0]) == pytest.approx(expected, rel=1e-5)


def _reference_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Gaussian SSIM (sigma 1.5, 11 taps, reflect padding, mean over the image) in float64."""
    ndimage = pytest.importorskip("scipy.ndimage")
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    vals = []
    for xc, yc in zip(x, y):
        xp, yp = np.pad(xc, 5, mode="reflect"), np.pad(yc, 5, mode="reflect")

        def f(img: np.ndarray) -> np.ndarray:
            return ndimage.gaussian_filter(img, sigma=1.5, truncate=3.5)[5:-5, 5:-5]

        mx, my = f(xp), f(yp)
        sxx = np.maximum(f(xp * xp) - mx * mx, 0)
        syy = np.maximum(f(yp * yp) - my * my, 0)
        sxy = f(xp * yp) - mx * my
        s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))
        vals.append(s.mean())
    return float(np.mean(vals))


def test_ssim_agrees_with_reference_implementation() -> None:
    # skimage (not installed here) crops the borders, torchmetrics reflect-pads them; this
    # scipy reference follows torchmetrics' convention, so the agreement is exact.
    g = torch.Generator().manual_seed(2)
    x = torch.rand(3, 3, 24, 24, generator=g, dtype=torch.float64).float()
    y = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    ours = per_image_metrics(x, y)["ssim"].numpy()
    ref = [_reference_ssim(x[i].double().numpy(), y[i].double().numpy()) for i in range(3)]
    assert np.allclose(ours, ref, atol=1e-4)


def test_ssim_is_per_image_independent_of_batch_split() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.rand(6, 1, 28, 28, generator=g)
    y = (x + 0.15 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    whole = per_image_metrics(x, y)
    parts = [per_image_metrics(x[s], y[s]) for s in (slice(0, 1), slice(1, 4), slice(4, 6))]
    for key in whole:
        split = torch.cat([p[key] for p in parts])
        assert torch.allclose(whole[key], split, atol=1e-6), key
    reversed_ = per_image_metrics(x.flip(0), y.flip(0))
    assert torch.allclose(whole["ssim"], reversed_["ssim"].flip(0), atol=1e-6)


@pytest.mark.parametrize("size", [1, 2, 4, 7, 10])
def test_ssim_works_for_images_smaller_than_the_window(size: int) -> None:
    x = torch.rand(2, 1, size, size)
    m = per_image_metrics(x, x)
    assert torch.allclose(m["ssim"], torch.ones(2, dtype=torch.float64), atol=1e-5)
    noisy = per_image_metrics(x, (x + 0.3).clamp(0, 1))
    assert torch.all(noisy["ssim"] < 1)


# ----------------------------------------------------------------------------------------
# range mapping
# ----------------------------------------------------------------------------------------
def test_range_mapping_round_trip() -> None:
    m = ConstantModel(_cfg("-1_1"))
    x = torch.tensor([0.0, 0.25, 1.0])
    assert to_model_range(x, m).tolist() == [-1.0, -0.5, 1.0]
    assert torch.allclose(from_model_range(to_model_range(x, m), m), x)
    m01 = ConstantModel(_cfg("0_1"))
    assert to_model_range(x, m01) is x


def test_minus_one_one_model_gets_mapped_input_and_output() -> None:
    data = _data(6)
    model = ConstantModel(_cfg("-1_1"), value=0.0)  # 0 in (-1, 1) is 0.5 in [0, 1]
    rep = evaluate_reconstruction(model, data, batch_size=4)
    seen = torch.cat(model.seen)
    assert float(seen.min()) < -0.9 and float(seen.max()) > 0.9  # inputs were x * 2 - 1
    x01 = data.float01()
    expected = (x01 - 0.5).pow(2).flatten(1).mean(1).double().numpy()
    assert np.allclose(rep.per_image["mse"], expected, atol=1e-6)
    # outputs outside the range are clamped to [0, 1] after mapping back
    model_out = ConstantModel(_cfg("-1_1"), value=-3.0)
    rep2 = evaluate_reconstruction(model_out, data)
    assert np.allclose(rep2.per_image["mse"], x01.pow(2).flatten(1).mean(1).double().numpy(), atol=1e-6)


def test_reconstruct01_maps_back_and_restores_train_mode() -> None:
    model = ConstantModel(_cfg("-1_1"), value=1.0)
    model.train()
    out = reconstruct01(model, torch.rand(5, *SHAPE), batch_size=2)
    assert out.shape == (5, *SHAPE) and out.dtype == torch.float32
    assert torch.all(out == 1.0)
    assert model.training


# ----------------------------------------------------------------------------------------
# evaluate_reconstruction
# ----------------------------------------------------------------------------------------
def test_evaluate_linear_autoencoder_summary_and_shapes() -> None:
    torch.manual_seed(0)
    model = LinearAE(_cfg())
    model.train()
    data = _data(10)
    rep = evaluate_reconstruction(model, data, batch_size=4)
    assert isinstance(rep, ReconstructionReport)
    assert set(rep.summary) == {"mse", "l1", "psnr", "ssim"}
    assert rep.indices.tolist() == list(range(10))
    assert rep.labels.tolist() == (torch.arange(10) % 3).tolist()
    for key, values in rep.per_image.items():
        assert values.shape == (10,) and values.dtype == np.float64
        assert rep.summary[key] == pytest.approx(values.mean())
    assert model.training  # mode restored
    # same result with another batch size
    rep2 = evaluate_reconstruction(model, data, batch_size=3)
    for key in rep.per_image:
        assert np.allclose(rep.per_image[key], rep2.per_image[key], atol=1e-5)
    # matches a hand computation with the model's own reconstruction
    with torch.no_grad():
        model.eval()
        xhat = model.reconstruct(data.float01())
    assert np.allclose(rep.per_image["mse"], (xhat - data.float01()).pow(2).flatten(1).mean(1).numpy(), atol=1e-6)


def test_max_images_limits_evaluation() -> None:
    rep = evaluate_reconstruction(ConstantModel(_cfg()), _data(10), max_images=4)
    assert len(rep) == 4 and rep.indices.tolist() == [0, 1, 2, 3]
    assert all(v.shape == (4,) for v in rep.per_image.values())


def test_best_and_worst_are_ordered_by_mse() -> None:
    brightness = torch.tensor([0.5, 0.1, 0.9, 0.3, 0.7])
    images = brightness.view(-1, 1, 1, 1).expand(5, *SHAPE).contiguous()
    data = ImageData(images, name="levels")
    rep = evaluate_reconstruction(ConstantModel(_cfg(), value=0.0), data, batch_size=2)
    # mse = brightness ** 2, so darker images are reconstructed better
    assert np.allclose(rep.per_image["mse"], (brightness ** 2).numpy(), atol=1e-6)
    assert rep.best(2).tolist() == [1, 3]
    assert rep.worst(2).tolist() == [2, 4]
    assert rep.best(10).tolist() == [1, 3, 0, 4, 2]
    assert rep.best(0).tolist() == []


def test_prefixed_summary() -> None:
    rep = evaluate_reconstruction(ConstantModel(_cfg()), _data(4))
    pref = rep.prefixed("test")
    assert set(pref) == {"test/mse", "test/l1", "test/psnr", "test/ssim"}
    assert pref["test/mse"] == rep.summary["mse"]
    assert rep.prefixed("val/") == {k.replace("test/", "val/"): v for k, v in pref.items()}


def test_variational_per_image_elbo_and_kl_from_extras() -> None:
    data = _data(10)
    rep = evaluate_reconstruction(FakeVAE(_cfg()), data, batch_size=4)
    x = data.float01().flatten(1).double()
    assert np.allclose(rep.per_image["elbo_nats"], (-x.sum(1)).numpy(), atol=1e-3)
    assert np.allclose(rep.per_image["kl"], x.mean(1).numpy(), atol=1e-6)
    assert rep.summary["elbo_nats"] == pytest.approx(float(-x.sum(1).mean()), rel=1e-5)
    assert rep.summary["kl"] == pytest.approx(float(x.mean(1).mean()), rel=1e-5)


def test_variational_without_extras_uses_weighted_batch_means() -> None:
    data = _data(10)  # batches of 4, 4, 2: the weighted mean of batch means is the overall mean
    rep = evaluate_reconstruction(FakeVAE(_cfg(), per_image=False), data, batch_size=4)
    x = data.float01().flatten(1).double()
    assert "elbo_nats" not in rep.per_image and "kl" not in rep.per_image
    assert rep.summary["elbo_nats"] == pytest.approx(float(-x.sum(1).mean()), rel=1e-5)
    assert rep.summary["kl"] == pytest.approx(float(x.mean(1).mean()), rel=1e-5)


def test_csv_content(tmp_path) -> None:
    data = _data(5)
    rep = evaluate_reconstruction(FakeVAE(_cfg()), data, batch_size=2)
    path = rep.to_csv(tmp_path / "sub" / "per_image.csv")
    assert path.exists()
    assert [p.name for p in path.parent.iterdir()] == ["per_image.csv"]  # no temp files left
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["index", "label", "mse", "l1", "psnr", "ssim", "elbo_nats", "kl"]
    assert [int(r["index"]) for r in rows] == list(range(5))
    assert [int(r["label"]) for r in rows] == [0, 1, 2, 0, 1]
    for key in ("mse", "ssim", "elbo_nats"):
        assert np.array_equal(np.array([float(r[key]) for r in rows]), rep.per_image[key])


def test_csv_without_labels(tmp_path) -> None:
    rep = evaluate_reconstruction(ConstantModel(_cfg()), _data(3, labels=False))
    with open(rep.to_csv(tmp_path / "s.csv"), newline="") as fh:
        header = next(csv.reader(fh))
    assert header == ["index", "mse", "l1", "psnr", "ssim"]


@pytest.mark.parametrize("mode,needle", [("float64", "float64"), ("nan", "NaN")])
def test_bad_model_output_raises_model_error(mode: str, needle: str) -> None:
    model = BrokenModel(_cfg(), mode)
    model.train()
    with pytest.raises(ModelError, match=needle) as info:
        evaluate_reconstruction(model, _data(6), batch_size=3)
    assert "images 3..5" in str(info.value)
    assert model.training  # mode restored even on error


def test_shape_mismatch_raises_model_error() -> None:
    data = ImageData(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(ModelError, match="shape"):
        evaluate_reconstruction(ConstantModel(_cfg()), data)


def test_bad_arguments_raise_user_errors() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        evaluate_reconstruction(ConstantModel(_cfg()), _data(2), batch_size=0)
    with pytest.raises(ValueError, match="max_images"):
        evaluate_reconstruction(ConstantModel(_cfg()), _data(2), max_images=0)
    with pytest.raises(ValueError, match="ImageData"):
        evaluate_reconstruction(ConstantModel(_cfg()), torch.zeros(2, *SHAPE))  # type: ignore[arg-type]
