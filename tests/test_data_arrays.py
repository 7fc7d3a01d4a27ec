"""load_arrays: layouts, dtypes/ranges, npz key choice, labels, and refusal of unsafe/bad arrays."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from reprlab.data import load_arrays, load_dataset
from reprlab.base.errors import ConfigError, DataError


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_npz_nhwc_uint8_with_labels(tmp_path, rng):
    x = rng.integers(0, 256, (6, 8, 9, 3), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(6))
    data = load_arrays(tmp_path / "d.npz")
    assert data.images.shape == (6, 3, 8, 9) and data.images.dtype == torch.uint8
    assert torch.equal(data.images, torch.from_numpy(x).permute(0, 3, 1, 2))
    assert data.labels.tolist() == list(range(6)) and data.name == "d"


def test_npy_nchw_and_nhw(tmp_path, rng):
    x = rng.integers(0, 256, (4, 1, 5, 5), dtype=np.uint8)
    np.save(tmp_path / "a.npy", x)
    assert torch.equal(load_arrays(tmp_path / "a.npy").images, torch.from_numpy(x))
    np.save(tmp_path / "b.npy", x[:, 0])
    data = load_arrays(tmp_path / "b.npy", name="bee")
    assert data.images.shape == (4, 1, 5, 5) and data.labels is None and data.name == "bee"


def test_flat_square_rows_reshaped_and_told(tmp_path, rng, caplog):
    """784 values per row is unambiguous (one 28x28 channel); the chosen shape is logged."""
    x = rng.integers(0, 256, (3, 784), dtype=np.uint8)
    np.save(tmp_path / "flat.npy", x)
    with caplog.at_level(logging.INFO, logger="reprlab.data.arrays"):
        data = load_arrays(tmp_path / "flat.npy")
    assert data.shape == (1, 28, 28)
    assert torch.equal(data.images, torch.from_numpy(x.reshape(3, 1, 28, 28)))
    assert "28x28" in caplog.text and "data.image_shape" in caplog.text


@pytest.mark.parametrize("d", [600, 700, 3072])
def test_flat_ambiguous_rows_refused(tmp_path, rng, d):
    """A non-square row length (600 = 20x30 or 24x25 ...) is refused, pointing at data.image_shape."""
    np.save(tmp_path / "flat.npy", rng.integers(0, 256, (3, d), dtype=np.uint8))
    with pytest.raises(DataError, match=f"{d} values, which is not a square number") as err:
        load_arrays(tmp_path / "flat.npy")
    assert "data.image_shape=[H,W]" in str(err.value)


def test_flat_rows_with_given_shape(tmp_path, rng, caplog):
    x = rng.integers(0, 256, (3, 600), dtype=np.uint8)
    np.save(tmp_path / "flat.npy", x)
    with caplog.at_level(logging.INFO, logger="reprlab.data.arrays"):
        data = load_arrays(tmp_path / "flat.npy", image_shape=[20, 30])
    assert data.images.shape == (3, 1, 20, 30) and "20x30" in caplog.text
    assert torch.equal(data.images, torch.from_numpy(x.reshape(3, 1, 20, 30)))
    assert load_arrays(tmp_path / "flat.npy", image_shape=(24, 25)).shape == (1, 24, 25)
    # a square row length also follows the given shape instead of the guess
    np.save(tmp_path / "sq.npy", rng.integers(0, 256, (2, 64), dtype=np.uint8))
    assert load_arrays(tmp_path / "sq.npy", image_shape=[4, 16]).shape == (1, 4, 16)
    rgb = rng.integers(0, 256, (2, 3 * 4 * 5), dtype=np.uint8)
    np.save(tmp_path / "rgb.npy", rgb)
    assert torch.equal(load_arrays(tmp_path / "rgb.npy", image_shape=[3, 4, 5]).images,
                       torch.from_numpy(rgb.reshape(2, 3, 4, 5)))
    assert torch.equal(load_arrays(tmp_path / "rgb.npy", image_shape=[4, 5, 3], layout="NHWC").images,
                       torch.from_numpy(rgb.reshape(2, 4, 5, 3).transpose(0, 3, 1, 2)))


def test_given_shape_checked(tmp_path, rng):
    np.save(tmp_path / "flat.npy", rng.integers(0, 256, (3, 600), dtype=np.uint8))
    with pytest.raises(DataError, match=r"image_shape=\[20, 20\] holds 400 values"):
        load_arrays(tmp_path / "flat.npy", image_shape=[20, 20])
    with pytest.raises(DataError, match="gives 6 channels"):
        load_arrays(tmp_path / "flat.npy", image_shape=[6, 10, 10])
    with pytest.raises(ConfigError, match="image_shape must be"):
        load_arrays(tmp_path / "flat.npy", image_shape=[600])
    np.save(tmp_path / "img.npy", rng.integers(0, 256, (3, 5, 6), dtype=np.uint8))
    with pytest.raises(DataError, match="images are 5x6 but image_shape"):
        load_arrays(tmp_path / "img.npy", image_shape=[6, 5])
    assert load_arrays(tmp_path / "img.npy", image_shape=[5, 6]).shape == (1, 5, 6)


def test_image_shape_from_config(tmp_path, rng):
    """data.image_shape reaches the loader through the run config (train and test splits)."""
    from reprlab.config import RunConfig
    from reprlab.runs import prepare_data

    np.save(tmp_path / "flat.npy", rng.integers(0, 256, (20, 600), dtype=np.uint8))
    cfg = RunConfig.from_dict({"data": {"name": "arrays", "path": str(tmp_path / "flat.npy"),
                                        "image_shape": [20, 30]}})
    splits = prepare_data(cfg)
    assert splits.train.shape == (1, 20, 30) and splits.test.shape == (1, 20, 30)
    with pytest.raises(DataError, match="data.image_shape"):
        prepare_data(RunConfig.from_dict({"data": {"name": "arrays", "path": str(tmp_path / "flat.npy")}}))
    with pytest.raises(ConfigError, match="only read for data.name=arrays"):
        RunConfig.from_dict({"data": {"name": "mnist", "image_shape": [28, 28]}})
    with pytest.raises(ConfigError, match="data.image_shape"):
        RunConfig.from_dict({"data": {"name": "arrays", "path": "x.npy", "image_shape": [0, 30]}})


def test_explicit_layout(tmp_path, rng):
    x = rng.random((2, 3, 4, 3)).astype(np.float32)  # ambiguous: axis 1 and 3 both 3
    np.save(tmp_path / "amb.npy", x)
    with pytest.raises(DataError, match="cannot tell the channel axis"):
        load_arrays(tmp_path / "amb.npy")
    nhwc = load_arrays(tmp_path / "amb.npy", layout="NHWC")
    assert nhwc.images.shape == (2, 3, 3, 4)
    with pytest.raises(DataError, match="layout 'NHW' needs a 3-D array"):
        load_arrays(tmp_path / "amb.npy", layout="NHW")
    with pytest.raises(ConfigError, match="unknown array layout"):
        load_arrays(tmp_path / "amb.npy", layout="HWC")


def test_float_ranges(tmp_path, rng, caplog):
    x01 = rng.random((3, 4, 4)).astype(np.float64)
    np.save(tmp_path / "f01.npy", x01)
    data = load_arrays(tmp_path / "f01.npy")
    assert data.images.dtype == torch.float32
    np.testing.assert_allclose(data.images[:, 0].numpy(), x01, rtol=1e-6)

    np.save(tmp_path / "f255.npy", (x01 * 255).astype(np.float32))
    with caplog.at_level(logging.INFO, logger="reprlab.data.arrays"):
        data = load_arrays(tmp_path / "f255.npy")
    assert "dividing by 255" in caplog.text
    np.testing.assert_allclose(data.images[:, 0].numpy(), x01, atol=1e-5)

    np.save(tmp_path / "fneg.npy", (x01 * 2 - 1).astype(np.float32))
    with pytest.raises(DataError, match=r"must lie in \[0, 1\] or \[0, 255\]") as info:
        load_arrays(tmp_path / "fneg.npy")
    assert "(x + 1) / 2" in info.value.fix
    np.save(tmp_path / "fbig.npy", np.full((2, 4, 4), 300.0))
    with pytest.raises(DataError, match="must lie in"):
        load_arrays(tmp_path / "fbig.npy")


def test_integer_dtypes(tmp_path):
    np.save(tmp_path / "i64.npy", np.full((2, 4, 4), 200, dtype=np.int64))
    data = load_arrays(tmp_path / "i64.npy")
    assert data.images.dtype == torch.uint8 and int(data.images.max()) == 200
    np.save(tmp_path / "i16.npy", np.full((2, 4, 4), 1000, dtype=np.int16))
    with pytest.raises(DataError, match=r"integer pixels must lie in 0..255"):
        load_arrays(tmp_path / "i16.npy")


def test_nan_rejected(tmp_path, rng):
    x = rng.random((5, 4, 4)).astype(np.float32)
    x[1, 0, 0] = np.nan
    x[3, 2, 1] = np.inf
    np.save(tmp_path / "nan.npy", x)
    with pytest.raises(DataError, match="2 image\\(s\\) contain NaN or infinite"):
        load_arrays(tmp_path / "nan.npy")


@pytest.mark.parametrize("shape", [(10,), (2, 3, 4, 4, 1)])
def test_wrong_rank(tmp_path, shape):
    np.save(tmp_path / "r.npy", np.zeros(shape, np.uint8))
    with pytest.raises(DataError, match="must be a 3-D .* or 4-D"):
        load_arrays(tmp_path / "r.npy")


def test_four_channels(tmp_path):
    np.save(tmp_path / "rgba.npy", np.zeros((2, 5, 5, 4), np.uint8))
    with pytest.raises(DataError, match="no channel axis of size 1 or 3"):
        load_arrays(tmp_path / "rgba.npy")
    with pytest.raises(DataError, match="4 channels"):
        load_arrays(tmp_path / "rgba.npy", layout="NHWC")


def test_object_arrays_never_unpickled(tmp_path):
    obj = np.empty(2, dtype=object)
    obj[0], obj[1] = np.zeros((4, 4)), np.zeros((5, 5))
    np.save(tmp_path / "obj.npy", obj, allow_pickle=True)
    with pytest.raises(DataError, match="Python-object array"):
        load_arrays(tmp_path / "obj.npy")
    np.savez(tmp_path / "obj.npz", x=obj)
    with pytest.raises(DataError, match="array 'x'.*Python-object array"):
        load_arrays(tmp_path / "obj.npz")


def test_corrupt_and_missing_files(tmp_path):
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DataError, match="bad.npy"):
        load_arrays(tmp_path / "bad.npy")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 truncated zip")
    with pytest.raises(DataError, match="bad.npz"):
        load_arrays(tmp_path / "bad.npz")
    with pytest.raises(DataError, match="does not exist"):
        load_arrays(tmp_path / "missing.npy")
    (tmp_path / "x.csv").write_text("1,2")
    with pytest.raises(DataError, match="expected .npy or .npz"):
        load_arrays(tmp_path / "x.csv")


def test_npz_key_choice(tmp_path, rng):
    tr, te = rng.integers(0, 256, (4, 6, 6), dtype=np.uint8), rng.integers(0, 256, (2, 6, 6), dtype=np.uint8)
    np.savez(tmp_path / "s.npz", train_x=tr, train_y=np.arange(4), test_x=te, test_y=np.array([7, 8]))
    assert len(load_arrays(tmp_path / "s.npz")) == 4
    test = load_arrays(tmp_path / "s.npz", split="test")
    assert len(test) == 2 and test.labels.tolist() == [7, 8]
    np.savez(tmp_path / "keras.npz", trainX=tr, trainY=np.arange(4))
    assert load_arrays(tmp_path / "keras.npz").labels.tolist() == [0, 1, 2, 3]
    np.savez(tmp_path / "single.npz", tr)
    assert load_arrays(tmp_path / "single.npz").labels is None
    np.savez(tmp_path / "odd.npz", pics=tr, cats=np.arange(4))
    with pytest.raises(DataError, match="cannot tell which array holds the images; arrays: \\['pics', 'cats'\\]"):
        load_arrays(tmp_path / "odd.npz")
    data = load_arrays(tmp_path / "odd.npz", images_key="pics", labels_key="cats")
    assert data.labels.tolist() == [0, 1, 2, 3]


def test_separate_labels(tmp_path, rng):
    np.save(tmp_path / "x.npy", rng.integers(0, 256, (4, 5, 5), dtype=np.uint8))
    np.save(tmp_path / "y.npy", np.array([3, 1, 2, 0], dtype=np.int32))
    assert load_arrays(tmp_path / "x.npy", tmp_path / "y.npy").labels.tolist() == [3, 1, 2, 0]
    np.save(tmp_path / "y_col.npy", np.array([[3], [1], [2], [0]]))
    assert load_arrays(tmp_path / "x.npy", tmp_path / "y_col.npy").labels.tolist() == [3, 1, 2, 0]
    np.save(tmp_path / "onehot.npy", np.eye(3)[[2, 0, 1, 1]])
    assert load_arrays(tmp_path / "x.npy", tmp_path / "onehot.npy").labels.tolist() == [2, 0, 1, 1]
    np.save(tmp_path / "short.npy", np.array([1, 2]))
    with pytest.raises(DataError, match="4 images but 2 labels"):
        load_arrays(tmp_path / "x.npy", tmp_path / "short.npy")
    np.save(tmp_path / "frac.npy", np.array([0.5, 1, 2, 3]))
    with pytest.raises(DataError, match="labels must be integers"):
        load_arrays(tmp_path / "x.npy", tmp_path / "frac.npy")
    np.save(tmp_path / "neg.npy", np.array([-1, 1, 2, 3]))
    with pytest.raises(DataError, match="labels must be >= 0"):
        load_arrays(tmp_path / "x.npy", tmp_path / "neg.npy")
    assert load_arrays(tmp_path / "x.npy", np.array([1, 1, 0, 0])).labels.tolist() == [1, 1, 0, 0]


def test_via_load_dataset(tmp_path, rng):
    np.save(tmp_path / "x.npy", rng.integers(0, 256, (4, 5, 5), dtype=np.uint8))
    np.save(tmp_path / "y.npy", np.arange(4))
    data = load_dataset("arrays", path=tmp_path / "x.npy", labels_path=tmp_path / "y.npy", resize=[8, 8], channels=3)
    assert data.images.shape == (4, 3, 8, 8) and data.images.dtype == torch.uint8
    assert data.meta["split"] == "train"
    with pytest.raises(DataError, match="needs a path"):
        load_dataset("arrays")
