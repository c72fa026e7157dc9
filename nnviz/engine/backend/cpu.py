"""CPU backend: numpy arrays, Numba kernels, BLAS for the matrix products.

Layers call only the functions here (through `nnviz.engine.backend`), so a
CUDA backend with the same functions can replace this module.
"""
import numpy as np

from . import cpu_kernels as K

name = "cpu"


def device_name():
    import os
    import platform
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


# ---- arrays -----------------------------------------------------------------
def asarray(x, dtype=np.float32):
    return np.ascontiguousarray(x, dtype=dtype)


def to_host(x):
    return np.asarray(x)


def zeros(shape, dtype=np.float32):
    return np.zeros(shape, dtype=dtype)


def empty(shape, dtype=np.float32):
    return np.empty(shape, dtype=dtype)


def copy(x):
    return np.array(x, copy=True)


def buffer(cache, key, shape, dtype):
    """Reuse a scratch array between steps while the shape stays the same."""
    buf = cache.get(key)
    if buf is None or buf.shape != shape or buf.dtype != dtype:
        buf = np.empty(shape, dtype=dtype)
        cache[key] = buf
    return buf


# ---- dense ------------------------------------------------------------------
def dense_forward(x, w, b):
    y = x @ w.T
    if b is not None:
        y += b
    return y


def dense_backward(x, w, gy, need_gx=True):
    gw = gy.T @ x
    gb = gy.sum(axis=0)
    gx = gy @ w if need_gx else None
    return gx, gw, gb


# ---- convolution ------------------------------------------------------------
def conv_out_size(n, k, s, p):
    return (n - k + 2 * p) // s + 1


def conv2d_forward(x, w, b, stride, pad, cache):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh = conv_out_size(h, kh, stride[0], pad[0])
    ow = conv_out_size(wd, kw, stride[1], pad[1])
    cols = buffer(cache, "cols", (n, c * kh * kw, oh * ow), x.dtype)
    K.im2col(x, kh, kw, stride[0], stride[1], pad[0], pad[1], oh, ow, cols)
    y = np.matmul(w.reshape(o, -1), cols)  # (n, o, oh*ow): already NCHW
    if b is not None:
        y += b[None, :, None]
    return y.reshape(n, o, oh, ow)


def conv2d_backward(x, w, gy, stride, pad, cache, need_gx=True):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = gy.shape[2], gy.shape[3]
    cols = cache["cols"]  # filled by the forward pass of this step
    g = gy.reshape(n, o, oh * ow)
    gw = np.tensordot(g, cols, axes=([0, 2], [0, 2])).reshape(w.shape)
    gb = g.sum(axis=(0, 2))
    gx = None
    if need_gx:
        gcols = np.matmul(w.reshape(o, -1).T, g)
        gx = np.empty_like(x)
        K.col2im(gcols, kh, kw, stride[0], stride[1], pad[0], pad[1], oh, ow, gx)
    return gx, gw.astype(w.dtype, copy=False), gb


def conv_transpose2d_forward(x, w, b, stride, pad, out_hw, cache):
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


def conv_transpose2d_backward(x, w, gy, stride, pad, cache, need_gx=True):
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
def pool_out_shape(x_shape, k, s):
    n, c, h, w = x_shape
    return n, c, (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1


def maxpool_forward(x, k, s, cache):
    shape = pool_out_shape(x.shape, k, s)
    y = np.empty(shape, dtype=x.dtype)
    arg = buffer(cache, "argmax", shape, np.int32)
    K.maxpool_forward(x, k[0], k[1], s[0], s[1], y, arg)
    return y


def maxpool_backward(gy, x_shape, k, s, cache):
    gx = np.empty(x_shape, dtype=gy.dtype)
    K.maxpool_backward(np.ascontiguousarray(gy), cache["argmax"], gx)
    return gx


def avgpool_forward(x, k, s, cache):
    y = np.empty(pool_out_shape(x.shape, k, s), dtype=x.dtype)
    K.avgpool_forward(x, k[0], k[1], s[0], s[1], y)
    return y


def avgpool_backward(gy, x_shape, k, s, cache):
    gx = np.empty(x_shape, dtype=gy.dtype)
    K.avgpool_backward(np.ascontiguousarray(gy), k[0], k[1], s[0], s[1], gx)
    return gx


# ---- elementwise ------------------------------------------------------------
def relu_forward(x):
    return np.maximum(x, 0)


def relu_backward(x, y, gy):
    return np.where(x > 0, gy, 0).astype(gy.dtype, copy=False)


def leaky_relu_forward(x, alpha):
    return np.where(x > 0, x, x * x.dtype.type(alpha))


def leaky_relu_backward(x, y, gy, alpha):
    return np.where(x > 0, gy, gy * gy.dtype.type(alpha))


def sigmoid_forward(x):
    # split by sign so exp never overflows
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1 / (1 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1 + e)
    return out


def sigmoid_backward(x, y, gy):
    return gy * y * (1 - y)


def tanh_forward(x):
    return np.tanh(x)


def tanh_backward(x, y, gy):
    return gy * (1 - y * y)


def abs_forward(x):
    return np.abs(x)


def abs_backward(x, y, gy):
    return gy * np.sign(x)


def dropout_mask(rng, shape, p, dtype):
    # inverted dropout: scale at train time so eval is the identity
    keep = rng.random(shape, dtype=np.float32) >= p
    return keep.astype(dtype) * dtype.type(1.0 / (1.0 - p))


def mul(a, b):
    return a * b


def add(a, b):
    return a + b


# ---- batch norm -------------------------------------------------------------
def batchnorm_forward(x, gamma, beta, mean, var, momentum, eps, train, cache):
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


def batchnorm_backward(gy, gamma, train, cache):
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
def log_softmax(z):
    m = z.max(axis=1, keepdims=True)
    s = z - m
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))


def softmax(z):
    return np.exp(log_softmax(z))


def softmax_xent(logits, labels):
    lp = log_softmax(logits)
    n = logits.shape[0]
    loss = -lp[np.arange(n), labels].mean()
    grad = np.exp(lp)
    grad[np.arange(n), labels] -= 1
    grad /= n
    return float(loss), grad.astype(logits.dtype, copy=False)


def mse(pred, target):
    d = pred - target
    return float((d * d).mean()), (2.0 / d.size * d).astype(pred.dtype, copy=False)


def bce_with_logits(z, t):
    # log(1 + exp(-|z|)) form: stable for large |z|
    loss = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    sig = sigmoid_forward(z)
    return float(loss.mean()), ((sig - t) / z.size).astype(z.dtype, copy=False)


# ---- optimiser updates (in place) -------------------------------------------
def sgd_update(p, g, v, lr, momentum, nesterov, weight_decay, l1, first):
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


def adam_update(p, g, m, v, lr, b1, b2, eps, weight_decay, l1, t):
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


def all_finite(arrays):
    return all(bool(np.isfinite(a).all()) for a in arrays)


def sq_norm(a):
    a = a.ravel()
    return float(np.dot(a, a))
