"""CPU backend: numpy arrays, Numba kernels, BLAS for the matrix products.

Layers call only the functions here (through `nnviz.engine.backend`), so a
CUDA backend with the same functions can replace this module.
"""
from __future__ import annotations

# Numba's OpenMP workers keep libgomp's default wait policy: spin briefly after a parallel
# region, then sleep. OMP_WAIT_POLICY=PASSIVE (sleep at once) made every region pay a
# thread wake-up: LeNet-5 batch 16 trained at 5,500 img/s instead of 11,000-14,000 on an
# idle 2-core VM. On a machine whose cores are busy with other work, set
# OMP_WAIT_POLICY=PASSIVE yourself (docs/performance.md).
# The allocator setting that keeps freed activations for reuse is process-wide: the entry
# points apply it (nnviz.engine.process.tune_process), importing this module does not.
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

try:  # Numba's np.dot calls SciPy's BLAS: load it before backend/__init__ pins BLAS threads
    import scipy.linalg.cython_blas  # noqa: F401
except ImportError:
    pass

from . import cpu_kernels as K
from .contract import Array, Cache
from .cpu_mlp import MLP_ACT_CODES, mlp_forward, mlp_step  # noqa: F401  (fused plain-MLP kernels)
from .cpu_target import vector_bits

name = "cpu"
# conv2d_forward(relu=True) and maxpool_relu_backward; MLP_ACT_CODES, mlp_step, mlp_forward
capabilities = frozenset({"fused_conv_relu", "fused_mlp"})


def device_name() -> str:
    import os
    import platform
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


# ---- arrays -----------------------------------------------------------------
def asarray(x: Any, dtype: Any = np.float32) -> Array:
    return np.ascontiguousarray(x, dtype=dtype)


def to_host(x: Array) -> Any:
    return np.asarray(x)


def zeros(shape: Sequence[int], dtype: Any = np.float32) -> Array:
    return np.zeros(shape, dtype=dtype)


def buffer(cache: Cache, key: str, shape: tuple, dtype: Any) -> Array:
    """Reuse a scratch array between steps while the shape stays the same."""
    buf = cache.get(key)
    if buf is None or buf.shape != shape or buf.dtype != dtype:
        buf = np.empty(shape, dtype=dtype)
        cache[key] = buf
    return buf


# ---- dense ------------------------------------------------------------------
def _x_wt(x, w):
    """x @ w.T, C-contiguous. OpenBLAS's transposed-B path is about 2x slower than the plain
    one for small batches (16x400 @ 400x120: 30 vs 16 us), so small batches go through
    (w @ x.T).T and a copy."""
    if 1 < x.shape[0] <= 64:
        return np.ascontiguousarray((w @ x.T).T)
    return x @ w.T


def _gt_x(g, x):
    """g.T @ x; for one sample an outer product (numpy's matmul with inner size 1 took 55 us
    for 120x400)."""
    if g.shape[0] == 1:
        return np.multiply.outer(g[0], x[0])
    return g.T @ x


def dense_forward(x: Array, w: Array, b: Array) -> Array:
    y = _x_wt(x, w)
    if b is not None:
        y += b
    return y


def dense_backward(x: Array, w: Array, gy: Array, need_gx: bool = True) -> tuple:
    gw = _gt_x(gy, x)
    gb = gy.sum(axis=0)
    gx = gy @ w if need_gx else None
    return gx, gw, gb


# ---- convolution ------------------------------------------------------------
def conv_out_size(n: int, k: int, s: int, p: int) -> int:
    return (n - k + 2 * p) // s + 1


# Work (multiply-adds) below which a kernel runs in the calling thread: a parallel region
# costs tens of microseconds, far more when other processes load the cores.
PAR_MIN_WORK = 1_500_000
PAR_MIN_ELEMS = 50_000   # elementwise and pooling kernels: parallel from this many elements
WIDE_MAX = 1.5             # stride-1 "wide" columns when padded width <= 1.5 x output width
CHUNK_BYTES = 256 * 1024   # im2col columns per chunk: stays in L2 between im2col and GEMM


