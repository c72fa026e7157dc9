"""Finite-difference gradient checks for every layer and loss of the engine.

Models are built in float64; the scalar is a random linear functional of the
output, sum(r * y), so every output element contributes to the gradient.
"""
import numba
import numpy as np
import pytest

from nnviz.engine import (
    MSE,
    Abs,
    AvgPool2D,
    BatchNorm,
    BCEWithLogits,
    Conv2D,
    ConvTranspose2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Residual,
    Sequential,
    Sigmoid,
    SoftmaxCrossEntropy,
    Tanh,
)


@pytest.fixture(autouse=True, scope="module")
def _one_numba_thread():
    # Thousands of tiny forward passes: with several threads every parallel
    # kernel launch pays a thread-team barrier (milliseconds on a busy machine).
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(old)


EPS = 1e-6
RTOL = 1e-5
ATOL = 1e-8


def numeric_grad(f, a):
    """Central differences of the scalar f() w.r.t. the array a, perturbed in place."""
    g = np.zeros_like(a)
    flat, gflat = a.reshape(-1), g.reshape(-1)
    assert np.shares_memory(flat, a)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + EPS
        fp = f()
        flat[i] = old - EPS
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * EPS)
    return g


def assert_grad_close(analytic, numeric, what):
    assert analytic is not None, f"{what}: no gradient"
    assert analytic.shape == numeric.shape, f"{what}: shape {analytic.shape} != {numeric.shape}"
    scale = max(1.0, float(np.abs(numeric).max()))
    np.testing.assert_allclose(analytic, numeric, rtol=RTOL, atol=ATOL * scale, err_msg=what)


def gradcheck(layers, input_shape, x=None, batch=2, train=False, seed=0, prepare=None,
              before_forward=None):
    """Check d(sum(r*y))/dx and every parameter gradient against central differences."""
    model = Sequential(layers, input_shape, seed=seed, dtype=np.float64)
    rng = np.random.default_rng(seed + 100)
    if prepare is not None:
        prepare(model, rng)
    if x is None:
        x = rng.standard_normal((batch,) + tuple(input_shape))
    x = np.ascontiguousarray(x, dtype=np.float64)

    def run(inp):
        if before_forward is not None:
            before_forward(model)
        return model.forward(inp, train=train)

    y = run(x)
    assert y.dtype == np.float64
    r = rng.standard_normal(y.shape)
    gx = model.backward(r.copy())
    grads = [None if g is None else np.array(g, copy=True) for g in model.gradients()]

    def f():
        return float(np.sum(r * run(x)))

    assert_grad_close(gx, numeric_grad(f, x), "input gradient")
    names = [n for n, _ in model.named_parameters()]
    for name, p, g in zip(names, model.parameters(), grads):
        assert_grad_close(g, numeric_grad(f, p), f"gradient of {name}")
    return model, x, gx


def away_from_zero(rng, shape, margin=0.1):
    u = rng.standard_normal(shape)
    return np.sign(u) * (margin + np.abs(u))


def distinct(rng, shape):
    """Values with pairwise gaps of 0.1 >> EPS, so max-pool's argmax never flips."""
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) - n / 2) * 0.1


# ---- parametrised layers ------------------------------------------------------
def test_dense():
    gradcheck([Dense(4)], (5,), batch=3)


def test_dense_no_bias_stack():
    model, _, _ = gradcheck([Dense(6, bias=False), Dense(3)], (4,), batch=2)
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "1.weight", "1.bias"]


@pytest.mark.parametrize("out_c,kernel,stride,padding,hw", [
    (3, 3, 1, 0, (6, 6)),
    (2, 3, 2, 1, (7, 7)),
    (2, 3, 3, 0, (7, 7)),            # stride leaves a border unused
    (2, (2, 3), (1, 2), (1, 0), (6, 7)),   # non-square kernel and stride
    (3, (3, 1), (2, 1), (0, 2), (7, 5)),
    (2, 5, 1, 2, (5, 5)),
    (1, 1, 2, 0, (5, 6)),
])
def test_conv2d(out_c, kernel, stride, padding, hw):
    gradcheck([Conv2D(out_c, kernel, stride=stride, padding=padding)], (2,) + hw, batch=2)


