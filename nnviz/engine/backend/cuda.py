"""CUDA backend: numba.cuda device arrays and kernels, same functions as cpu.py.

Parameters, activations, gradients and optimiser state live on the device
from step to step; only losses (one float), metrics and snapshots
(`to_host`) come back. Every function also accepts host (numpy) arrays and
copies them over, so callers that still hand in numpy data keep working.

Launch configuration: 1-D grids of 256 threads for elementwise kernels and
reductions, 16 x 16 tiles for the GEMM (see cuda_kernels.py). float32 only,
the engine's dtype: the GEMM and reductions stage float32 in shared memory.

Dropout masks are drawn on the host with the model's numpy generator, exactly
as the CPU backend draws them, and copied over: the mask (and so a whole
training run) is bit-for-bit the same on both backends for a given seed, and
the generator state that the trainer saves for resuming stays meaningful.
A device RNG would give different masks and a second state to save.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from numba import cuda

from . import cuda_kernels as K
from .contract import Array, Cache

name = "cuda"
capabilities: frozenset[str] = frozenset()   # no fused kernels (see the contract in backend/contract.py)

TPB = K.TPB
TILE = K.TILE


def device_name() -> str:
    try:
        dev = cuda.get_current_device()
        n = dev.name
        return n.decode() if isinstance(n, bytes) else str(n)
    except AttributeError:       # numba's CUDA simulator has no device name
        return "CUDA simulator (NUMBA_ENABLE_CUDASIM=1)"


# ---- arrays -----------------------------------------------------------------
def is_device(x: Any) -> bool:
    return hasattr(x, "copy_to_host") and not isinstance(x, np.ndarray)


def _dev(x, dtype=None):
    """Device array for x: device arrays pass through, host data is copied over."""
    if is_device(x):
        if dtype is None or x.dtype == np.dtype(dtype):
            return x
        return cuda.to_device(np.ascontiguousarray(x.copy_to_host(), dtype=dtype))
    return cuda.to_device(np.ascontiguousarray(x, dtype=dtype))


def _writeback(pairs):
    """After an in-place kernel: copy results into any host arrays the caller passed."""
    for host, dev in pairs:
        if host is not dev:
            host[...] = dev.copy_to_host()


def _flat(a):
    return a.reshape(a.size)


def _f32(v):
    return np.float32(v)


def asarray(x: Any, dtype: Any = np.float32) -> Array:
    return _dev(x, dtype)


def to_host(x: Array) -> Any:
    if is_device(x):
        return x.copy_to_host()
    return np.asarray(x)


def _shape(shape):
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(s) for s in shape)


def _empty(shape, dtype=np.float32):
    return cuda.device_array(_shape(shape), dtype=np.dtype(dtype))


def zeros(shape: Sequence[int], dtype: Any = np.float32) -> Array:
    a = _empty(shape, dtype)
    if a.size:
        K.fill[K.blocks(a.size), TPB](_flat(a), 0)
    return a


def buffer(cache: Cache, key: str, shape: tuple, dtype: Any) -> Array:
    """Reuse a device scratch array between steps while the shape stays the same."""
    buf = cache.get(key)
    if buf is None or tuple(buf.shape) != tuple(shape) or buf.dtype != dtype:
        buf = cuda.device_array(_shape(shape), dtype=np.dtype(dtype))
        cache[key] = buf
    return buf


# ---- GEMM -------------------------------------------------------------------
def gemm(a: Array, b: Array, ta: bool = False, tb: bool = False, out: Array | None = None,
         reduce_batch: bool = False, accumulate: bool = False) -> Array:
    """Batched product C[z] = op(A[z]) @ op(B[z]) on 3-D device arrays.

    op is a transpose when ta / tb is set; a batch dimension of 1 broadcasts.
    reduce_batch sums over the batch into C of batch 1 (weight gradients).
    """
    a, b = _dev(a), _dev(b)
    za, ra, ca = a.shape
    zb, rb, cb = b.shape
    m, k = (ca, ra) if ta else (ra, ca)
    k2, n = (cb, rb) if tb else (rb, cb)
    if k != k2:
        raise ValueError(f"gemm: inner sizes differ ({k} vs {k2})")
    if za != zb and 1 not in (za, zb):
        raise ValueError(f"gemm: batch sizes {za} and {zb} do not broadcast")
    nz = 1 if reduce_batch else max(za, zb)
    if out is None:
        out = cuda.device_array((nz, m, n), dtype=a.dtype)
        accumulate = False
    if m and n:
        grid = ((n + TILE - 1) // TILE, (m + TILE - 1) // TILE, nz)
        K.gemm[grid, (TILE, TILE)](a, b, out, int(bool(ta)), int(bool(tb)),
                                   int(bool(accumulate)), int(bool(reduce_batch)))
    return out


def _add_bias(y, b, channels, inner):
    K.add_channel_bias[K.blocks(y.size), TPB](_flat(y), _dev(b), channels, inner)


def _channel_sums(a, channels, inner, mode=0, b=None, m=None):
    """Per-channel sums over a flat (N, channels, inner) layout (see K.channel_sums)."""
    out = cuda.device_array((channels,), dtype=a.dtype)
    fa = _flat(a)
    fb = _flat(b) if b is not None else fa
    nb = a.size // (channels * inner)
    K.channel_sums[channels, TPB](fa, fb, m if m is not None else out, nb, channels, inner,
                                  mode, out)
    return out


def _sum(a, mode=0):
    """Sum of a (mode 0) or of a*a (mode 1) as a Python float (one value copied back)."""
    fa = _flat(_dev(a))
    nblk = min(64, K.blocks(fa.size))
    part = cuda.device_array((nblk,), dtype=np.float32)
    K.reduce_partial[nblk, TPB](fa, mode, part)
    if nblk > 1:
        total = cuda.device_array((1,), dtype=np.float32)
        K.reduce_partial[1, TPB](part, 0, total)
        part = total
    return float(part.copy_to_host()[0])


# ---- dense ------------------------------------------------------------------
def dense_forward(x: Array, w: Array, b: Array) -> Array:
    x, w = _dev(x), _dev(w)
    n, i = x.shape
    o = w.shape[0]
    y = gemm(x.reshape(1, n, i), w.reshape(1, o, i), tb=True).reshape(n, o)
    if b is not None:
        _add_bias(y, b, o, 1)
    return y


def dense_backward(x: Array, w: Array, gy: Array, need_gx: bool = True) -> tuple:
    x, w, gy = _dev(x), _dev(w), _dev(gy)
    n, i = x.shape
    o = w.shape[0]
    g3 = gy.reshape(1, n, o)
    gw = gemm(g3, x.reshape(1, n, i), ta=True).reshape(o, i)
    gb = _channel_sums(gy, o, 1)
    gx = gemm(g3, w.reshape(1, o, i)).reshape(n, i) if need_gx else None
    return gx, gw, gb


# ---- convolution ------------------------------------------------------------
def conv_out_size(n: int, k: int, s: int, p: int) -> int:
    return (n - k + 2 * p) // s + 1


def _im2col(x, kh, kw, stride, pad, oh, ow, cols):
    K.im2col[K.blocks(cols.size), TPB](x, kh, kw, stride[0], stride[1], pad[0], pad[1],
                                        oh, ow, cols)


def _col2im(cols, kh, kw, stride, pad, oh, ow, out):
    K.col2im[K.blocks(out.size), TPB](cols, kh, kw, stride[0], stride[1], pad[0], pad[1],
                                       oh, ow, out)


def conv2d_forward(x: Array, w: Array, b: Array, stride: tuple, pad: tuple, cache: Cache) -> Array:
    x, w = _dev(x), _dev(w)
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh = conv_out_size(h, kh, stride[0], pad[0])
    ow = conv_out_size(wd, kw, stride[1], pad[1])
    cols = buffer(cache, "cols", (n, c * kh * kw, oh * ow), x.dtype)
    _im2col(x, kh, kw, stride, pad, oh, ow, cols)
    y = gemm(w.reshape(1, o, c * kh * kw), cols)          # (n, o, oh*ow): already NCHW
    if b is not None:
        _add_bias(y, b, o, oh * ow)
    return y.reshape(n, o, oh, ow)


def conv2d_backward(x: Array, w: Array, gy: Array, stride: tuple, pad: tuple, cache: Cache,
                    need_gx: bool = True) -> tuple:
    x, w, gy = _dev(x), _dev(w), _dev(gy)
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = gy.shape[2], gy.shape[3]
    cols = cache["cols"]  # filled by the forward pass of this step
    ckk = c * kh * kw
    g = gy.reshape(n, o, oh * ow)
    gw = gemm(g, cols, tb=True, reduce_batch=True).reshape(w.shape)
    gb = _channel_sums(gy, o, oh * ow)
    gx = None
    if need_gx:
        gcols = buffer(cache, "gcols", (n, ckk, oh * ow), x.dtype)
        gemm(w.reshape(1, o, ckk), g, ta=True, out=gcols)
        gx = cuda.device_array(x.shape, dtype=x.dtype)
        _col2im(gcols, kh, kw, stride, pad, oh, ow, gx)
    return gx, gw, gb


def conv_transpose2d_forward(x: Array, w: Array, b: Array, stride: tuple, pad: tuple, out_hw: tuple,
                             cache: Cache) -> Array:
    x, w = _dev(x), _dev(w)
    n, c, h, wd = x.shape
    _, o, kh, kw = w.shape
    cache["x"] = x
    okk = o * kh * kw
    cols = buffer(cache, "cols", (n, okk, h * wd), x.dtype)
    gemm(w.reshape(1, c, okk), x.reshape(n, c, h * wd), ta=True, out=cols)
    y = cuda.device_array((n, o) + tuple(int(s) for s in out_hw), dtype=x.dtype)
    _col2im(cols, kh, kw, stride, pad, h, wd, y)
    if b is not None:
        _add_bias(y, b, o, y.shape[2] * y.shape[3])
    return y


def conv_transpose2d_backward(x: Array, w: Array, gy: Array, stride: tuple, pad: tuple, cache: Cache,
                              need_gx: bool = True) -> tuple:
    x, w, gy = _dev(x), _dev(w), _dev(gy)
    n, c, h, wd = x.shape
    _, o, kh, kw = w.shape
    okk = o * kh * kw
    cols = buffer(cache, "gcols", (n, okk, h * wd), x.dtype)
    _im2col(gy, kh, kw, stride, pad, h, wd, cols)
    gw = gemm(x.reshape(n, c, h * wd), cols, tb=True, reduce_batch=True).reshape(w.shape)
    gb = _channel_sums(gy, o, gy.shape[2] * gy.shape[3])
    gx = gemm(w.reshape(1, c, okk), cols).reshape(x.shape) if need_gx else None
    return gx, gw, gb


# ---- pooling ----------------------------------------------------------------
def pool_out_shape(x_shape: tuple, k: tuple, s: tuple) -> tuple[int, ...]:
    n, c, h, w = x_shape
    return n, c, (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1


def maxpool_forward(x: Array, k: tuple, s: tuple, cache: Cache) -> Array:
    x = _dev(x)
    shape = pool_out_shape(x.shape, k, s)
    y = cuda.device_array(shape, dtype=x.dtype)
    arg = buffer(cache, "argmax", shape, np.int32)
    K.maxpool_forward[K.blocks(y.size), TPB](x, k[0], k[1], s[0], s[1], y, arg)
    return y


def maxpool_backward(gy: Array, x_shape: tuple, k: tuple, s: tuple, cache: Cache) -> Array:
    gy = _dev(gy)
    gx = cuda.device_array(tuple(x_shape), dtype=gy.dtype)
    K.maxpool_backward[K.blocks(gx.size), TPB](gy, cache["argmax"], k[0], k[1], s[0], s[1],
                                                gx)
    return gx


def avgpool_forward(x: Array, k: tuple, s: tuple, cache: Cache) -> Array:
    x = _dev(x)
    y = cuda.device_array(pool_out_shape(x.shape, k, s), dtype=x.dtype)
    K.avgpool_forward[K.blocks(y.size), TPB](x, k[0], k[1], s[0], s[1],
                                              _f32(1.0 / (k[0] * k[1])), y)
    return y


def avgpool_backward(gy: Array, x_shape: tuple, k: tuple, s: tuple, cache: Cache) -> Array:
    gy = _dev(gy)
    gx = cuda.device_array(tuple(x_shape), dtype=gy.dtype)
    K.avgpool_backward[K.blocks(gx.size), TPB](gy, k[0], k[1], s[0], s[1],
                                                _f32(1.0 / (k[0] * k[1])), gx)
    return gx


def global_avgpool_forward(x: Array, cache: Cache) -> Array:
    x = _dev(x)
    n, c, h, w = x.shape
    y = cuda.device_array((n, c), dtype=x.dtype)
    K.global_avgpool_forward[K.blocks(n * c), TPB](_flat(x), h * w, _f32(1.0 / (h * w)), _flat(y))
    return y


def global_avgpool_backward(gy: Array, x_shape: tuple, cache: Cache) -> Array:
    gy = _dev(gy)
    n, c, h, w = (int(s) for s in x_shape)
    gx = cuda.device_array((n, c, h, w), dtype=gy.dtype)
    K.global_avgpool_backward[K.blocks(gx.size), TPB](_flat(gy), h * w, _f32(1.0 / (h * w)),
                                                       _flat(gx))
    return gx


# ---- elementwise ------------------------------------------------------------
def _unary(kernel, x, *extra):
    x = _dev(x)
    y = cuda.device_array(x.shape, dtype=x.dtype)
    if x.size:
        kernel[K.blocks(x.size), TPB](_flat(x), *extra, _flat(y))
    return y


def _binary(kernel, a, b, *extra):
    a, b = _dev(a), _dev(b)
    y = cuda.device_array(a.shape, dtype=a.dtype)
    if a.size:
        kernel[K.blocks(a.size), TPB](_flat(a), _flat(b), *extra, _flat(y))
    return y


def relu_forward(x: Array) -> Array:
    return _unary(K.relu_forward, x)


def relu_backward(x: Array, y: Array, gy: Array) -> Array:
    return _binary(K.relu_backward, x, gy)


def leaky_relu_forward(x: Array, alpha: float) -> Array:
    return _unary(K.leaky_relu_forward, x, _f32(alpha))


def leaky_relu_backward(x: Array, y: Array, gy: Array, alpha: float) -> Array:
    return _binary(K.leaky_relu_backward, x, gy, _f32(alpha))


def sigmoid_forward(x: Array) -> Array:
    return _unary(K.sigmoid_forward, x)


def sigmoid_backward(x: Array, y: Array, gy: Array) -> Array:
    return _binary(K.sigmoid_backward, y, gy)


def tanh_forward(x: Array) -> Array:
    return _unary(K.tanh_forward, x)


def tanh_backward(x: Array, y: Array, gy: Array) -> Array:
    return _binary(K.tanh_backward, y, gy)


def abs_forward(x: Array) -> Array:
    return _unary(K.abs_forward, x)


def abs_backward(x: Array, y: Array, gy: Array) -> Array:
    return _binary(K.abs_backward, x, gy)


def dropout_mask(rng: Any, shape: Sequence[int], p: float, dtype: Any) -> Array:
    # Drawn on the host with the model's generator, exactly as cpu.py does, then
    # copied over: same masks on both backends (see the module docstring).
    dtype = np.dtype(dtype)
    keep = rng.random(tuple(shape), dtype=np.float32) >= p
    return cuda.to_device(keep.astype(dtype) * dtype.type(1.0 / (1.0 - p)))


def _host_fallback(op, a, b):
    # broadcasting between different shapes: rare (the layers never do it); numpy
    # does the broadcast on the host and the result goes back to the device
    return cuda.to_device(np.ascontiguousarray(op(to_host(a), to_host(b))))


def mul(a: Array, b: Array) -> Array:
    if tuple(a.shape) != tuple(b.shape):
        return _host_fallback(np.multiply, a, b)
    return _binary(K.mul, a, b)


def add(a: Array, b: Array) -> Array:
    if tuple(a.shape) != tuple(b.shape):
        return _host_fallback(np.add, a, b)
    return _binary(K.add, a, b)


# ---- batch norm -------------------------------------------------------------
def _bn_layout(x):
    c = x.shape[1]
    inner = 1 if len(x.shape) == 2 else x.shape[2] * x.shape[3]
    return c, inner


def batchnorm_forward(x: Array, gamma: Array, beta: Array, mean: Array, var: Array, momentum: float,
                      eps: float, train: bool, cache: Cache) -> Array:
    x, gamma, beta = _dev(x), _dev(gamma), _dev(beta)
    mean_h, var_h = mean, var
    mean, var = _dev(mean, x.dtype), _dev(var, x.dtype)
    c, inner = _bn_layout(x)
    count = x.size // c
    m = cuda.device_array((c,), dtype=x.dtype)
    inv = cuda.device_array((c,), dtype=x.dtype)
    if train:
        # two-pass variance: the batch mean first, then the sum of (x - mean)^2
        sums = _channel_sums(x, c, inner, 0)
        K.scale_copy[K.blocks(c), TPB](sums, _f32(1.0 / count), m)
        sq = _channel_sums(x, c, inner, 2, m=m)
        # running variance uses the unbiased estimate, as PyTorch does
        unbias = count / max(count - 1, 1)
        K.bn_stats[K.blocks(c), TPB](sums, sq, _f32(count), _f32(unbias), mean, var,
                                      _f32(momentum), _f32(eps), 1, m, inv)
    else:
        K.bn_stats[K.blocks(c), TPB](mean, var, _f32(count), _f32(1.0), mean, var,
                                      _f32(momentum), _f32(eps), 0, m, inv)
    xhat = buffer(cache, "xhat", x.shape, x.dtype)
    y = cuda.device_array(x.shape, dtype=x.dtype)
    K.bn_apply[K.blocks(x.size), TPB](_flat(x), m, inv, gamma, beta, c, inner, _flat(xhat),
                                       _flat(y))
    cache["xhat"], cache["inv"] = xhat, inv
    if train:
        _writeback([(mean_h, mean), (var_h, var)])
    return y


def batchnorm_backward(gy: Array, gamma: Array, train: bool, cache: Cache) -> tuple:
    gy, gamma = _dev(gy), _dev(gamma)
    xhat, inv = cache["xhat"], cache["inv"]
    c, inner = _bn_layout(gy)
    gbeta = _channel_sums(gy, c, inner, 0)
    ggamma = _channel_sums(gy, c, inner, 1, b=xhat)
    count = gy.size // c
    gx = cuda.device_array(gy.shape, dtype=gy.dtype)
    K.bn_backward[K.blocks(gy.size), TPB](_flat(gy), _flat(xhat), gamma, inv, gbeta, ggamma,
                                           _f32(count), int(bool(train)), c, inner, _flat(gx))
    return gx, ggamma, gbeta


# ---- losses -----------------------------------------------------------------
def softmax_xent(logits: Array, labels: Any) -> tuple:
    z = _dev(logits)
    n = z.shape[0]
    lab = _dev(np.asarray(to_host(labels), dtype=np.int64))
    rowloss = cuda.device_array((n,), dtype=z.dtype)
    grad = cuda.device_array(z.shape, dtype=z.dtype)
    K.softmax_xent_rows[K.blocks(n), TPB](z, lab, _f32(n), rowloss, grad)
    return _sum(rowloss) / n, grad


def mse(pred: Array, target: Array) -> tuple:
    p = _dev(pred)
    t = _dev(target, p.dtype)
    sq = cuda.device_array(p.shape, dtype=p.dtype)
    grad = cuda.device_array(p.shape, dtype=p.dtype)
    K.mse_elems[K.blocks(p.size), TPB](_flat(p), _flat(t), _f32(2.0 / p.size), _flat(sq),
                                        _flat(grad))
    return _sum(sq) / p.size, grad


def bce_with_logits(z: Array, t: Array) -> tuple:
    z = _dev(z)
    t = _dev(t, z.dtype)
    loss = cuda.device_array(z.shape, dtype=z.dtype)
    grad = cuda.device_array(z.shape, dtype=z.dtype)
    K.bce_elems[K.blocks(z.size), TPB](_flat(z), _flat(t), _f32(z.size), _flat(loss),
                                        _flat(grad))
    return _sum(loss) / z.size, grad


# ---- optimiser updates (in place) -------------------------------------------
def sgd_update(p: Array, g: Array, v: Array, lr: float, momentum: float, nesterov: bool, weight_decay: float,
               l1: float, first: bool) -> None:
    ph, vh = p, v
    p, v = _dev(p), _dev(v, p.dtype)
    g = _dev(g, p.dtype)
    K.sgd_update[K.blocks(p.size), TPB](_flat(p), _flat(g), _flat(v), _f32(lr),
                                         _f32(momentum), int(bool(nesterov)),
                                         _f32(weight_decay), _f32(l1), int(bool(first)))
    _writeback([(ph, p), (vh, v)])


def adam_update(p: Array, g: Array, m: Array, v: Array, lr: float, b1: float, b2: float, eps: float,
                weight_decay: float, l1: float, t: int) -> None:
    ph, mh, vh = p, m, v
    p, m, v = _dev(p), _dev(m, p.dtype), _dev(v, p.dtype)
    g = _dev(g, p.dtype)
    c1 = 1 - b1 ** t
    c2 = 1 - b2 ** t
    K.adam_update[K.blocks(p.size), TPB](_flat(p), _flat(g), _flat(m), _flat(v), _f32(b1),
                                          _f32(b2), _f32(lr / c1), _f32(math.sqrt(c2)),
                                          _f32(eps), _f32(weight_decay), _f32(l1))
    _writeback([(ph, p), (mh, m), (vh, v)])


def all_finite(arrays: Iterable[Array]) -> bool:
    arrays = list(arrays)
    if not arrays:
        return True
    flags = cuda.device_array((len(arrays),), dtype=np.int32)
    K.fill[K.blocks(len(arrays)), TPB](flags, 0)
    for i, a in enumerate(arrays):
        a = _dev(a)
        if a.size:
            K.nonfinite_flag[K.blocks(a.size), TPB](_flat(a), flags, i)
    return not flags.copy_to_host().any()


def sq_norm(a: Array) -> float:
    return _sum(a, 1)