# Direct convolution (no im2col) for stride-1 layers with few inputs per output. On one
# core, against im2col + GEMM: LeNet-5's and Lab 7's conv1 (c*kh*kw = 25, 75) forward 2.5-4x
# and weight gradient 2.5-5x faster with AVX-512 or AVX2; their conv2 (150) forward 20-25%
# faster and backward within 10% with AVX-512, but with AVX2 its input gradient is 1.5x slower.
_AVX512 = vector_bits() >= 512
DIRECT_MAX_CKK = 160 if _AVX512 else 96
DIRECT_CHUNKS = 8          # sample chunks: the parallel split and the order of the gradient sums


def _use_direct(n, ckk, ow, wp, stride):
    return stride == (1, 1) and ckk <= DIRECT_MAX_CKK and wp <= WIDE_MAX * ow


def _chunking(n, ckk, ohw, itemsize):
    per = ckk * ohw * itemsize
    m = max(1, min(n, CHUNK_BYTES // max(per, 1)))
    nch = -(-n // m)
    return nch, -(-n // nch)


def conv2d_forward(x: Array, w: Array, b: Array, stride: tuple, pad: tuple, cache: Cache,
                   relu: bool = False) -> Array:
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh = conv_out_size(h, kh, stride[0], pad[0])
    ow = conv_out_size(wd, kw, stride[1], pad[1])
    ckk, ohw = c * kh * kw, oh * ow
    if x.dtype != w.dtype or not x.flags.c_contiguous:
        x = np.ascontiguousarray(x, dtype=w.dtype)
    if ohw == 1 and pad == (0, 0) and (kh, kw) == (h, wd):
        # the kernel covers the whole input (LeNet's C5): a dense layer on the flat input
        cache["dense"] = True
        y = _x_wt(x.reshape(n, ckk), w.reshape(o, ckk))
        if b is not None:
            y += b
        if relu:
            np.maximum(y, 0, out=y)
        return y.reshape(n, o, 1, 1)
    cache["dense"] = False
    bb = b if b is not None else _NOBIAS[x.dtype.char]
    par_work = n * o * ckk * ohw >= PAR_MIN_WORK
    wp = wd + 2 * pad[1]
    cache["direct"] = direct = _use_direct(n, ckk, ow, wp, stride)
    if direct:
        nch = min(n, DIRECT_CHUNKS)
        y = np.empty((n, o, oh, ow), dtype=x.dtype)
        (K.conv_fwd_direct_p if nch > 1 and par_work else K.conv_fwd_direct_s)(
            x, w, bb, pad[0], pad[1], oh, ow, nch, bool(relu), y)
        return y
    if stride == (1, 1) and wp <= WIDE_MAX * ow:
        seg = oh * wp
        nch, m = _chunking(n, ckk, seg, x.itemsize)
        cols = buffer(cache, "cols", (nch, ckk * m * seg), x.dtype)
        ybuf = buffer(cache, "ybuf", (nch, o * m * seg), x.dtype)
        y = np.empty((n, o, oh, ow), dtype=x.dtype)
        (K.conv_fwd_wide_p if nch > 1 and par_work else K.conv_fwd_wide_s)(
            x, w.reshape(o, ckk), bb, kh, kw, pad[0], pad[1], oh, ow, nch, cols, ybuf, bool(relu),
            y)
        cache["nch"], cache["wide"] = nch, True
        return y
    cache["wide"] = False
    nch, m = _chunking(n, ckk, ohw, x.itemsize)
    cols = buffer(cache, "cols", (nch, ckk * m * ohw), x.dtype)
    ybuf = buffer(cache, "ybuf", (nch, o * m * ohw), x.dtype)
    y = np.empty((n, o, oh, ow), dtype=x.dtype)
    par = nch > 1 and par_work
    (K.conv_fwd_p if par else K.conv_fwd_s)(
        x, w.reshape(o, ckk), bb, kh, kw, stride[0], stride[1], pad[0], pad[1], oh, ow, nch,
        cols, ybuf, bool(relu), y)
    cache["nch"] = nch
    return y


_NOBIAS = {"f": np.zeros(0, np.float32), "d": np.zeros(0, np.float64)}
_NOGX = {"f": np.zeros((1, 1, 1, 1), np.float32), "d": np.zeros((1, 1, 1, 1), np.float64)}


def conv2d_backward(x: Array, w: Array, gy: Array, stride: tuple, pad: tuple, cache: Cache,
                    need_gx: bool = True) -> tuple:
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = gy.shape[2], gy.shape[3]
    ckk, ohw = c * kh * kw, oh * ow
    if cache.get("dense"):
        g2 = gy.reshape(n, o)
        gw = _gt_x(g2, x.reshape(n, ckk)).reshape(w.shape)
        gx = (g2 @ w.reshape(o, ckk)).reshape(x.shape) if need_gx else None
        return gx, gw, g2.sum(axis=0)
    if cache.get("direct"):
        return _conv2d_backward_direct(x, w, gy, pad, cache, need_gx)
    nch = cache["nch"]  # the forward pass of this step filled cache["cols"] in chunks
    m = -(-n // nch)
    if gy.dtype != w.dtype or not gy.flags.c_contiguous:
        gy = np.ascontiguousarray(gy, dtype=w.dtype)
    gwp = buffer(cache, "gwp", (nch, ckk, o), w.dtype)
    gbp = buffer(cache, "gbp", (nch, o), np.float64)
    gx = np.empty((n, c, h, wd), dtype=w.dtype) if need_gx else _NOGX[w.dtype.char]
    gw = np.empty((o, ckk), dtype=w.dtype)
    gb = np.empty(o, dtype=w.dtype)
    par = nch > 1 and n * o * ckk * ohw >= PAR_MIN_WORK
    if cache.get("wide"):
        seg = oh * (wd + 2 * pad[1])
        gbuf = buffer(cache, "gbuf", (nch, o * m * seg), w.dtype)
        gcols = buffer(cache, "gcols", (nch, ckk * m * seg) if need_gx else (nch, 1), w.dtype)
        (K.conv_bwd_wide_p if par else K.conv_bwd_wide_s)(
            w.reshape(o, ckk), gy, c, h, wd, kh, kw, pad[0], pad[1], oh, ow, nch, cache["cols"],
            gbuf, gcols, gwp, gbp, bool(need_gx), gx, gw, gb)
        return (gx if need_gx else None), gw.reshape(w.shape), gb
    gbuf = buffer(cache, "gbuf", (nch, o * m * ohw), w.dtype)
    gcols = buffer(cache, "gcols", (nch, ckk * m * ohw) if need_gx else (nch, 1), w.dtype)
    (K.conv_bwd_p if par else K.conv_bwd_s)(
        w.reshape(o, ckk), gy, kh, kw, stride[0], stride[1], pad[0], pad[1], oh, ow, nch,
        cache["cols"], gbuf, gcols, gwp, gbp, bool(need_gx), gx, gw, gb)
    return (gx if need_gx else None), gw.reshape(w.shape), gb


def _conv2d_backward_direct(x, w, gy, pad, cache, need_gx):
    n = x.shape[0]
    o, c, kh, kw = w.shape
    if x.dtype != w.dtype or not x.flags.c_contiguous:
        x = np.ascontiguousarray(x, dtype=w.dtype)
    if gy.dtype != w.dtype or not gy.flags.c_contiguous:
        gy = np.ascontiguousarray(gy, dtype=w.dtype)
    nch = min(n, DIRECT_CHUNKS)
    gwp = buffer(cache, "gwp", (nch, o, c, kh, kw), w.dtype)
    gbp = buffer(cache, "gbp", (nch, o), np.float64)
    gx = np.empty(x.shape, dtype=w.dtype) if need_gx else _NOGX[w.dtype.char]
    # the input gradient correlates the output gradient with the flipped kernel, (c, o, kh, kw)
    wf = np.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]) if need_gx else w
    gw = np.empty(w.shape, dtype=w.dtype)
    gb = np.empty(o, dtype=w.dtype)
    par = nch > 1 and n * o * c * kh * kw * gy.shape[2] * gy.shape[3] >= PAR_MIN_WORK
    (K.conv_bwd_direct_p if par else K.conv_bwd_direct_s)(
        x, wf, gy, pad[0], pad[1], nch, bool(need_gx), gwp, gbp, gx, gw, gb)
    return (gx if need_gx else None), gw, gb


def conv_transpose2d_forward(x: Array, w: Array, b: Array, stride: tuple, pad: tuple, out_hw: tuple,
                             cache: Cache) -> Array:
    # The adjoint of a convolution: scatter each input pixel through the kernel.
    n, c, h, wd = x.shape
    _, o, kh, kw = w.shape
    cache["x"] = x
    cols = np.matmul(w.reshape(c, -1).T, x.reshape(n, c, h * wd))
    y = np.empty((n, o) + tuple(out_hw), dtype=x.dtype)
    K.col2im(cols, kh, kw, stride[0], stride[1], pad[0], pad[1], h, wd, y)
    if b is not None:
        y += b[None, :, None, None]
    return y


def conv_transpose2d_backward(x: Array, w: Array, gy: Array, stride: tuple, pad: tuple, cache: Cache,
                              need_gx: bool = True) -> tuple:
    n, c, h, wd = x.shape
    _, o, kh, kw = w.shape
    cols = buffer(cache, "gcols", (n, o * kh * kw, h * wd), x.dtype)
    K.im2col(gy, kh, kw, stride[0], stride[1], pad[0], pad[1], h, wd, cols)
    xm = x.reshape(n, c, h * wd)
    gw = np.tensordot(xm, cols, axes=([0, 2], [0, 2])).reshape(w.shape)
    gb = gy.sum(axis=(0, 2, 3))
    gx = np.matmul(w.reshape(c, -1), cols).reshape(x.shape) if need_gx else None
    return gx, gw.astype(w.dtype, copy=False), gb


# ---- pooling ----------------------------------------------------------------
def pool_out_shape(x_shape: tuple, k: tuple, s: tuple) -> tuple[int, ...]:
    n, c, h, w = x_shape
    return n, c, (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1


def maxpool_forward(x: Array, k: tuple, s: tuple, cache: Cache) -> Array:
    shape = pool_out_shape(x.shape, k, s)
    y = np.empty(shape, dtype=x.dtype)
    arg = buffer(cache, "argmax", shape, np.int32)
    if tuple(k) == (2, 2) and tuple(s) == (2, 2) and x.flags.c_contiguous:
        (K.maxpool2_p if x.size >= PAR_MIN_ELEMS else K.maxpool2_s)(x, y, arg)
        return y
    (K.maxpool_fwd_p if x.size >= PAR_MIN_ELEMS else K.maxpool_fwd_s)(
        x, k[0], k[1], s[0], s[1], y, arg)
    return y


def maxpool_backward(gy: Array, x_shape: tuple, k: tuple, s: tuple, cache: Cache) -> Array:
    gx = np.empty(x_shape, dtype=gy.dtype)
    if tuple(k) == (2, 2) and tuple(s) == (2, 2):
        gy = np.ascontiguousarray(gy)
        (K.maxpool2_bwd_p if gx.size >= PAR_MIN_ELEMS else K.maxpool2_bwd_s)(
            gy, gy, cache["argmax"], False, gx)
        return gx
    (K.maxpool_bwd_p if gx.size >= PAR_MIN_ELEMS else K.maxpool_bwd_s)(
        np.ascontiguousarray(gy), cache["argmax"], gx)
    return gx


def maxpool_relu_backward(gy: Array, pooled: Array, x_shape: tuple, k: tuple, s: tuple,
                          cache: Cache) -> Array:
    """Backward of MaxPool2D and the ReLU before it, from the pool's output gradient."""
    gy = np.ascontiguousarray(gy)
    if tuple(k) == (2, 2) and tuple(s) == (2, 2):
        gx = np.empty(x_shape, dtype=gy.dtype)
        (K.maxpool2_bwd_p if gx.size >= PAR_MIN_ELEMS else K.maxpool2_bwd_s)(
            gy, pooled, cache["argmax"], True, gx)
        return gx
    return maxpool_backward(np.where(pooled > 0, gy, gy.dtype.type(0)), x_shape, k, s, cache)


def avgpool_forward(x: Array, k: tuple, s: tuple, cache: Cache) -> Array:
    y = np.empty(pool_out_shape(x.shape, k, s), dtype=x.dtype)
    if tuple(k) == (2, 2) and tuple(s) == (2, 2) and x.flags.c_contiguous:
        (K.avgpool2_p if x.size >= PAR_MIN_ELEMS else K.avgpool2_s)(x, y)
        return y
    K.avgpool_forward(x, k[0], k[1], s[0], s[1], y)
    return y


def avgpool_backward(gy: Array, x_shape: tuple, k: tuple, s: tuple, cache: Cache) -> Array:
    gx = np.empty(x_shape, dtype=gy.dtype)
    gy = np.ascontiguousarray(gy)
    if tuple(k) == (2, 2) and tuple(s) == (2, 2):
        (K.avgpool2_bwd_p if gx.size >= PAR_MIN_ELEMS else K.avgpool2_bwd_s)(gy, gx)
        return gx
    K.avgpool_backward(gy, k[0], k[1], s[0], s[1], gx)
    return gx


def global_avgpool_forward(x: Array, cache: Cache) -> Array:
    n, c, h, w = x.shape
    return x.reshape(n, c, h * w).mean(axis=2, dtype=x.dtype)


def global_avgpool_backward(gy: Array, x_shape: tuple, cache: Cache) -> Array:
    # every pixel of a map gets 1/(H*W) of that channel's gradient
    n, c, h, w = x_shape
    g = gy * gy.dtype.type(1.0 / (h * w))
    return np.ascontiguousarray(np.broadcast_to(g[:, :, None, None], tuple(x_shape)))


# ---- elementwise ------------------------------------------------------------
def relu_forward(x: Array) -> Array:
    out = np.empty_like(x)
    (K.relu_fwd_p if x.size >= PAR_MIN_ELEMS else K.relu_fwd_s)(np.ascontiguousarray(x), out)
    return out


def relu_backward(x: Array, y: Array, gy: Array) -> Array:
    # y = max(x, 0) > 0 exactly where x > 0
    gy = np.ascontiguousarray(gy)
    out = np.empty_like(gy)
    (K.relu_bwd_p if gy.size >= PAR_MIN_ELEMS else K.relu_bwd_s)(
        np.ascontiguousarray(y), gy, out)
    return out


def leaky_relu_forward(x: Array, alpha: float) -> Array:
    return np.where(x > 0, x, x * x.dtype.type(alpha))


def leaky_relu_backward(x: Array, y: Array, gy: Array, alpha: float) -> Array:
    return np.where(x > 0, gy, gy * gy.dtype.type(alpha))


def sigmoid_forward(x: Array) -> Array:
    # split by sign so exp never overflows
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1 / (1 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1 + e)
    return out


def sigmoid_backward(x: Array, y: Array, gy: Array) -> Array:
    return gy * y * (1 - y)


def tanh_forward(x: Array) -> Array:
    return np.tanh(x)


def tanh_backward(x: Array, y: Array, gy: Array) -> Array:
    if y.dtype != gy.dtype:
        return gy * (1 - y * y)
    gy = np.ascontiguousarray(gy)
    out = np.empty_like(gy)
    (K.tanh_bwd_p if gy.size >= PAR_MIN_ELEMS else K.tanh_bwd_s)(np.ascontiguousarray(y), gy, out)
    return out


def abs_forward(x: Array) -> Array:
    return np.abs(x)


def abs_backward(x: Array, y: Array, gy: Array) -> Array:
    return gy * np.sign(x)


def dropout_mask(rng: Any, shape: Sequence[int], p: float, dtype: Any) -> Array:
    # inverted dropout: scale at train time so eval is the identity
    keep = rng.random(shape, dtype=np.float32) >= p
    return keep.astype(dtype) * dtype.type(1.0 / (1.0 - p))


def mul(a: Array, b: Array) -> Array:
    return a * b


def add(a: Array, b: Array) -> Array:
    return a + b


# ---- batch norm -------------------------------------------------------------
def batchnorm_forward(x: Array, gamma: Array, beta: Array, mean: Array, var: Array, momentum: float,
                      eps: float, train: bool, cache: Cache) -> Array:
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    shape = (1, -1) if x.ndim == 2 else (1, -1, 1, 1)
    if train:
        m = x.mean(axis=axes)
        v = x.var(axis=axes)
        count = x.size // x.shape[1]
        # running variance uses the unbiased estimate, as PyTorch does
        mean *= 1 - momentum
        mean += momentum * m
        var *= 1 - momentum
        var += momentum * v * (count / max(count - 1, 1))
    else:
        m, v = mean, var
    inv = (1.0 / np.sqrt(v + eps)).astype(x.dtype)
    xhat = (x - m.reshape(shape)) * inv.reshape(shape)
    cache["xhat"], cache["inv"] = xhat, inv
    return xhat * gamma.reshape(shape) + beta.reshape(shape)


def batchnorm_backward(gy: Array, gamma: Array, train: bool, cache: Cache) -> tuple:
    xhat, inv = cache["xhat"], cache["inv"]
    axes = (0,) if gy.ndim == 2 else (0, 2, 3)
    shape = (1, -1) if gy.ndim == 2 else (1, -1, 1, 1)
    gbeta = gy.sum(axis=axes)
    ggamma = (gy * xhat).sum(axis=axes)
    g = gy * gamma.reshape(shape)
    if not train:
        return g * inv.reshape(shape), ggamma, gbeta
    count = gy.size // gy.shape[1]
    gx = (inv / count).reshape(shape) * (
        count * g - g.sum(axis=axes).reshape(shape)
        - xhat * (g * xhat).sum(axis=axes).reshape(shape))
    return gx.astype(gy.dtype, copy=False), ggamma, gbeta


# ---- losses -----------------------------------------------------------------
def _log_softmax(z):
    m = z.max(axis=1, keepdims=True)
    s = z - m
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))

def softmax_xent(logits: Array, labels: Any) -> tuple:
    """(mean loss, d loss / d logits); None if a label is outside [0, classes)."""
    if logits.ndim == 2 and logits.shape[0] and logits.dtype in (np.float32, np.float64):
        grad = np.empty(logits.shape, logits.dtype)
        out = np.empty(2, np.float64)
        K.softmax_xent(np.ascontiguousarray(logits), labels, grad, out)
        return (None, None) if out[1] else (float(out[0]), grad)
    lp = _log_softmax(logits)
    n = logits.shape[0]
    loss = -lp[np.arange(n), labels].mean()
    grad = np.exp(lp)
    grad[np.arange(n), labels] -= 1
    grad /= n
    return float(loss), grad.astype(logits.dtype, copy=False)


def mse(pred: Array, target: Array) -> tuple:
    d = pred - target
    return float((d * d).mean()), (2.0 / d.size * d).astype(pred.dtype, copy=False)


def bce_with_logits(z: Array, t: Array) -> tuple:
    # log(1 + exp(-|z|)) form: stable for large |z|
    loss = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    sig = sigmoid_forward(z)
    return float(loss.mean()), ((sig - t) / z.size).astype(z.dtype, copy=False)


# ---- optimiser updates (in place) -------------------------------------------
def sgd_update(p: Array, g: Array, v: Array, lr: float, momentum: float, nesterov: bool, weight_decay: float,
               l1: float, first: bool) -> None:
    if (not weight_decay and not l1 and p.dtype == g.dtype == v.dtype and p.flags.c_contiguous
            and g.flags.c_contiguous and v.flags.c_contiguous):
        # one fused pass, same float operations in the same order as below
        if momentum:
            K.sgd_momentum(p, g, v, lr, momentum, bool(nesterov), bool(first))
        else:
            K.sgd_plain(p, g, lr)
        return
    if weight_decay:
        g = g + weight_decay * p
    if l1:
        g = g + l1 * np.sign(p)
    if momentum:
        if first:
            v[...] = g
        else:
            v *= momentum
            v += g
        g = g + momentum * v if nesterov else v
    p -= p.dtype.type(lr) * g


def adam_update(p: Array, g: Array, m: Array, v: Array, lr: float, b1: float, b2: float, eps: float,
                weight_decay: float, l1: float, t: int) -> None:
    if weight_decay:
        g = g + weight_decay * p
    if l1:
        g = g + l1 * np.sign(p)
    m *= b1
    m += (1 - b1) * g
    v *= b2
    v += (1 - b2) * g * g
    c1 = 1 - b1 ** t
    c2 = 1 - b2 ** t
    step = lr / c1
    p -= (step * (m / (np.sqrt(v) / np.sqrt(c2) + eps))).astype(p.dtype, copy=False)


def all_finite(arrays: Iterable[Array]) -> bool:
    # one compiled pass per array: no temporary boolean array, ~1 us per call
    return all(K.all_finite_1(a) if a.flags.c_contiguous and a.dtype.kind == "f"
               else bool(np.isfinite(a).all()) for a in arrays)


def sq_norm(a: Array) -> float:
    a = a.ravel()
    return float(np.dot(a, a))