def test_conv2d_no_bias():
    model, _, _ = gradcheck([Conv2D(2, 3, padding=1, bias=False)], (2, 4, 5))
    assert [n for n, _ in model.named_parameters()] == ["0.weight"]


@pytest.mark.parametrize("out_c,kernel,stride,padding,hw", [
    (2, 3, 1, 0, (3, 3)),
    (3, 3, 2, 1, (3, 4)),
    (2, 2, 2, 0, (3, 3)),
    (2, (3, 2), (2, 1), (1, 0), (3, 4)),
    (1, 4, 3, 1, (2, 3)),
])
def test_conv_transpose2d(out_c, kernel, stride, padding, hw):
    gradcheck([ConvTranspose2D(out_c, kernel, stride=stride, padding=padding)], (2,) + hw)


@pytest.mark.parametrize("kernel,stride,hw", [
    (2, None, (6, 6)), (2, None, (5, 7)), (3, 2, (7, 7)), (2, 1, (5, 4)), ((2, 3), (1, 2), (6, 7)), (3, 3, (7, 8)),
])
def test_maxpool2d(kernel, stride, hw):
    rng = np.random.default_rng(1)
    shape = (2, 3) + hw
    gradcheck([MaxPool2D(kernel, stride)], shape[1:], x=distinct(rng, shape))


@pytest.mark.parametrize("kernel,stride,hw", [
    (2, None, (6, 6)), (2, None, (5, 7)), (3, 2, (7, 7)), (2, 3, (8, 7)), (3, 1, (5, 6)), ((2, 3), (3, 1), (7, 6)),
])
def test_avgpool2d(kernel, stride, hw):
    gradcheck([AvgPool2D(kernel, stride)], (2,) + hw)


@pytest.mark.parametrize("hw", [(1, 1), (3, 4), (5, 5)])
def test_global_avgpool2d(hw):
    model, x, _ = gradcheck([GlobalAvgPool2D()], (3,) + hw, batch=2)
    assert model.output_shape == (3,)
    np.testing.assert_allclose(model.forward(x), x.mean(axis=(2, 3)), rtol=1e-12)


def test_global_avgpool2d_after_conv_before_dense():
    gradcheck([Conv2D(3, 3, padding=1), ReLU(), GlobalAvgPool2D(), Dense(2)], (2, 4, 5))


def test_flatten_between_conv_and_dense():
    gradcheck([Conv2D(2, 3), Flatten(), Dense(3)], (2, 5, 4))


def test_flatten_alone_is_reshape():
    model, x, gx = gradcheck([Flatten()], (2, 3, 4))
    assert model.output_shape == (24,)


# ---- activations ------------------------------------------------------------
@pytest.mark.parametrize("make", [ReLU, lambda: LeakyReLU(0.1), LeakyReLU, Abs, Sigmoid, Tanh],
                         ids=["ReLU", "LeakyReLU0.1", "LeakyReLU", "Abs", "Sigmoid", "Tanh"])
@pytest.mark.parametrize("shape", [(7,), (2, 3, 4)])
def test_activation(make, shape):
    rng = np.random.default_rng(2)
    x = 3 * away_from_zero(rng, (3,) + shape)
    gradcheck([make()], shape, x=x)


