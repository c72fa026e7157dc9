"""nnviz.explain.batchnorm: per-channel batch statistics of a BatchNorm layer against numpy
by hand and torch.nn.BatchNorm2d / BatchNorm1d (train mode, same momentum convention), and
the model left exactly as it was."""
import numpy as np
import pytest

from nnviz.engine import BatchNorm, Conv2D, Dense, Dropout, Flatten, LayerError, ReLU, Sequential
from nnviz.explain.batchnorm import batchnorm_layers, batchnorm_stats, channel_histograms


def conv_bn_model(seed=0):
    m = Sequential([Conv2D(3, 3), BatchNorm(momentum=0.2), ReLU(), Dropout(0.3), Conv2D(4, 3),
                    BatchNorm(), Flatten(), Dense(5), BatchNorm(), Dense(2)], (2, 7, 7), seed=seed)
    rng = np.random.default_rng(seed + 1)
    for l in m.layers:        # non-trivial gamma, beta and running statistics
        if isinstance(l, BatchNorm):
            n = l.params["weight"].shape[0]
            l.params["weight"][...] = 1 + 0.3 * rng.standard_normal(n)
            l.params["bias"][...] = rng.standard_normal(n)
            l.buffers["running_mean"][...] = rng.standard_normal(n)
            l.buffers["running_var"][...] = 1 + rng.random(n)
    return m


def batch(n=6, seed=3):
    return (1.5 + 2 * np.random.default_rng(seed).standard_normal((n, 2, 7, 7))).astype(np.float32)


def test_lists_the_batchnorm_layers():
    assert batchnorm_layers(conv_bn_model()) == [(1, "1 BatchNorm"), (5, "5 BatchNorm"),
                                                 (8, "8 BatchNorm")]


def test_first_layer_stats_by_hand_with_numpy():
    m = conv_bn_model()
    x = batch()
    h = m.layers[0].forward(m.B.asarray(x, np.float32), False)     # the convolution's output
    bn = m.layers[1]
    old_mean = bn.buffers["running_mean"].copy()
    old_var = bn.buffers["running_var"].copy()
    s = batchnorm_stats(m, x, 1, bins=10)
    hd = np.asarray(h, np.float64)
    n, c, hh, ww = hd.shape
    assert (s.batch, s.per_channel, s.channels, s.input_shape) == (6, n * hh * ww, 3, (3, 5, 5))
    # the mean and (biased) variance over N, H and W, one channel at a time
    for k in range(c):
        vals = [hd[i, k, r, q] for i in range(n) for r in range(hh) for q in range(ww)]
        mu = sum(vals) / len(vals)
        var = sum((v - mu) ** 2 for v in vals) / len(vals)
        assert s.mean[k] == pytest.approx(mu, rel=1e-5, abs=1e-6)
        assert s.var[k] == pytest.approx(var, rel=1e-5)
        # running update with momentum 0.2 and the unbiased variance (PyTorch's convention)
        assert s.running_mean_next[k] == pytest.approx(0.8 * old_mean[k] + 0.2 * mu, rel=1e-5, abs=1e-6)
        assert s.running_var_next[k] == pytest.approx(
            0.8 * old_var[k] + 0.2 * var * len(vals) / (len(vals) - 1), rel=1e-5)
        # histograms: the same bins as numpy.histogram on the channel's own range
        xhat = (np.asarray(vals) - mu) / np.sqrt(var + bn.eps)
        y = bn.params["weight"][k] * xhat + bn.params["bias"][k]
        for hist, v in ((s.hist_in, vals), (s.hist_norm, xhat), (s.hist_out, y)):
            want, edges = np.histogram(v, bins=10, range=(min(v), max(v)))
            assert np.allclose(hist.edges[k], edges, rtol=1e-5, atol=1e-6)
            assert hist.counts[k].tolist() == want.tolist()
        assert s.norm_mean[k] == pytest.approx(0, abs=1e-5)
        assert s.norm_var[k] == pytest.approx(var / (var + bn.eps), rel=1e-5)
    assert np.array_equal(s.running_mean, old_mean) and np.array_equal(s.running_var, old_var)


def test_leaves_the_model_as_it_was_and_training_unchanged():
    """Running statistics restored, dropout's generator untouched: the same training after."""
    a, b = conv_bn_model(), conv_bn_model()
    x = batch()
    y = np.array([0, 1, 0, 1, 1, 0])
    before = a.state()
    for i, _ in batchnorm_layers(a):
        batchnorm_stats(a, x, i)
    after = a.state()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    from nnviz.engine import get_loss
    for m in (a, b):                     # one training forward each: same dropout mask
        loss = get_loss("softmax_xent", m.B)
        m._loss = loss.forward(m.forward(x, train=True), y)
    assert a._loss == b._loss
    assert all(np.array_equal(p, q) for p, q in zip(a.state().values(), b.state().values()))


