"""Convolution-lab arithmetic: every number comes from the engine's own layers."""
import numpy as np
import pytest

from nnviz.engine import convmath as cm

X = [[3, 0, 1, 2, 7, 4], [1, 5, 8, 9, 3, 1], [2, 7, 2, 5, 1, 3],
     [0, 1, 3, 1, 7, 8], [4, 2, 1, 6, 2, 8], [2, 4, 5, 2, 3, 9]]
VERTICAL = [[1, 0, -1]] * 3
EXPECTED = [[-5, -4, 0, 8], [-10, -2, 2, 3], [0, -2, -4, -7], [-3, -2, -3, -16]]
POOL = [[1, 3, 2, 1], [2, 9, 1, 1], [1, 3, 2, 3], [5, 6, 1, 2]]


def test_worked_example_cross_correlation():
    y = cm.conv2d(X, VERTICAL)
    np.testing.assert_array_equal(y, EXPECTED)
    np.testing.assert_array_equal(cm.apply_to_image(np.array(X, float), VERTICAL), EXPECTED)


@pytest.mark.parametrize("layer, run, shape", [
    ("Conv2D", lambda: cm.conv2d(X, VERTICAL, stride=2, padding=1), (1, 1, 6, 6)),
    ("ConvTranspose2D", lambda: cm.conv_transpose2d(cm.TRANSPOSED_INPUT, cm.TRANSPOSED_KERNEL, 2, 1),
     (1, 1, 3, 3))])
def test_arithmetic_runs_the_engine_layer(monkeypatch, layer, run, shape):
    from nnviz.engine.layers import conv
    calls = []
    cls = getattr(conv, layer)
    orig = cls.forward

    def spy(self, x, train=False):
        calls.append(x.shape)
        return orig(self, x, train)

    monkeypatch.setattr(cls, "forward", spy)
    run()
    assert calls == [shape]


def test_pooling_example():
    np.testing.assert_array_equal(cm.pool2d(POOL, 2, 2, "max"), [[9, 2], [6, 3]])
    np.testing.assert_allclose(cm.pool2d(POOL, 2, 2, "avg"), [[3.75, 1.25], [3.75, 2]])
    assert cm.pool_window(POOL, 2, 2, 0, 0) == [1, 3, 2, 9]
    with pytest.raises(ValueError):
        cm.pool2d(POOL, 2, 2, "median")


def test_output_size_stride_that_does_not_fit():
    value, floor, fits, unused = cm.output_size(7, 3, 0, 3)
    assert value == pytest.approx(2.3333, abs=1e-3)
    assert (floor, fits, unused) == (2, False, 1)
    assert cm.output_size(6, 3, 0, 1) == (4.0, 4, True, 0)
    assert cm.output_size(32, 5, 2, 1)[:3] == (32.0, 32, True)
    # the engine agrees: it floors to 2x2 ...
    grid = np.arange(49.0).reshape(7, 7)
    y = cm.conv2d(grid, np.ones((3, 3)), stride=3)
    assert y.shape == (2, 2)
    # ... and the last row and column are ignored: changing them changes nothing
    g2 = grid.copy()
    g2[6, :] = 1000
    g2[:, 6] = -1000
    np.testing.assert_array_equal(cm.conv2d(g2, np.ones((3, 3)), stride=3), y)
    formula, warning = cm.size_explanation(7, 3, 0, 3)
    assert "(7 \u2212 3 + 2\u00b70) / 3 + 1 = 2.33 \u2192 2" in formula
    assert "does not fit" in warning and "last row" in warning and "ignored" in warning
    assert cm.size_explanation(6, 3, 0, 1)[1] == ""


def test_parameter_counts():
    assert cm.param_count(3, 10, 5) == 760
    a = cm.conv_layer_summary(3, 10, 5, stride=1, padding=2, height=32, width=32)
    assert a["output_shape"] == (32, 32, 10) and a["params"] == 760 == a["formula"]
    b = cm.conv_layer_summary(3, 10, 5, stride=1, padding=2, height=128, width=128)
    assert b["output_shape"] == (128, 128, 10) and b["params"] == 760
    assert (a["weights"], a["biases"]) == (750, 10)