@pytest.mark.parametrize("make", [ReLU, LeakyReLU, Abs])
def test_piecewise_linear_activations_exact(make):
    x = np.array([[-2.0, -0.5, 0.5, 3.0]])
    model = Sequential([make()], (4,), dtype=np.float64)
    y = model.forward(x)
    g = model.backward(np.array([[1.0, 2.0, 3.0, 4.0]]))
    slope = {"ReLU": 0.0, "LeakyReLU": 0.01, "Abs": -1.0}[model.layers[0].type]
    np.testing.assert_array_equal(y, [[-2 * slope, -0.5 * slope, 0.5, 3.0]])
    np.testing.assert_array_equal(g, [[slope, 2 * slope, 3.0, 4.0]])


def test_sigmoid_extreme_inputs_are_finite():
    model = Sequential([Sigmoid()], (4,), dtype=np.float64)
    y = model.forward(np.array([[-1000.0, -30.0, 30.0, 1000.0]]))
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, [[0.0, 1 / (1 + np.exp(30)), 1 / (1 + np.exp(-30)), 1.0]],
                               rtol=1e-12, atol=0)


# ---- dropout -------------------------------------------------------------------
def test_dropout_train_backward_is_mask_times_grad():
    def make():
        return Sequential([Dropout(0.4)], (50,), seed=7, dtype=np.float64)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 50))
    g = rng.standard_normal((4, 50))
    a, b = make(), make()
    ya, yb = a.forward(x, train=True), b.forward(x, train=True)
    np.testing.assert_array_equal(ya, yb)          # same seed -> same mask
    mask = a.layers[0]._mask
    assert set(np.unique(mask)) == {0.0, 1 / 0.6}
    assert 0 < (mask == 0).sum() < mask.size
    np.testing.assert_array_equal(ya, x * mask)
    np.testing.assert_array_equal(a.backward(g.copy()), mask * g)
    # the next step draws a new mask
    a.forward(x, train=True)
    assert not np.array_equal(a.layers[0]._mask, mask)


def test_dropout_eval_is_identity():
    model = Sequential([Dropout(0.5)], (10,), dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((3, 10))
    np.testing.assert_array_equal(model.forward(x, train=False), x)
    g = np.ones((3, 10))
    np.testing.assert_array_equal(model.backward(g), g)


def test_dropout_gradcheck_with_fixed_mask():
    def fix_mask(model):
        model.layers[1].rng = np.random.default_rng(42)
    gradcheck([Dense(12), Dropout(0.3), Dense(3)], (5,), batch=3, train=True,
              before_forward=fix_mask)


# ---- batch norm ---------------------------------------------------------------
def _random_affine(model, rng):
    for layer in model.layers:
        if isinstance(layer, BatchNorm):
            n = layer.params["weight"].shape[0]
            layer.params["weight"][...] = 1 + 0.5 * rng.standard_normal(n)
            layer.params["bias"][...] = rng.standard_normal(n)
            layer.buffers["running_mean"][...] = rng.standard_normal(n)
            layer.buffers["running_var"][...] = 0.5 + rng.random(n)


def test_batchnorm_train_2d():
    gradcheck([BatchNorm()], (4,), batch=5, train=True, prepare=_random_affine)


def test_batchnorm_train_4d():
    gradcheck([BatchNorm()], (3, 3, 4), batch=2, train=True, prepare=_random_affine)


@pytest.mark.parametrize("shape", [(4,), (3, 3, 2)])
def test_batchnorm_eval(shape):
    gradcheck([BatchNorm()], shape, batch=3, train=False, prepare=_random_affine)


def test_batchnorm_in_a_network_train():
    gradcheck([Conv2D(3, 3, padding=1), BatchNorm(), Tanh(), Flatten(), Dense(6), BatchNorm(),
               Dense(2)], (2, 4, 4), batch=3, train=True, prepare=_random_affine)


def test_batchnorm_train_output_is_normalised():
    model = Sequential([BatchNorm()], (3, 4, 4), dtype=np.float64)
    x = 5 + 3 * np.random.default_rng(0).standard_normal((6, 3, 4, 4))
    y = model.forward(x, train=True)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-5)


