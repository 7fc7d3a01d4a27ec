"""The generation metrics mean something: the sanity ladder on the embedded Fashion-MNIST sample,
the feature network's cache and checksum, and its refusal of images of another size."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from reprlab.base.errors import ModelError
from reprlab.capabilities.generation.features import extract, feature_network, load_feature_net
from reprlab.capabilities.generation.metrics import GenerationEvaluator, frechet_distance, manifold_precision_recall
from reprlab.data import load_dataset

pytestmark = pytest.mark.usefixtures("single_thread")


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    k = torch.arange(-3, 4).float()
    g = torch.exp(-k ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    x = F.conv2d(x, g.view(1, 1, 1, 7), padding=(0, 3))
    return F.conv2d(x, g.view(1, 1, 7, 1), padding=(3, 0))


@pytest.fixture(scope="module")
def ladder(tmp_path_factory):
    torch.set_num_threads(1)
    train = load_dataset("fashion-mnist-sample", "train")
    cache = tmp_path_factory.mktemp("cache")
    net = feature_network(train.subset(torch.arange(2000, 5000)), epochs=3, width=16, feature_dim=32, cache_dir=cache)
    x, y = train.float01(torch.arange(2000)), train.labels[:2000]
    ev = GenerationEvaluator(net, x[:1000], kid_subsets=5)
    return ev, x[1000:], y[1000:], cache, train


def test_real_halves_sit_at_the_floor_and_noise_and_blur_raise_fd_monotonically(ladder):
    ev, b, _, _, _ = ladder
    g = torch.Generator().manual_seed(0)
    floor = ev.evaluate(b)["fd"]
    noise = [ev.evaluate((b + s * torch.randn(b.shape, generator=g)).clamp(0, 1))["fd"] for s in (0.05, 0.1, 0.2, 0.4)]
    blurred = [ev.evaluate(blur(b, s))["fd"] for s in (0.5, 1.0, 2.0)]
    assert noise == sorted(noise) and blurred == sorted(blurred), (floor, noise, blurred)
    assert floor < 0.3 * noise[0] and floor < 0.3 * blurred[0], (floor, noise, blurred)


def test_dropping_half_the_classes_loses_recall_not_precision(ladder):
    ev, b, y, _, _ = ladder
    full, half = ev.evaluate(b), ev.evaluate(b[y < 5])
    assert half["precision"] > 0.9 * full["precision"]
    assert half["recall"] < full["recall"] - 0.15
    assert half["coverage"] <= 0.6 < 0.9 <= full["coverage"]  # the small feature classifier misses at most one class


def test_one_image_repeated_gets_a_huge_distance_and_no_diversity(ladder):
    ev, b, _, _, _ = ladder
    full, one = ev.evaluate(b), ev.evaluate(b[:1].repeat(1000, 1, 1, 1))
    assert one["fd"] > 50 * max(full["fd"], 1e-3)
    assert one["recall"] < 0.05 and one["diversity"] < 0.05 and one["max_class_share"] == 1.0


def test_memorisation_check_flags_copies_of_training_images(ladder):
    ev, b, _, _, train = ladder
    mem = GenerationEvaluator(ev.net, b[:500], train=train.float01(torch.arange(2000, 3000)), kid_subsets=5)
    fresh = mem.evaluate(b[500:])
    copies = mem.evaluate(train.float01(torch.arange(2000, 2500)))
    assert fresh["memorisation_ratio"] > 0.7 and fresh["memorised_share"] < 0.2
    assert copies["memorisation_ratio"] < 0.1 and copies["memorised_share"] > 0.9


def test_fd_and_precision_recall_on_plain_features():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(400, 6, generator=g), torch.randn(400, 6, generator=g)
    assert frechet_distance(a, b) < 0.5 < frechet_distance(a, b + 1.0)
    p, r = manifold_precision_recall(a, b * 0.2)  # a shrunken copy: precise, but covers little
    assert p > 0.9 and r < 0.5


def test_feature_network_is_cached_with_a_checksum_and_deterministic(ladder, tmp_path):
    ev, b, _, cache, train = ladder
    part = train.subset(torch.arange(2000, 5000))
    again = feature_network(part, epochs=3, width=16, feature_dim=32, cache_dir=cache)  # from the cache
    assert torch.equal(extract(again, b[:8]), extract(ev.net, b[:8]))
    folders = list((cache / "features").iterdir())
    assert len(folders) == 1
    meta = json.loads((folders[0] / "weights.json").read_text())
    assert len(meta["sha256"]) == 64 and meta["objective"] == "classes"
    # retrained from scratch (another cache): the same weights, bit for bit
    fresh = feature_network(part, epochs=3, width=16, feature_dim=32, cache_dir=tmp_path)
    assert torch.equal(extract(fresh, b[:8]), extract(ev.net, b[:8]))
    # a corrupted cached file is refused by its checksum (and retrained by feature_network)
    weights = folders[0] / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"corrupt!")
    with pytest.raises(ModelError, match="sha256"):
        load_feature_net(folders[0])


def test_feature_network_refuses_images_of_another_size(ladder):
    ev = ladder[0]
    with pytest.raises(ModelError, match=r"trained on images of shape \(1, 28, 28\)") as info:
        ev.evaluate(torch.rand(50, 3, 32, 32))
    assert "Fix:" in str(info.value)


def test_rotation_feature_network_for_unlabelled_images(tmp_path):
    from reprlab.data.dataset import ImageData

    train = load_dataset("fashion-mnist-sample", "train")
    unlabelled = ImageData(train.images[:300])
    net = feature_network(unlabelled, epochs=1, width=4, feature_dim=8, cache_dir=tmp_path)
    assert net.objective == "rotation" and net.num_outputs == 4
    ev = GenerationEvaluator(net, unlabelled.float01()[:150], kid_subsets=2)
    m = ev.evaluate(unlabelled.float01()[150:])
    assert "coverage" not in m and {"fd", "kid", "precision", "recall"} <= set(m)
