"""Generated sets: toy functions and TF-Playground 2-D sets; digits from scikit-learn."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from layerlab.data import get_info, load_dataset
from layerlab.data.toy import toy_inputs, toy_targets, toy_weights
from layerlab.errors import DataError

NOISELESS = {"noise": 0.0}


def test_toy_functions_shapes_and_ranges():
    ds = load_dataset("toy-functions", normalize="none")
    assert ds.train.x.shape == (1000, 4) and ds.test.x.shape == (200, 4)
    assert ds.train.y.shape == (1000, 3) and ds.train.y.dtype == torch.float32
    assert ds.train.x.dtype == torch.float32
    assert ds.train.x.min() >= -2.5 and ds.train.x.max() <= 2.5
    assert ds.train.x.min() < -2.4 and ds.train.x.max() > 2.4  # uniform over the whole range
    assert get_info("toy-functions").target_names == ("linear", "max", "logsumexp")


def test_noiseless_targets_match_their_definitions():
    ds = load_dataset("toy-functions", normalize="none", options=NOISELESS)
    x = ds.train.x.double()
    w = torch.from_numpy(toy_weights(0))
    y = ds.train.y.double()
    assert torch.allclose(y[:, 0], (x @ w).sum(-1), atol=1e-4)  # linear: the 4-vector summed
    assert torch.allclose(y[:, 1], x.max(-1).values, atol=1e-6)
    assert torch.allclose(y[:, 2], torch.logsumexp(x @ w, -1), atol=1e-4)


def test_single_target_variants():
    full = load_dataset("toy-functions", normalize="none")
    for i, t in enumerate(("linear", "max", "logsumexp")):
        one = load_dataset(f"toy-functions/{t}", normalize="none")
        assert one.train.y.shape == (1000, 1) and get_info(f"toy-functions/{t}").output_size == 1
        assert torch.equal(one.train.x, full.train.x)
        assert torch.allclose(one.train.y[:, 0], full.train.y[:, i])


def test_noise_is_about_one_percent_multiplicative():
    clean = load_dataset("toy-functions", normalize="none", options=NOISELESS, train_size=5000)
    noisy = load_dataset("toy-functions", normalize="none", train_size=5000)
    assert torch.equal(clean.train.x, noisy.train.x)
    ratio = (noisy.train.y / clean.train.y - 1)[clean.train.y.abs() > 0.5]
    assert ratio.std().item() == pytest.approx(0.01, rel=0.1)
    assert abs(ratio.mean().item()) < 0.002


def test_toy_determinism_sizes_and_seeds():
    a = load_dataset("toy-functions", normalize="none", options={"n_train": 300, "n_test": 50})
    b = load_dataset("toy-functions", normalize="none", train_size=300, test_size=50)
    c = load_dataset("toy-functions", normalize="none", options={"seed": 1})
    d = load_dataset("toy-functions", normalize="none", options={"w_seed": 5, "noise": 0.0})
    assert len(a.train) == 300 and len(a.test) == 50
    assert torch.equal(a.train.y, b.train.y)
    base = load_dataset("toy-functions", normalize="none")
    assert torch.equal(base.train.x[:300], a.train.x)  # prefix-stable in n_train
    assert not torch.equal(base.train.x, c.train.x)
    assert torch.equal(base.train.x, d.train.x)  # w_seed changes W, not x
    w5 = torch.from_numpy(toy_weights(5))
    assert torch.allclose(d.train.y[:, 0].double(), (d.train.x.double() @ w5).sum(-1), atol=1e-4)
    assert not np.allclose(toy_weights(0), toy_weights(5))


def test_toy_targets_function_directly():
    x = toy_inputs(10, 0)
    w = np.eye(4)
    y = toy_targets(x, w)
    assert np.allclose(y[:, 0], x.sum(-1)) and np.allclose(y[:, 1], x.max(-1))
    assert np.allclose(y[:, 2], np.log(np.exp(x).sum(-1)))


@pytest.mark.parametrize("options,needle", [
    ({"nosie": 0.1}, "unknown option 'nosie' for data set 'toy-functions'; it takes: n_test, n_train, noise, seed, w_seed"),
    ({"noise": -0.5}, "The 'noise' option of toy-functions must be a float in the range [0, 1]"),
    ({"n_train": 2.5}, "The 'n_train' option of toy-functions must be an integer in the range [1, 1e+06]"),
    ({"seed": "x"}, "Got 'x' instead."),
])
def test_bad_options(options, needle):
    with pytest.raises(DataError) as e:
        load_dataset("toy-functions", options=options)
    assert needle in str(e.value)


def test_playground_rejects_w_seed():
    with pytest.raises(DataError, match="unknown option 'w_seed' for data set 'circle'"):
        load_dataset("circle", options={"w_seed": 1})


@pytest.mark.parametrize("name", ["circle", "xor", "gauss", "spiral"])
def test_playground_classification_sets(name):
    ds = load_dataset(name, normalize="none")
    assert ds.train.x.shape == (250, 2) and ds.train.y.shape == (250,)
    assert ds.train.y.dtype == torch.int64 and set(ds.train.y.tolist()) == {0, 1}
    assert not torch.equal(ds.train.x, ds.test.x)
    again = load_dataset(name, normalize="none")
    assert torch.equal(ds.train.x, again.train.x)
    big = load_dataset(name, train_size=1000, options={"noise": 0.3, "seed": 4})
    assert len(big.train) == 1000


def test_circle_labels_follow_radius_when_noiseless():
    ds = load_dataset("circle", normalize="none", train_size=1000)
    r = ds.train.x.norm(dim=1)
    assert torch.all(r[ds.train.y == 1] <= 2.5) and torch.all(r[ds.train.y == 0] >= 3.5)
    assert r.max() <= 5.0
    assert ds.stats()["class_balance"]["train"] == {"negative": 500, "positive": 500}


def test_xor_labels_follow_quadrants_when_noiseless():
    ds = load_dataset("xor", normalize="none")
    x, y = ds.train.x, ds.train.y
    assert torch.equal(y, (x[:, 0] * x[:, 1] >= 0).long())
    assert x.abs().min() >= 0.3  # the padding around the axes


def test_noise_flips_some_labels():
    clean = load_dataset("xor", normalize="none", train_size=2000)
    noisy = load_dataset("xor", normalize="none", train_size=2000, options={"noise": 0.5})
    wrong = (noisy.train.y != (noisy.train.x[:, 0] * noisy.train.x[:, 1] >= 0).long()).float().mean()
    assert 0.05 < wrong.item() < 0.5
    assert torch.equal(clean.train.y, (clean.train.x[:, 0] * clean.train.x[:, 1] >= 0).long())


def test_gauss_blobs_are_centred():
    ds = load_dataset("gauss", normalize="none", train_size=2000)
    assert torch.allclose(ds.train.x[ds.train.y == 1].mean(0), torch.tensor([2.0, 2.0]), atol=0.15)
    assert torch.allclose(ds.train.x[ds.train.y == 0].mean(0), torch.tensor([-2.0, -2.0]), atol=0.15)


def test_regression_playground_sets():
    plane = load_dataset("plane", normalize="none")
    assert plane.train.y.shape == (250, 1) and plane.train.y.dtype == torch.float32
    assert torch.allclose(plane.train.y[:, 0], plane.train.x.sum(1) / 10, atol=1e-6)
    mg = load_dataset("multi-gauss", normalize="none")
    assert mg.train.y.min() >= -1 and mg.train.y.max() <= 1 and mg.train.y.abs().max() > 0.5
    near = (mg.train.x - torch.tensor([-4.0, 2.5])).norm(dim=1) < 0.3
    if near.any():
        assert torch.all(mg.train.y[near, 0] > 0.8)
    assert set(mg.stats()["target_mean"]["train"]) == {"y"}


def test_feature_normalisation_uses_train_range():
    ds = load_dataset("spiral")  # "-1..1": generated sets have no pixel_range; train min/max
    x = ds.prepare(ds.train.x)
    assert x.min().item() == pytest.approx(-1.0) and x.max().item() == pytest.approx(1.0)
    st = load_dataset("toy-functions", normalize="standardize")
    z = st.prepare(st.train.x)
    assert torch.allclose(z.mean(0), torch.zeros(4), atol=1e-5)
    assert torch.allclose(z.std(0, correction=0), torch.ones(4), atol=1e-4)


def test_digits_fixed_split():
    ds = load_dataset("digits", normalize="0..1")
    assert len(ds.train) == 1438 and len(ds.test) == 359
    assert ds.train.x.shape == (1438, 1, 8, 8) and ds.train.x.dtype == torch.uint8
    assert ds.train.x.max() == 16
    x = ds.prepare(ds.train.x)
    assert x.min() == 0.0 and x.max() == 1.0
    from sklearn.datasets import load_digits
    order = np.random.default_rng(0).permutation(1797)
    assert np.array_equal(ds.test.y.numpy(), load_digits().target[order[1438:]])
    assert sum(ds.stats()["class_balance"]["train"].values()) == 1438