def test_dense_batchnorm_statistics_are_over_the_batch():
    m = conv_bn_model()
    x = batch(n=4)
    s = batchnorm_stats(m, x, 8, bins=5)
    assert (s.batch, s.per_channel, s.channels, s.input_shape) == (4, 4, 5, (5,))
    assert s.hist_in.counts.sum(axis=1).tolist() == [4] * 5


@pytest.mark.parametrize("index, match", [(0, "layer 0 is not a BatchNorm layer.*1, 5, 8"),
                                          (42, "layer 42 is not a BatchNorm")])
def test_bad_layer_is_named(index, match):
    with pytest.raises(LayerError, match=match):
        batchnorm_stats(conv_bn_model(), batch(), index)


def test_wrong_input_shape_is_refused():
    with pytest.raises(LayerError, match=r"expects \(2, 7, 7\)"):
        batchnorm_stats(conv_bn_model(), np.zeros((2, 1, 7, 7), np.float32), 1)


def test_channel_histograms_match_numpy_and_a_constant_channel():
    rng = np.random.default_rng(0)
    rows = np.stack([rng.standard_normal(500), rng.uniform(-3, 9, 500), np.full(500, 2.0)])
    h = channel_histograms(rows, bins=17)
    for k in range(2):
        want, edges = np.histogram(rows[k], bins=h.edges[k])
        assert h.counts[k].tolist() == want.tolist()
        assert h.edges[k][0] == rows[k].min() and h.edges[k][-1] == pytest.approx(rows[k].max())
    assert h.counts[2].sum() == 500 and h.edges[2][0] < 2 < h.edges[2][-1]
    # a diverged run: NaN and inf are left out, an all-NaN channel has empty bins
    rows[0, :10] = np.nan
    rows[1, 0] = np.inf
    rows[2] = np.nan
    h = channel_histograms(rows, bins=17)
    assert h.counts.sum(axis=1).tolist() == [490, 499, 0] and np.isfinite(h.edges).all()
    assert h.counts[0].tolist() == np.histogram(rows[0, 10:], bins=17)[0].tolist()


@pytest.mark.parametrize("dense", [False, True])
def test_against_torch_batchnorm_in_train_mode(dense):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    rng = np.random.default_rng(5)
    shape = (6,) if dense else (4, 5, 3)
    m = Sequential([BatchNorm(momentum=0.1, eps=1e-5), Flatten(), Dense(2)], shape)
    bn = m.layers[0]
    c = shape[0]
    mod = nn.BatchNorm1d(c) if dense else nn.BatchNorm2d(c)     # momentum 0.1, eps 1e-5
    gamma, beta = 1 + 0.3 * rng.standard_normal(c), rng.standard_normal(c)
    rm, rv = rng.standard_normal(c), 1 + rng.random(c)
    for arr, src in ((bn.params["weight"], gamma), (bn.params["bias"], beta),
                     (bn.buffers["running_mean"], rm), (bn.buffers["running_var"], rv)):
        arr[...] = src
    with torch.no_grad():
        mod.weight.copy_(torch.tensor(gamma)), mod.bias.copy_(torch.tensor(beta))
        mod.running_mean.copy_(torch.tensor(rm)), mod.running_var.copy_(torch.tensor(rv))
    x = (2 + 3 * rng.standard_normal((8,) + shape)).astype(np.float32)
    s = batchnorm_stats(m, x, 0, bins=12)
    mod.train()
    xt = torch.tensor(x)
    with torch.no_grad():
        yt = mod(xt).numpy()
        # torch's x̂: the same module without gamma/beta, on a fresh copy of the statistics
        plain = (nn.BatchNorm1d if dense else nn.BatchNorm2d)(c, affine=False).train()
        xhat = plain(xt).numpy()
    axes = (0,) if dense else (0, 2, 3)
    assert np.allclose(s.mean, x.astype(np.float64).mean(axis=axes), rtol=1e-6)
    assert np.allclose(s.var, torch.var(xt.double(), dim=axes, unbiased=False).numpy(), rtol=1e-6)
    assert np.allclose(s.running_mean, rm, rtol=1e-6) and np.allclose(s.running_var, rv, rtol=1e-6)
    assert np.allclose(s.running_mean_next, mod.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    assert np.allclose(s.running_var_next, mod.running_var.numpy(), rtol=1e-5, atol=1e-6)
    for hist, want in ((s.hist_norm, xhat), (s.hist_out, yt)):
        rows = want.T if dense else np.moveaxis(want, 1, 0).reshape(c, -1)
        assert np.allclose(hist.edges[:, 0], rows.min(axis=1), rtol=1e-4, atol=1e-5)
        assert np.allclose(hist.edges[:, -1], rows.max(axis=1), rtol=1e-4, atol=1e-5)
        assert hist.counts.sum(axis=1).tolist() == [rows.shape[1]] * c
    # the layer's own buffers are back where they were
    assert np.allclose(bn.buffers["running_mean"], rm) and np.allclose(bn.buffers["running_var"], rv)