# ---- residual -----------------------------------------------------------------
def test_residual_conv_tanh():
    model, _, _ = gradcheck([Residual([Conv2D(3, 3, padding=1), Tanh()])], (3, 5, 5))
    assert [n for n, _ in model.named_parameters()] == ["0.0.weight", "0.0.bias"]


def test_residual_in_a_network():
    gradcheck([Conv2D(2, 3), Residual([Conv2D(2, 3, padding=1), ReLU(), Conv2D(2, 1)]),
               Flatten(), Dense(3)], (1, 6, 6), prepare=None)


# ---- a whole network ------------------------------------------------------------
def test_small_cnn_all_layers():
    gradcheck([Conv2D(3, 3, padding=1), Tanh(), AvgPool2D(2), ConvTranspose2D(2, 2, stride=2),
               Sigmoid(), Conv2D(2, (2, 3), stride=(2, 1)), Flatten(), Dense(4), Tanh(),
               Dense(3)], (2, 6, 6))


# ---- losses ---------------------------------------------------------------------
def loss_gradcheck(loss, z, t):
    loss.forward(z, t)
    g = np.array(loss.backward(), copy=True)
    assert g.dtype == z.dtype
    num = numeric_grad(lambda: loss.forward(z, t), z)
    assert_grad_close(g, num, type(loss).__name__)


def test_softmax_xent_gradient():
    rng = np.random.default_rng(0)
    z = 3 * rng.standard_normal((5, 4))
    loss_gradcheck(SoftmaxCrossEntropy(), z, np.array([0, 3, 1, 1, 2]))


def test_softmax_xent_value():
    z = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    v = SoftmaxCrossEntropy().forward(z, np.array([2, 0]))
    lse = np.log(np.exp([1, 2, 3]).sum())
    assert v == pytest.approx(((lse - 3) + np.log(3)) / 2, rel=1e-12)
    # large logits do not overflow
    v = SoftmaxCrossEntropy().forward(np.array([[1000.0, 0.0]]), np.array([1]))
    assert v == pytest.approx(1000.0, rel=1e-12)


def test_mse_gradient_and_value():
    rng = np.random.default_rng(1)
    z, t = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    loss_gradcheck(MSE(), z, t)
    assert MSE().forward(z, t) == pytest.approx(((z - t) ** 2).mean(), rel=1e-12)


def test_mse_with_integer_labels_is_one_hot():
    z = np.array([[0.5, 0.2], [0.1, 0.9]])
    v = MSE().forward(z, np.array([0, 1]))
    assert v == pytest.approx(((z - np.eye(2)) ** 2).mean(), rel=1e-12)


def test_bce_with_logits_gradient_and_value():
    rng = np.random.default_rng(2)
    z, t = 2 * rng.standard_normal((6, 1)), rng.random((6, 1))
    loss_gradcheck(BCEWithLogits(), z, t)
    p = 1 / (1 + np.exp(-z))
    ref = -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean()
    assert BCEWithLogits().forward(z, t) == pytest.approx(ref, rel=1e-10)
    # stable for large logits
    v = BCEWithLogits().forward(np.array([[-800.0], [800.0]]), np.array([[1.0], [0.0]]))
    assert v == pytest.approx(800.0, rel=1e-12)


def test_loss_through_model():
    """d loss / d params through model + loss, against central differences."""
    model = Sequential([Conv2D(2, 3), Tanh(), Flatten(), Dense(3)], (1, 5, 5), dtype=np.float64)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 1, 5, 5))
    labels = np.array([0, 2, 1, 2])
    loss = SoftmaxCrossEntropy()
    loss.forward(model.forward(x), labels)
    gx = model.backward(loss.backward())
    grads = [g.copy() for g in model.gradients()]

    def f():
        return loss.forward(model.forward(x), labels)

    assert_grad_close(gx, numeric_grad(f, x), "input")
    for p, g in zip(model.parameters(), grads):
        assert_grad_close(g, numeric_grad(f, p), "param")