@pytest.mark.parametrize("stride,padding", [(1, 0), (1, 1), (2, 1), (3, 0), (2, 2)])
@pytest.mark.parametrize("flip", [False, True])
def test_dot_product_terms_match_engine_every_cell(stride, padding, flip):
    kernel = np.array([[1, 2, -1], [0, 3, -2], [4, -1, 1]], float)
    y = cm.conv2d(X, kernel, stride, padding, flip=flip)
    for r in range(y.shape[0]):
        for c in range(y.shape[1]):
            terms, total = cm.dot_product_terms(X, kernel, stride, padding, r, c, flip=flip)
            assert len(terms) == 9
            assert total == pytest.approx(y[r, c])


def test_format_dot_worked_cell():
    terms, total = cm.dot_product_terms(X, VERTICAL, 1, 0, 0, 0)
    assert total == -5
    assert cm.format_dot(terms, total) == (
        "3\u00b71 + 0\u00b70 + 1\u00b7(\u22121) + 1\u00b71 + 5\u00b70 + 8\u00b7(\u22121) + "
        "2\u00b71 + 7\u00b70 + 2\u00b7(\u22121) = \u22125")
    assert cm.format_number(3.75) == "3.75" and cm.format_number(-2.0) == "\u22122"


def test_padding_window_reads_zeros():
    terms, total = cm.dot_product_terms(X, VERTICAL, 1, 1, 0, 0)
    assert [a for a, _ in terms][:4] == [0, 0, 0, 0]
    assert total == pytest.approx(cm.conv2d(X, VERTICAL, 1, 1)[0, 0])


def test_flip_is_convolution():
    k = np.array([[1, 2, 0], [0, -1, 3], [5, 0, -2]], float)
    conv = cm.conv2d(X, k, flip=True)
    np.testing.assert_array_equal(conv, cm.conv2d(X, k[::-1, ::-1]))
    assert not np.array_equal(conv, cm.conv2d(X, k))
    sym = np.array(cm.flipped([[0, 1, 0], [1, -4, 1], [0, 1, 0]]))
    np.testing.assert_array_equal(cm.conv2d(X, sym, flip=True), cm.conv2d(X, sym))


def test_kernel_too_large_is_refused_by_engine():
    with pytest.raises(cm.LayerError):
        cm.conv2d(np.ones((3, 3)), np.ones((5, 5)))
    value, floor, fits, unused = cm.output_size(3, 5, 0, 1)
    assert floor == 0 and not fits
    assert "larger" in cm.size_explanation(3, 5, 0, 1)[1]


def test_conv2d_multi_matches_single_channel():
    w = np.stack([np.array(VERTICAL, float), np.array(VERTICAL, float).T])[:, None]
    maps = cm.conv2d_multi(np.array(X, float), w)
    np.testing.assert_array_equal(maps[0], EXPECTED)
    np.testing.assert_array_equal(maps[1], cm.conv2d(X, np.array(VERTICAL, float).T))


# ---- transposed convolution (lesson 6) ----------------------------------------------------
def test_transposed_size_of_the_notes_figure():
    assert cm.transposed_size(3, 3, 1, 2) == 5          # (3 - 1)*2 - 2*1 + 3
    assert cm.transposed_size(2, 2, 0, 2) == 4
    assert cm.transposed_formula(3, 3, 1, 2).endswith("(3 \u2212 1)\u00b72 \u2212 2\u00b71 + 3 = 5")
    # the convolution it mirrors: 5x5 -> 3x3 with the same F, S, P
    assert cm.output_size(5, 3, 1, 2)[1:3] == (3, True)


