"""numba.cuda kernels for the CUDA backend (float32, NCHW, C-contiguous).

Conventions
-----------
* Elementwise kernels take flat 1-D views and run on 1-D grids of TPB (256)
  threads, one element per thread.
* GEMM runs on 2-D TILE x TILE (16 x 16) thread blocks with both operand tiles
  staged in shared memory; grid z walks the batch.
* Scatter-type kernels (col2im, pooling backward) are written as *gathers*:
  one thread per output pixel sums its contributions in a fixed order, so no
  atomics are needed and results are deterministic (and, for col2im and
  max-pool backward, bit-identical to the CPU kernels, which add in the same
  order).
* Reductions (per-channel sums for BatchNorm and bias gradients, whole-array
  sums for losses and norms) use one TPB-thread block per output with a
  shared-memory tree: fixed order, no atomics, deterministic.
* Float literals are float32 module constants so that float32 arithmetic does
  not get promoted to float64 on the device.

`cache=False` everywhere: kernels are compiled for the device at first use
(the simulator ignores the flag anyway).
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda, float32

TPB = 256          # threads per block for 1-D kernels and reductions (power of two)
TILE = 16          # GEMM tile edge: TILE x TILE threads per block

_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)


def blocks(n: int, tpb: int = TPB) -> int:
    return max(1, (int(n) + tpb - 1) // tpb)


@cuda.jit(device=True, inline=True)
def _imax(a, b):
    # explicit: the builtin max/min need a driver to compile offline (PTX check)
    return a if a > b else b


@cuda.jit(device=True, inline=True)
def _imin(a, b):
    return a if a < b else b


@cuda.jit(device=True, inline=True)
def _nchw(t, c_, h_, w_):
    """Flat thread index -> (n, c, y, x) of a C-contiguous NCHW array."""
    return t // (w_ * h_ * c_), (t // (w_ * h_)) % c_, (t // w_) % h_, t % w_


@cuda.jit(device=True, inline=True)
def _covering(i, k, s, n_out):
    """Along one axis: the first and last window (size k, stride s) that contain pixel i."""
    return _imax(0, (i - k) // s + 1), _imin(n_out - 1, i // s)


# ---- fill / copy ---------------------------------------------------------------
@cuda.jit(cache=False)
def fill(a, value):
    i = cuda.grid(1)
    if i < a.size:
        a[i] = value


@cuda.jit(cache=False)
def scale_copy(src, scale, out):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = src[i] * scale


# ---- GEMM ------------------------------------------------------------------------
@cuda.jit(cache=False)
def gemm(A, B, C, ta, tb, accumulate, reduce_batch):
    """C[z] (M, N) = op(A[z]) (M, K) @ op(B[z]) (K, N), batched over z.

    A, B, C are 3-D. op(X) is X or X^T (ta / tb). A batch dimension of 1
    broadcasts (shared weights). With reduce_batch the block sums the products
    of every batch entry into C[0] (e.g. a weight gradient summed over the
    samples); with accumulate the result is added to C instead of stored.
    """
    sA = cuda.shared.array((TILE, TILE), float32)
    sB = cuda.shared.array((TILE, TILE), float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    col = cuda.blockIdx.x * TILE + tx
    row = cuda.blockIdx.y * TILE + ty
    M = C.shape[1]
    N = C.shape[2]
    if ta:
        K = A.shape[1]
    else:
        K = A.shape[2]
    nz = 1
    z0 = cuda.blockIdx.z
    if reduce_batch:
        nz = _imax(A.shape[0], B.shape[0])
        z0 = 0
    ntiles = (K + TILE - 1) // TILE
    acc = _ZERO
    for zi in range(nz):
        z = z0 + zi
        za = z if A.shape[0] > 1 else 0
        zb = z if B.shape[0] > 1 else 0
        for t in range(ntiles):
            k = t * TILE + tx
            v = _ZERO
            if row < M and k < K:
                if ta:
                    v = A[za, k, row]
                else:
                    v = A[za, row, k]
            sA[ty, tx] = v
            k2 = t * TILE + ty
            w = _ZERO
            if k2 < K and col < N:
                if tb:
                    w = B[zb, col, k2]
                else:
                    w = B[zb, k2, col]
            sB[ty, tx] = w
            cuda.syncthreads()
            for kk in range(TILE):
                acc += sA[ty, kk] * sB[kk, tx]
            cuda.syncthreads()
    if row < M and col < N:
        if accumulate:
            C[cuda.blockIdx.z, row, col] += acc
        else:
            C[cuda.blockIdx.z, row, col] = acc


@cuda.jit(cache=False)
def add_channel_bias(y, b, channels, inner):
    """y (flat, layout (..., channels, inner)) += b[channel]."""
    i = cuda.grid(1)
    if i < y.size:
        y[i] += b[(i // inner) % channels]


# ---- im2col / col2im ----------------------------------------------------------------
@cuda.jit(cache=False)
def im2col(x, kh, kw, sh, sw, ph, pw, oh, ow, cols):
    """x (N,C,H,W) -> cols (N, C*kh*kw, oh*ow); one thread per element of cols."""
    t = cuda.grid(1)
    n_, ckk, p_ = cols.shape
    if t >= n_ * ckk * p_:
        return
    p = t % p_
    r = (t // p_) % ckk
    n = t // (p_ * ckk)
    c = r // (kh * kw)
    ij = r % (kh * kw)
    i = ij // kw
    j = ij % kw
    iy = (p // ow) * sh - ph + i
    ix = (p % ow) * sw - pw + j
    v = _ZERO
    if iy >= 0 and iy < x.shape[2] and ix >= 0 and ix < x.shape[3]:
        v = x[n, c, iy, ix]
    cols[n, r, p] = v


@cuda.jit(cache=False)
def col2im(cols, kh, kw, sh, sw, ph, pw, oh, ow, out):
    """Adjoint of im2col as a gather: one thread per pixel of out (N,C,H,W)."""
    t = cuda.grid(1)
    n_, c_, h_, w_ = out.shape
    if t >= n_ * c_ * h_ * w_:
        return
    n, c, iy, ix = _nchw(t, c_, h_, w_)
    acc = _ZERO
    for i in range(kh):
        ty = iy + ph - i
        if ty < 0 or ty % sh != 0:
            continue
        yo = ty // sh
        if yo >= oh:
            continue
        for j in range(kw):
            tx = ix + pw - j
            if tx < 0 or tx % sw != 0:
                continue
            xo = tx // sw
            if xo >= ow:
                continue
            acc += cols[n, (c * kh + i) * kw + j, yo * ow + xo]
    out[n, c, iy, ix] = acc


# ---- pooling ------------------------------------------------------------------------
@cuda.jit(cache=False)
def maxpool_forward(x, kh, kw, sh, sw, out, argmax):
    t = cuda.grid(1)
    n_, c_, oh, ow = out.shape
    if t >= n_ * c_ * oh * ow:
        return
    n, c, yo, xo = _nchw(t, c_, oh, ow)
    w_ = x.shape[3]
    y0 = yo * sh
    x0 = xo * sw
    best = x[n, c, y0, x0]
    arg = y0 * w_ + x0
    for i in range(kh):
        for j in range(kw):
            v = x[n, c, y0 + i, x0 + j]
            if v > best:
                best = v
                arg = (y0 + i) * w_ + x0 + j
    out[n, c, yo, xo] = best
    argmax[n, c, yo, xo] = arg


@cuda.jit(cache=False)
def maxpool_backward(gy, argmax, kh, kw, sh, sw, gx):
    """Gather: each input pixel sums gy over the windows whose max it was."""
    t = cuda.grid(1)
    n_, c_, h_, w_ = gx.shape
    if t >= n_ * c_ * h_ * w_:
        return
    n, c, iy, ix = _nchw(t, c_, h_, w_)
    oh = gy.shape[2]
    ow = gy.shape[3]
    y_lo, y_hi = _covering(iy, kh, sh, oh)
    x_lo, x_hi = _covering(ix, kw, sw, ow)
    pix = iy * w_ + ix
    acc = _ZERO
    for yo in range(y_lo, y_hi + 1):
        for xo in range(x_lo, x_hi + 1):
            if argmax[n, c, yo, xo] == pix:
                acc += gy[n, c, yo, xo]
    gx[n, c, iy, ix] = acc


@cuda.jit(cache=False)
def avgpool_forward(x, kh, kw, sh, sw, scale, out):
    t = cuda.grid(1)
    n_, c_, oh, ow = out.shape
    if t >= n_ * c_ * oh * ow:
        return
    n, c, yo, xo = _nchw(t, c_, oh, ow)
    s = _ZERO
    for i in range(kh):
        for j in range(kw):
            s += x[n, c, yo * sh + i, xo * sw + j]
    out[n, c, yo, xo] = s * scale


@cuda.jit(cache=False)
def avgpool_backward(gy, kh, kw, sh, sw, scale, gx):
    t = cuda.grid(1)
    n_, c_, h_, w_ = gx.shape
    if t >= n_ * c_ * h_ * w_:
        return
    n, c, iy, ix = _nchw(t, c_, h_, w_)
    oh = gy.shape[2]
    ow = gy.shape[3]
    y_lo, y_hi = _covering(iy, kh, sh, oh)
    x_lo, x_hi = _covering(ix, kw, sw, ow)
    acc = _ZERO
    for yo in range(y_lo, y_hi + 1):
        for xo in range(x_lo, x_hi + 1):
            acc += gy[n, c, yo, xo] * scale
    gx[n, c, iy, ix] = acc


@cuda.jit(cache=False)
def global_avgpool_forward(x, hw, scale, out):
    """One thread per (n, c) map of a flat NCHW x: the mean of its hw pixels."""
    t = cuda.grid(1)
    if t >= out.size:
        return
    s = _ZERO
    base = t * hw
    for i in range(hw):
        s += x[base + i]
    out[t] = s * scale


@cuda.jit(cache=False)
def global_avgpool_backward(gy, hw, scale, gx):
    t = cuda.grid(1)
    if t >= gx.size:
        return
    gx[t] = gy[t // hw] * scale


# ---- elementwise ------------------------------------------------------------------------
@cuda.jit(device=True, inline=True)
def _sign(v):
    if v > 0:
        return _ONE
    if v < 0:
        return -_ONE
    return _ZERO


@cuda.jit(device=True, inline=True)
def _sigmoid(v):
    if v >= 0:
        return _ONE / (_ONE + math.exp(-v))
    e = math.exp(v)
    return e / (_ONE + e)


@cuda.jit(cache=False)
def relu_forward(x, y):
    i = cuda.grid(1)
    if i < x.size:
        v = x[i]
        y[i] = _ZERO if v < 0 else v   # NaN passes through, as np.maximum does


@cuda.jit(cache=False)
def relu_backward(x, gy, gx):
    i = cuda.grid(1)
    if i < x.size:
        gx[i] = gy[i] if x[i] > 0 else _ZERO


@cuda.jit(cache=False)
def leaky_relu_forward(x, alpha, y):
    i = cuda.grid(1)
    if i < x.size:
        v = x[i]
        y[i] = v if v > 0 else v * alpha


@cuda.jit(cache=False)
def leaky_relu_backward(x, gy, alpha, gx):
    i = cuda.grid(1)
    if i < x.size:
        g = gy[i]
        gx[i] = g if x[i] > 0 else g * alpha


@cuda.jit(cache=False)
def sigmoid_forward(x, y):
    i = cuda.grid(1)
    if i < x.size:
        y[i] = _sigmoid(x[i])


@cuda.jit(cache=False)
def sigmoid_backward(y, gy, gx):
    i = cuda.grid(1)
    if i < y.size:
        v = y[i]
        gx[i] = gy[i] * v * (_ONE - v)


@cuda.jit(cache=False)
def tanh_forward(x, y):
    i = cuda.grid(1)
    if i < x.size:
        y[i] = math.tanh(x[i])


@cuda.jit(cache=False)
def tanh_backward(y, gy, gx):
    i = cuda.grid(1)
    if i < y.size:
        v = y[i]
        gx[i] = gy[i] * (_ONE - v * v)


@cuda.jit(cache=False)
def abs_forward(x, y):
    i = cuda.grid(1)
    if i < x.size:
        y[i] = abs(x[i])


@cuda.jit(cache=False)
def abs_backward(x, gy, gx):
    i = cuda.grid(1)
    if i < x.size:
        gx[i] = gy[i] * _sign(x[i])


@cuda.jit(cache=False)
def mul(a, b, out):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = a[i] * b[i]


@cuda.jit(cache=False)
def add(a, b, out):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = a[i] + b[i]


# ---- reductions ----------------------------------------------------------------------------
@cuda.jit(device=True, inline=True)
def _block_tree_sum(sh, tid):
    s = TPB // 2
    while s > 0:
        if tid < s:
            sh[tid] += sh[tid + s]
        cuda.syncthreads()
        s //= 2


@cuda.jit(cache=False)
def channel_sums(a, b, m, nb, channels, inner, mode, out):
    """One block per channel c over a flat (nb, channels, inner) layout.

    mode 0: sum a;  mode 1: sum a*b;  mode 2: sum (a - m[c])^2.
    """
    sh = cuda.shared.array(TPB, float32)
    c = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    count = nb * inner
    acc = _ZERO
    for e in range(tid, count, TPB):
        n = e // inner
        r = e - n * inner
        k = (n * channels + c) * inner + r
        if mode == 0:
            v = a[k]
        elif mode == 1:
            v = a[k] * b[k]
        else:
            d = a[k] - m[c]
            v = d * d
        acc += v
    sh[tid] = acc
    cuda.syncthreads()
    _block_tree_sum(sh, tid)
    if tid == 0:
        out[c] = sh[0]


@cuda.jit(cache=False)
def reduce_partial(a, mode, partial):
    """Grid-strided partial sums of a (mode 0) or a*a (mode 1): partial[block]."""
    sh = cuda.shared.array(TPB, float32)
    tid = cuda.threadIdx.x
    stride = cuda.gridDim.x * TPB
    acc = _ZERO
    for e in range(cuda.blockIdx.x * TPB + tid, a.size, stride):
        v = a[e]
        if mode == 1:
            v = v * v
        acc += v
    sh[tid] = acc
    cuda.syncthreads()
    _block_tree_sum(sh, tid)
    if tid == 0:
        partial[cuda.blockIdx.x] = sh[0]


@cuda.jit(cache=False)
def nonfinite_flag(a, flags, slot):
    i = cuda.grid(1)
    if i < a.size:
        v = a[i]
        if math.isnan(v) or math.isinf(v):
            flags[slot] = 1


# ---- batch norm -------------------------------------------------------------------------------
@cuda.jit(cache=False)
def bn_stats(sums, sqsums, count, unbias, mean, var, momentum, eps, train, m_out, inv_out):
    """Per channel: batch stats + running-stat update (train) or running stats (eval)."""
    c = cuda.grid(1)
    if c >= mean.size:
        return
    if train:
        m = sums[c] / count
        v = sqsums[c] / count
        mean[c] = mean[c] * (_ONE - momentum) + momentum * m
        var[c] = var[c] * (_ONE - momentum) + momentum * v * unbias
    else:
        m = mean[c]
        v = var[c]
    m_out[c] = m
    inv_out[c] = _ONE / math.sqrt(v + eps)


@cuda.jit(cache=False)
def bn_apply(x, m, inv, gamma, beta, channels, inner, xhat, y):
    i = cuda.grid(1)
    if i < x.size:
        c = (i // inner) % channels
        h = (x[i] - m[c]) * inv[c]
        xhat[i] = h
        y[i] = h * gamma[c] + beta[c]


@cuda.jit(cache=False)
def bn_backward(gy, xhat, gamma, inv, sum_gy, sum_gyxhat, count, train, channels, inner, gx):
    """gx from the per-channel sums of gy and gy*xhat (the sums of g = gy*gamma follow)."""
    i = cuda.grid(1)
    if i < gy.size:
        c = (i // inner) % channels
        g = gy[i] * gamma[c]
        if train:
            gx[i] = (inv[c] / count) * (count * g - gamma[c] * sum_gy[c]
                                        - xhat[i] * (gamma[c] * sum_gyxhat[c]))
        else:
            gx[i] = g * inv[c]


# ---- losses ------------------------------------------------------------------------------------
@cuda.jit(cache=False)
def softmax_xent_rows(z, labels, nf, rowloss, grad):
    """One thread per row: -log softmax(z)[label] and (softmax - onehot) / n."""
    r = cuda.grid(1)
    if r >= z.shape[0]:
        return
    k_ = z.shape[1]
    mx = z[r, 0]
    for k in range(1, k_):
        if z[r, k] > mx:
            mx = z[r, k]
    s = _ZERO
    for k in range(k_):
        s += math.exp(z[r, k] - mx)
    ls = math.log(s)
    lab = labels[r]
    rowloss[r] = -(z[r, lab] - mx - ls)
    for k in range(k_):
        g = math.exp(z[r, k] - mx - ls)
        if k == lab:
            g -= _ONE
        grad[r, k] = g / nf


@cuda.jit(cache=False)
def mse_elems(p, t, scale, sq, grad):
    i = cuda.grid(1)
    if i < p.size:
        d = p[i] - t[i]
        sq[i] = d * d
        grad[i] = scale * d


@cuda.jit(cache=False)
def bce_elems(z, t, nf, loss, grad):
    i = cuda.grid(1)
    if i < z.size:
        v = z[i]
        tv = t[i]
        loss[i] = (v if v > 0 else _ZERO) - v * tv + math.log1p(math.exp(-abs(v)))
        grad[i] = (_sigmoid(v) - tv) / nf


# ---- optimisers ----------------------------------------------------------------------------------
@cuda.jit(cache=False)
def sgd_update(p, g, v, lr, momentum, nesterov, weight_decay, l1, first):
    i = cuda.grid(1)
    if i >= p.size:
        return
    pi = p[i]
    gi = g[i]
    if weight_decay != 0:
        gi = gi + weight_decay * pi
    if l1 != 0:
        gi = gi + l1 * _sign(pi)
    if momentum != 0:
        if first:
            vi = gi
        else:
            vi = v[i] * momentum + gi
        v[i] = vi
        if nesterov:
            gi = gi + momentum * vi
        else:
            gi = vi
    p[i] = pi - lr * gi


@cuda.jit(cache=False)
def adam_update(p, g, m, v, b1, b2, step, sqrt_c2, eps, weight_decay, l1):
    i = cuda.grid(1)
    if i >= p.size:
        return
    pi = p[i]
    gi = g[i]
    if weight_decay != 0:
        gi = gi + weight_decay * pi
    if l1 != 0:
        gi = gi + l1 * _sign(pi)
    mi = m[i] * b1 + (_ONE - b1) * gi
    vi = v[i] * b2 + (_ONE - b2) * gi * gi
    m[i] = mi
    v[i] = vi
    p[i] = pi - step * (mi / (math.sqrt(vi) / sqrt_c2 + eps))
