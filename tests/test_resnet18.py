"""Tests of the hand-built ResNet-18: parameter count, the torchvision name/shape layout, the stems,
loading ImageNet-layout weights safely (1-channel stems summed), and training steps."""

from __future__ import annotations

import pickle

import pytest
import torch

from reprlab.base.errors import ConfigError, ModelError
from reprlab.data.batch import Batch
from reprlab.models import create_model, load_model, save_model
from reprlab.models.resnet18 import BasicBlock, load_imagenet_weights, read_state_dict

pytestmark = pytest.mark.usefixtures("single_thread")


def _bn(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
            f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}


def _block(prefix: str, cin: int, cout: int, project: bool) -> dict[str, tuple[int, ...]]:
    out = {f"{prefix}.conv1.weight": (cout, cin, 3, 3), **_bn(f"{prefix}.bn1", cout),
           f"{prefix}.conv2.weight": (cout, cout, 3, 3), **_bn(f"{prefix}.bn2", cout)}
    if project:
        out.update({f"{prefix}.downsample.0.weight": (cout, cin, 1, 1), **_bn(f"{prefix}.downsample.1", cout)})
    return out


#: The state dict of torchvision's resnet18() (ImageNet, 3 channels, 1000 classes), written from the
#: architecture (He et al. 2016, Table 1; torchvision's BasicBlock naming), in state-dict order.
TORCHVISION_RESNET18: dict[str, tuple[int, ...]] = {
    "conv1.weight": (64, 3, 7, 7), **_bn("bn1", 64),
    **_block("layer1.0", 64, 64, False), **_block("layer1.1", 64, 64, False),
    **_block("layer2.0", 64, 128, True), **_block("layer2.1", 128, 128, False),
    **_block("layer3.0", 128, 256, True), **_block("layer3.1", 256, 256, False),
    **_block("layer4.0", 256, 512, True), **_block("layer4.1", 512, 512, False),
    "fc.weight": (1000, 512), "fc.bias": (1000,),
}


def imagenet_model(channels: int = 3, classes: int = 1000, size: int = 64):
    return create_model("resnet18", input_shape=(channels, size, size), num_classes=classes, stem="imagenet")


def test_standard_resnet18_has_11689512_parameters():
    model = imagenet_model(size=224)
    assert sum(p.numel() for p in model.parameters()) == 11_689_512
    assert model.num_parameters() == 11_689_512


def test_names_and_shapes_follow_the_torchvision_layout():
    state = imagenet_model().state_dict()
    assert list(state) == list(TORCHVISION_RESNET18)  # same names, same order
    assert {k: tuple(v.shape) for k, v in state.items()} == TORCHVISION_RESNET18
    # the table itself adds up to the published parameter count
    params = sum(torch.Size(s).numel() for k, s in TORCHVISION_RESNET18.items()
                 if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert params == 11_689_512


def test_small_stem_for_small_images_and_one_channel():
    model = create_model("resnet18", input_shape=(1, 28, 28), num_classes=10)
    assert model.config.stem == "small"
    assert tuple(model.conv1.weight.shape) == (64, 1, 3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)
    x = torch.rand(3, 1, 28, 28)
    assert model.logits(x).shape == (3, 10) and model.encode(x).shape == (3, 512)
    rgb = create_model("resnet18", input_shape=(3, 32, 32), num_classes=5)
    assert rgb.logits(torch.rand(2, 3, 32, 32)).shape == (2, 5)
    imagenet = imagenet_model(size=64)
    assert isinstance(imagenet.maxpool, torch.nn.MaxPool2d) and imagenet.conv1.kernel_size == (7, 7)


def test_basic_block_shortcuts():
    plain, projecting = BasicBlock(8, 8), BasicBlock(8, 16, stride=2)
    assert plain.downsample is None
    assert projecting.downsample[0].kernel_size == (1, 1) and projecting.downsample[0].stride == (2, 2)
    assert projecting(torch.rand(1, 8, 9, 9)).shape == (1, 16, 5, 5)


@pytest.mark.parametrize("opts,match", [(dict(stem="vgg"), "stem"), (dict(num_classes=1), "num_classes"),
                                        (dict(latent_dim=64), "latent_dim"), (dict(dropout=1.0), "dropout"),
                                        (dict(input_shape=(1, 16, 16), stem="imagenet"), "stem=small"),
                                        (dict(label_smoothing=0.9), "label_smoothing")])
def test_bad_options_name_the_parameter(opts, match):
    with pytest.raises((ConfigError, ModelError), match=match) as info:
        create_model("resnet18", **{"input_shape": (1, 28, 28), **opts})
    assert "Fix:" in str(info.value)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_imagenet_layout_weights_load_safely(tmp_path, suffix):
    torch.manual_seed(0)
    src = imagenet_model()
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".pth":
        torch.save(src.state_dict(), path)
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    same = imagenet_model()
    assert load_imagenet_weights(same, path) == []
    assert all(torch.equal(a, b) for a, b in zip(same.state_dict().values(), src.state_dict().values()))
    ten = imagenet_model(classes=10)
    assert load_imagenet_weights(ten, path) == ["fc.weight", "fc.bias"]  # another class count: the head is new
    assert torch.equal(ten.layer4[1].conv2.weight, src.layer4[1].conv2.weight)


def test_one_channel_model_sums_the_rgb_stem():
    torch.manual_seed(0)
    src = imagenet_model().eval()
    for m in src.modules():  # non-trivial BN statistics and scales
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1), m.running_var.uniform_(0.5, 1.5), m.weight.data.uniform_(0.5, 1.5)
    gray = imagenet_model(channels=1)
    load_imagenet_weights(gray, src.state_dict())
    gray.eval()
    assert torch.allclose(gray.conv1.weight, src.conv1.weight.sum(1, keepdim=True))
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():  # a grayscale image = the same image copied to three channels
        assert torch.allclose(gray.logits(x), src.logits(x.expand(-1, 3, -1, -1)), atol=1e-4)


