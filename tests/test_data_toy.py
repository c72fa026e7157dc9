"""Toy sets and the Dataset API (batches, subset, describe)."""

import json

import numpy as np
import pytest

from nnviz.data import TOY_NAMES, Dataset, DatasetError, load_dataset, make_toy


@pytest.mark.parametrize("name", TOY_NAMES)
def test_toy_shapes_and_dtypes(name):
    d = make_toy(name, n=300, seed=3)
    assert d.x_train.shape == (150, 2) and d.x_test.shape == (150, 2)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert d.x_train.flags.c_contiguous and d.x_test.flags.c_contiguous
    assert d.num_classes == 2 and d.input_shape == (2,)
    assert np.abs(d.x_train).max() < 7.0
    assert set(np.unique(d.y_train)) == {0, 1}
    assert d.normalization == {"mean": [0.0, 0.0], "std": [1.0, 1.0]}
    assert d.source == "generated"


@pytest.mark.parametrize("name", TOY_NAMES)
def test_toy_deterministic_by_seed(name):
    a, b, c = make_toy(name, seed=5), make_toy(name, seed=5), make_toy(name, seed=6)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_train, c.x_train)


@pytest.mark.parametrize("name", ["spiral", "gauss", "circle"])
def test_toy_multiclass(name):
    d = make_toy(name, n=600, classes=4)
    assert d.num_classes == 4
    assert set(np.unique(np.concatenate([d.y_train, d.y_test]))) == {0, 1, 2, 3}


@pytest.mark.parametrize("name", ["xor", "moons"])
def test_toy_multiclass_refused(name):
    with pytest.raises(DatasetError, match="classes"):
        make_toy(name, classes=3)


@pytest.mark.parametrize("kw,word", [({"n": 1}, "'n'"), ({"noise": -1}, "noise"),
                                     ({"test_fraction": 1.0}, "test_fraction"),
                                     ({"classes": 1}, "classes")])
def test_toy_bad_parameters(kw, word):
    with pytest.raises(DatasetError, match=word):
        make_toy("spiral", **kw)
    with pytest.raises(DatasetError, match="name"):
        make_toy("donut")


def test_load_dataset_toy_kwargs():
    d = load_dataset("moons", n=100, noise=0.05, seed=1, test_fraction=0.2)
    assert len(d.y_train) == 80 and len(d.y_test) == 20
    with pytest.raises(DatasetError, match="bogus"):
        load_dataset("moons", bogus=1)


def _mlp_accuracy(d, hidden=32, steps=1500, lr=0.01, seed=0):
    """Tiny numpy 2-hidden-layer tanh MLP, full-batch Adam: test accuracy."""
    rng = np.random.default_rng(seed)
    sizes = [2, hidden, hidden, d.num_classes]
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        params += [rng.normal(0, 1 / np.sqrt(a), (a, b)), np.zeros(b)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    x, y = d.x_train.astype(np.float64), d.y_train
    onehot = np.eye(d.num_classes)[y]

    def forward(x):
        h1 = np.tanh(x @ params[0] + params[1])
        h2 = np.tanh(h1 @ params[2] + params[3])
        return h1, h2, h2 @ params[4] + params[5]

    for t in range(1, steps + 1):
        h1, h2, z = forward(x)
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        dz = (p - onehot) / len(y)
        dh2 = dz @ params[4].T * (1 - h2 ** 2)
        dh1 = dh2 @ params[2].T * (1 - h1 ** 2)
        grads = [x.T @ dh1, dh1.sum(0), h1.T @ dh2, dh2.sum(0), h2.T @ dz, dz.sum(0)]
        for i, g in enumerate(grads):
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.999 * v[i] + 0.001 * g * g
            params[i] -= lr * (m[i] / (1 - 0.9 ** t)) / (np.sqrt(v[i] / (1 - 0.999 ** t)) + 1e-8)
    return float((forward(d.x_test.astype(np.float64))[2].argmax(1) == d.y_test).mean())


def _linear_accuracy(d):
    """Best linear separator by least squares on one-hot targets (plus bias)."""
    xa = np.c_[d.x_train, np.ones(len(d.x_train))]
    w, *_ = np.linalg.lstsq(xa, np.eye(d.num_classes)[d.y_train], rcond=None)
    return float(((np.c_[d.x_test, np.ones(len(d.x_test))] @ w).argmax(1) == d.y_test).mean())


def test_spiral_learnable_and_not_linear():
    d = make_toy("spiral")
    assert _mlp_accuracy(d) >= 0.95
    assert _linear_accuracy(d) < 0.75


def _toy_dataset(n=10):
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    return Dataset("t", x, np.arange(n) % 2, x[:3].copy(), np.array([0, 1, 0]), ["a", "b"],
                   {"mean": [0.0, 0.0], "std": [1.0, 1.0]}, "generated")


def test_batches_reproducible_and_complete():
    d = make_toy("circle", n=203, test_fraction=0.0)
    first = [yb.copy() for _, yb in d.batches(16, seed=4, epoch=2)]
    again = [yb.copy() for _, yb in d.batches(16, seed=4, epoch=2)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    sizes = [len(yb) for _, yb in d.batches(16, seed=4, epoch=2)]
    assert sum(sizes) == 203 and sizes[-1] == 203 % 16 and len(sizes) == 13
    order = np.random.default_rng([4, 2]).permutation(203)
    xs = np.concatenate([xb for xb, _ in d.batches(16, seed=4, epoch=2)])
    assert np.array_equal(xs, d.x_train[order])
    other = np.concatenate([yb for _, yb in d.batches(16, seed=4, epoch=3)])
    assert np.array_equal(np.sort(np.concatenate(first)), np.sort(other))


def test_batches_each_sample_once_and_unshuffled():
    d = _toy_dataset(10)
    seen = np.concatenate([xb[:, 0] for xb, _ in d.batches(3, seed=1)])
    assert sorted(seen.tolist()) == sorted(d.x_train[:, 0].tolist())
    plain = list(d.batches(4, shuffle=False))
    assert [len(y) for _, y in plain] == [4, 4, 2]
    assert np.array_equal(np.concatenate([x for x, _ in plain]), d.x_train)
    test = list(d.batches(2, split="test", shuffle=False))
    assert sum(len(y) for _, y in test) == 3
    with pytest.raises(DatasetError, match="split"):
        next(d.batches(2, split="valid"))
    with pytest.raises(DatasetError, match="batch_size"):
        next(d.batches(0))


def test_subset_and_describe():
    d = make_toy("xor", n=100)
    s = d.subset(10, 5)
    assert len(s.y_train) == 10 and len(s.y_test) == 5
    assert np.array_equal(s.x_train, d.x_train[:10])
    desc = s.describe()
    json.dumps(desc)
    assert desc["name"] == "xor" and desc["input_shape"] == [2]
    assert desc["n_train"] == 10 and desc["n_test"] == 5 and desc["class_names"] == ["class 0", "class 1"]
    assert desc["source"] == "generated" and desc["normalization"]["std"] == [1.0, 1.0]


def test_dataset_validates_labels():
    x = np.zeros((3, 2), np.float32)
    with pytest.raises(DatasetError, match="labels"):
        Dataset("bad", x, np.array([0, 1, 2]), x, np.array([0, 0, 0]), ["a", "b"], {}, "somefile.h5")
    with pytest.raises(DatasetError, match="somefile.h5"):
        Dataset("bad", x, np.array([0, 1]), x, np.array([0, 0, 0]), ["a", "b"], {}, "somefile.h5")
