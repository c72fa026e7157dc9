"""The direct (no im2col) stride-1 convolution of the CPU backend against PyTorch: forward
with and without the fused ReLU, input, weight and bias gradients, for channel pairs and
odd channel counts, 3-, 5- and 7-wide and rectangular kernels, rectangular planes,
padding, float64, and serial against parallel."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from nnviz.engine.backend import cpu  # noqa: E402
from nnviz.engine.backend import cpu_kernels as K  # noqa: E402

# (batch, in channels, out channels, height, width, kh, kw, ph, pw); each takes the direct
# path (at most 96 inputs per output, padded width at most 1.5x the output width)
SHAPES = [
    (3, 1, 6, 12, 12, 5, 5, 2, 2),     # LeNet-5 conv1, small
    (10, 3, 6, 11, 13, 5, 5, 0, 0),    # Lab 7 conv1: 10 samples in 8 uneven chunks
    (2, 2, 7, 13, 13, 5, 5, 1, 1),     # 7 = three pairs + one output channel
    (1, 3, 5, 8, 10, 3, 3, 1, 0),      # 3x3, padding on rows only
    (4, 1, 3, 12, 12, 7, 7, 3, 3),     # 7x7: the generic row path
    (2, 3, 4, 9, 8, 5, 3, 2, 1),       # 5x3: rows of 3 with 5 kernel rows
    (2, 1, 9, 6, 10, 3, 5, 0, 2),      # 3x5: pairs and one channel, kernel rows of 5
]


def _torch_conv(x, w, b, pad, relu, gy, dtype):
    xt = torch.tensor(x, dtype=dtype, requires_grad=True)
    wt = torch.tensor(w, dtype=dtype, requires_grad=True)
    bt = torch.tensor(b, dtype=dtype, requires_grad=True)
    y = F.conv2d(xt, wt, bt, padding=pad)
    if relu:
        y = torch.relu(y)
    y.backward(torch.tensor(gy, dtype=dtype))
    return y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


def _case(shape, relu, dtype=np.float32, seed=0):
    n, c, o, h, w, kh, kw, ph, pw = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = (rng.standard_normal((o, c, kh, kw)) * 0.3).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    cache: dict = {}
    y = cpu.conv2d_forward(x, wt, b, (1, 1), (ph, pw), cache, relu=relu)
    assert cache["direct"], "the shape should take the direct path"
    gy = rng.standard_normal(y.shape).astype(dtype)
    # the backward of conv + ReLU is the conv's backward of the masked gradient
    gyc = np.where(y > 0, gy, 0).astype(dtype) if relu else gy
    gx, gw, gb = cpu.conv2d_backward(x, wt, gyc, (1, 1), (ph, pw), cache, need_gx=True)
    return (y, gx, gw, gb), _torch_conv(x, wt, b, (ph, pw), relu, gy,
                                         torch.float32 if dtype == np.float32 else torch.float64)


def _check(ours, theirs, tol):
    for what, a, e in zip(("forward", "input gradient", "weight gradient", "bias gradient"),
                          ours, theirs):
        assert a.shape == e.shape, what
        scale = max(1.0, float(np.abs(e).max()))
        np.testing.assert_allclose(a, e, rtol=tol, atol=tol * scale, err_msg=what)


@pytest.mark.parametrize("shape", SHAPES)
def test_direct_conv_matches_torch(shape):
    ours, theirs = _case(shape, relu=False)
    _check(ours, theirs, 1e-4)


@pytest.mark.parametrize("shape", SHAPES[:3])
def test_direct_conv_fused_relu_matches_torch(shape):
    ours, theirs = _case(shape, relu=True, seed=1)
    _check(ours, theirs, 1e-4)


def test_direct_conv_float64_matches_torch():
    ours, theirs = _case(SHAPES[2], relu=False, dtype=np.float64, seed=2)
    assert ours[0].dtype == np.float64 and ours[2].dtype == np.float64
    _check(ours, theirs, 1e-10)


def test_direct_conv_without_gx_gives_the_same_weight_gradient():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 3, 10, 10)).astype(np.float32)
    w = rng.standard_normal((6, 3, 5, 5)).astype(np.float32)
    cache: dict = {}
    y = cpu.conv2d_forward(x, w, None, (1, 1), (0, 0), cache)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    gx, gw, gb = cpu.conv2d_backward(x, w, gy, (1, 1), (0, 0), cache, need_gx=False)
    gx2, gw2, gb2 = cpu.conv2d_backward(x, w, gy, (1, 1), (0, 0), cache, need_gx=True)
    assert gx is None and gx2.shape == x.shape
    np.testing.assert_array_equal(gw, gw2)
    np.testing.assert_array_equal(gb, gb2)


def test_direct_conv_serial_and_parallel_twins_are_bit_identical():
    rng = np.random.default_rng(4)
    n, c, o, h, w, k, p = 11, 3, 6, 12, 12, 5, 1
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((o, c, k, k)).astype(np.float32)
    b = rng.standard_normal(o).astype(np.float32)
    oh = h - k + 2 * p + 1
    ys = [np.empty((n, o, oh, oh), np.float32) for _ in range(2)]
    for f, y in zip((K.conv_fwd_direct_s, K.conv_fwd_direct_p), ys):
        f(x, wt, b, p, p, oh, oh, 4, True, y)
    np.testing.assert_array_equal(ys[0], ys[1])
    gy = rng.standard_normal(ys[0].shape).astype(np.float32)
    wf = np.ascontiguousarray(wt.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
    outs = []
    for f in (K.conv_bwd_direct_s, K.conv_bwd_direct_p):
        gwp, gbp = np.empty((4, o, c, k, k), np.float32), np.empty((4, o))
        gx, gw, gb = np.empty_like(x), np.empty_like(wt), np.empty_like(b)
        f(x, wf, gy, p, p, 4, True, gwp, gbp, gx, gw, gb)
        outs.append((gx, gw, gb))
    for a, e in zip(*outs):
        np.testing.assert_array_equal(a, e)


def test_large_channel_counts_and_strides_keep_the_gemm_path():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 16, 9, 9)).astype(np.float32)
    for w, stride in ((rng.standard_normal((4, 16, 5, 5)), (1, 1)),   # 16*5*5 inputs per output
                      (rng.standard_normal((4, 1, 3, 3)), (2, 2))):
        cache: dict = {}
        cpu.conv2d_forward(x[:, :w.shape[1]], w.astype(np.float32), None, stride, (1, 1), cache)
        assert not cache["direct"]