def test_weights_of_another_layout_are_refused(tmp_path):
    state = imagenet_model().state_dict()
    broken = {k: v for k, v in state.items() if k != "layer3.0.downsample.0.weight"}
    with pytest.raises(ModelError, match="layer3.0.downsample.0.weight"):
        load_imagenet_weights(imagenet_model(), broken)
    wide = dict(state, **{"layer1.0.conv1.weight": torch.zeros(32, 64, 3, 3)})
    with pytest.raises(ModelError, match="layer1.0.conv1.weight"):
        load_imagenet_weights(imagenet_model(), wide)
    small = create_model("resnet18", input_shape=(3, 32, 32), num_classes=1000)
    with pytest.raises(ModelError, match="stem=imagenet"):
        load_imagenet_weights(small, state)


class Payload:
    def __reduce__(self):  # what an unsafe loader would run
        return (print, ("unpickled!",))


def test_weights_files_are_never_unpickled(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"conv1.weight": Payload()}, f)
    with pytest.raises(ModelError, match="weights_only"):
        read_state_dict(path)
    assert "unpickled!" not in capsys.readouterr().out
    with pytest.raises(ModelError, match="does not exist"):
        read_state_dict(tmp_path / "missing.pth")


def test_forward_terms_training_step_and_round_trip(tmp_path):
    torch.manual_seed(0)
    model = create_model("resnet18", input_shape=(1, 16, 16), num_classes=3, label_smoothing=0.1)
    x, y = torch.rand(6, 1, 16, 16), torch.tensor([0, 1, 2, 0, 1, 2])
    out = model(x, y)
    assert set(out.terms) == {"loss", "xent", "acc"} and out.terms["loss"] > out.terms["xent"] * 0
    plain = torch.nn.functional.cross_entropy(out.extras["logits"], y)
    assert torch.allclose(out.terms["xent"], plain)
    assert not torch.allclose(out.terms["loss"], plain)  # label smoothing changes the loss
    assert not hasattr(model, "decode")
    model.check_input()
    model.sanity_check(x)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    class Ctx:
        forward = staticmethod(model)

        @staticmethod
        def step(name, loss):
            assert name == "main"
            opt.zero_grad(), loss.backward(), opt.step()

    first = float(model.training_step(Batch(x, y), Ctx)["loss"])
    for _ in range(15):
        last = float(model.training_step(Batch(x, y), Ctx)["loss"])
    assert last < first
    with pytest.raises(ConfigError, match="labels"):
        model.training_step(Batch(x), Ctx)
    model.eval()
    loaded = load_model(save_model(model, tmp_path / "m")).eval()
    assert torch.equal(loaded.logits(x), model.logits(x))