def test_transposed_steps_by_hand():
    # stride 2, 2x2 ones: every input value becomes a 2x2 block (nearest-neighbour upsampling)
    steps = cm.transposed_steps([[1, 2], [3, 4]], np.ones((2, 2)), stride=2)
    assert len(steps) == 4 and (steps[1].row, steps[1].col, steps[1].top, steps[1].left) == (0, 1, 0, 2)
    np.testing.assert_array_equal(steps[-1].running, [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])
    np.testing.assert_array_equal(steps[0].running, [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    # stride 1: overlapping contributions add up
    steps = cm.transposed_steps([[1, 2], [3, 4]], np.ones((2, 2)))
    np.testing.assert_array_equal(steps[-1].running, [[1, 3, 2], [4, 10, 6], [3, 7, 4]])
    np.testing.assert_array_equal(steps[2].contribution, [[3, 3], [3, 3]])
    # the notes' figure: 3x3 -> 5x5, the 7x7 sum cropped by one on each side
    steps = cm.transposed_steps(cm.TRANSPOSED_INPUT, cm.TRANSPOSED_KERNEL, stride=2, padding=1)
    assert len(steps) == 9 and steps[-1].full.shape == (7, 7) and steps[-1].running.shape == (5, 5)
    out = steps[-1].running
    assert (out[0, 0], out[0, 1], out[1, 1], out[2, 2]) == (4, 6, 7, 4)   # 1*4; 1*2 + 2*2; 1+2+3+1; 1*4
    with pytest.raises(ValueError, match="crops the whole"):
        cm.transposed_steps([[1]], [[1]], stride=1, padding=1)


def test_transposed_steps_equal_engine_and_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    for n, f, s, p in ((3, 3, 2, 1), (4, 3, 1, 0), (3, 4, 3, 1), (2, 5, 2, 2)):
        x, k = rng.normal(size=(n, n)), rng.normal(size=(f, f))
        engine = cm.conv_transpose2d(x, k, stride=s, padding=p)
        steps = cm.transposed_steps(x, k, stride=s, padding=p)
        ref = torch.nn.functional.conv_transpose2d(torch.tensor(x)[None, None], torch.tensor(k)[None, None],
                                                   stride=s, padding=p)[0, 0].numpy()
        assert engine.shape == (cm.transposed_size(n, f, p, s),) * 2
        np.testing.assert_allclose(engine, ref, atol=1e-12)
        np.testing.assert_allclose(steps[-1].running, ref, atol=1e-12)


# ---- connectivity (lesson 8) --------------------------------------------------------------
@pytest.mark.parametrize("n, k, counts", [(5, 3, (25, 13, 3)), (6, 3, (36, 16, 3)), (5, 5, (25, 19, 5)),
                                          (5, 9, (25, 25, 9)), (4, 1, (16, 4, 1))])
def test_connectivity_counts_by_hand(n, k, counts):
    for kind, want in zip(cm.CONNECTIVITY_KINDS, counts):
        ids = cm.connection_ids(n, k, kind)
        assert cm.connectivity_count(n, k, kind) == want
        assert len(np.unique(ids[ids >= 0])) == want      # the drawing has as many colours
    assert cm.connectivity_formula(5, 3, "sparse") == "n\u00b7k \u2212 r(r + 1) = 5\u00b73 \u2212 1\u00b72 = 13"
    # sparse and tied draw the same edges: 3n - 2 of them for k = 3
    assert np.array_equal(cm.connection_ids(n, k, "sparse") >= 0, cm.connection_ids(n, k, "tied") >= 0)


def test_connectivity_refuses_bad_fields():
    for n, k in ((5, 4), (5, 11), (5, 0)):
        with pytest.raises(ValueError, match="receptive field"):
            cm.connection_ids(n, k, "dense")
    with pytest.raises(ValueError, match="kind"):
        cm.connectivity_count(5, 3, "banded")


def test_tied_layer_is_a_1d_convolution():
    w = cm.tied_matrix([1, 2, 3], 4)
    np.testing.assert_array_equal(w, [[2, 3, 0, 0], [1, 2, 3, 0], [0, 1, 2, 3], [0, 0, 1, 2]])
    x = np.array([1.0, 2, 3, 4])
    np.testing.assert_array_equal(w @ x, [8, 14, 20, 11])
    np.testing.assert_array_equal(cm.conv1d(x, [1, 2, 3]), [8, 14, 20, 11])


def test_conv1d_equals_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x, w = rng.normal(size=7), rng.normal(size=5)
    ref = torch.nn.functional.conv1d(torch.tensor(x)[None, None], torch.tensor(w)[None, None], padding=2)
    np.testing.assert_allclose(cm.conv1d(x, w), ref[0, 0].numpy(), atol=1e-12)
    np.testing.assert_allclose(cm.tied_matrix(w, 7) @ x, ref[0, 0].numpy(), atol=1e-12)
