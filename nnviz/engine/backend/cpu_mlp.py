"""Fused kernels for plain MLPs (Dense + activation layers): the whole training step with
softmax cross-entropy, and the eval-mode forward of large batches.

`mlp_step` gathers the batch, runs forward, loss, backward and the SGD/Adam update with the
same float operations as the layer-by-layer path (up to the summation order inside the
matrix products). Parameters, gradients and optimiser state live in flat arrays whose
views the layers and the optimiser hold. Which models and trainers qualify, and the flat
layout, are planned outside the backend: nnviz.engine.fused_mlp (forward) and
nnviz.train.fused_mlp (training step). Layer table rows: (weight offset, bias offset, in, out).
"""
from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numba import njit, prange

from .jitcache import cache_enabled

_opts: dict[str, Any] = dict(cache=cache_enabled(), nogil=True)   # False: read-only everywhere
_fast: dict[str, Any] = dict(_opts, error_model="numpy")   # no ZeroDivisionError branch: lets loops vectorise

# activation after a Dense layer -> the kernels' code (0: none)
MLP_ACT_CODES = {"ReLU": 1, "Tanh": 2, "Sigmoid": 3}


@njit(inline="always")
def _tanh_rational(x):
    # Rational approximation of tanh (Eigen's float version): within 3.5e-7 of the exact
    # value (about 3 ulp near 1; np.tanh/tanhf are within 1 ulp) at a fifth of tanhf's cost.
    c = np.float32(7.90531110763549805)
    if x > c:
        x = c
    if x < -c:
        x = -c
    x2 = x * x
    p = x2 * np.float32(-2.76076847742355e-16) + np.float32(2.00018790482477e-13)
    p = p * x2 + np.float32(-8.60467152213735e-11)
    p = p * x2 + np.float32(5.12229709037114e-08)
    p = p * x2 + np.float32(1.48572235717979e-05)
    p = p * x2 + np.float32(6.37261928875436e-04)
    p = p * x2 + np.float32(4.89352455891786e-03)
    p = x * p
    q = x2 * np.float32(1.19825839466702e-06) + np.float32(1.18534705686654e-04)
    q = q * x2 + np.float32(2.26843463243900e-03)
    q = q * x2 + np.float32(4.89352518554385e-03)
    return p / q


@njit(**_fast)
def _act(z, code, fast):
    if code == 1:
        return z if z > 0 else z * 0
    if code == 2:
        if fast:
            return _tanh_rational(z)
        return np.tanh(z)
    if code == 3:
        one = z * 0 + 1
        if z >= 0:
            return one / (one + np.exp(-z))
        e = np.exp(z)
        return e / (one + e)
    return z


@njit(**_fast)
def mlp_step(X, Y, perm, pos, b, P, G, S1, S2, lay, acts, opt_kind, lr, mom, nesterov,
             b1, b2, eps, t, out, fast):
    """lay[l] = (weight offset, bias offset, in, out); opt_kind 0: SGD, 1: Adam. Returns a
    status code: 0 applied, 1 loss not finite, 2 gradient not finite. out = [loss, correct]."""
    dt = P.dtype.type
    zero = dt(0)
    one = dt(1)
    L = lay.shape[0]
    hoff = np.empty(L + 1, np.int64)
    o = b * lay[0, 2]
    hoff[0] = 0
    maxd = lay[0, 2]
    for l in range(L):
        hoff[l + 1] = o
        o += b * lay[l, 3]
        if lay[l, 3] > maxd:
            maxd = lay[l, 3]
    H = np.empty(o, P.dtype)
    d0 = lay[0, 2]
    for r in range(b):
        src = X[perm[pos + r]]
        for k in range(d0):
            H[r * d0 + k] = src[k]
    # forward: h[l+1] = act(h[l] @ W.T + bias)
    for l in range(L):
        wo, bo, din, dout = lay[l, 0], lay[l, 1], lay[l, 2], lay[l, 3]
        hi, ho = hoff[l], hoff[l + 1]
        code = acts[l]
        for r in range(b):
            for j in range(dout):
                acc = zero
                for k in range(din):
                    acc += H[hi + r * din + k] * P[wo + j * din + k]
                H[ho + r * dout + j] = _act(acc + P[bo + j], code, fast)
    # softmax cross-entropy, mean over the batch
    k_ = lay[L - 1, 3]
    zo = hoff[L]
    D = np.empty(b * maxd, P.dtype)
    E = np.empty(b * maxd, P.dtype)
    lsum = zero
    correct = 0
    nb = dt(b)
    for r in range(b):
        base = zo + r * k_
        m = H[base]
        am = 0
        for j in range(1, k_):
            if H[base + j] > m:
                m = H[base + j]
                am = j
        if k_ == 1:
            am = 1 if H[base] > 0 else 0
        lab = Y[perm[pos + r]]
        if am == lab:
            correct += 1
        se = zero
        for j in range(k_):
            se += np.exp(H[base + j] - m)
        lse = np.log(se)
        for j in range(k_):
            lp = (H[base + j] - m) - lse
            g = np.exp(lp)
            if j == lab:
                lsum -= lp
                g -= one
            D[r * k_ + j] = g / nb
    loss = lsum / nb
    out[0] = loss
    out[1] = correct
    if not np.isfinite(loss):
        return 1
    # backward; D holds d loss / d h[l+1]
    chk = zero
    for l in range(L - 1, -1, -1):
        wo, bo, din, dout = lay[l, 0], lay[l, 1], lay[l, 2], lay[l, 3]
        hi, ho = hoff[l], hoff[l + 1]
        code = acts[l]
        if code != 0:
            for r in range(b):
                for j in range(dout):
                    y = H[ho + r * dout + j]
                    g = D[r * dout + j]
                    if code == 1:
                        g = g if y > 0 else zero
                    elif code == 2:
                        g = g * (one - y * y)
                    else:
                        g = g * y * (one - y)
                    D[r * dout + j] = g
        for j in range(dout):
            sb = zero
            for r in range(b):
                sb += D[r * dout + j]
            G[bo + j] = sb
            chk += sb * 0
            for k in range(din):
                acc = zero
                for r in range(b):
                    acc += D[r * dout + j] * H[hi + r * din + k]
                G[wo + j * din + k] = acc
                chk += acc * 0
        if l > 0:
            for r in range(b):
                for k in range(din):
                    acc = zero
                    for j in range(dout):
                        acc += D[r * dout + j] * P[wo + j * din + k]
                    E[r * din + k] = acc
            D, E = E, D
    if chk != 0 or not np.isfinite(chk):
        return 2
    # update, as backend.cpu.sgd_update / adam_update
    n = P.shape[0]
    if opt_kind == 0:
        lr_ = dt(lr)
        if mom != 0:
            mo = dt(mom)
            for i in range(n):
                g = G[i]
                v = g if t == 1 else S1[i] * mo + g
                S1[i] = v
                if nesterov:
                    P[i] -= lr_ * (g + mo * v)
                else:
                    P[i] -= lr_ * v
        else:
            for i in range(n):
                P[i] -= lr_ * G[i]
    else:
        b1_ = dt(b1)
        c1b = dt(1 - b1)
        b2_ = dt(b2)
        c2b = dt(1 - b2)
        c1 = 1 - b1 ** t
        sc2 = np.sqrt(1 - b2 ** t)
        step = lr / c1
        for i in range(n):
            g = G[i]
            m = S1[i] * b1_ + c1b * g
            v = S2[i] * b2_ + c2b * g * g
            S1[i] = m
            S2[i] = v
            den = np.float64(np.sqrt(v)) / sc2 + eps
            P[i] -= dt(step * (np.float64(m) / den))
    return 0


# ---- fused inference forward for plain MLPs (decision-boundary grids, predict) --------------
# Rows per block, feature-major, inner loops over rows. 256 rows (L1-sized) left the loops
# too short: 1536 (two 16-feature scratch blocks of 96 KiB, in L2) made the 200x200 grid
# 0.69 -> 0.43 ms on one AVX-512 core and 0.87 -> 0.64 ms with AVX2 code.
_BLOCK = 1536


@njit(fastmath={"contract"}, **_fast)
def _dense_row(P, w0, bias, A, din, R, z):
    # z[r] = bias + sum_k P[w0+k] * A[k, r], four inputs per pass over z: the loads and
    # stores of z, not the multiply-adds, bound the plain one-input-per-pass loop
    k = 0
    if din >= 4:
        a0, a1, a2, a3 = A[0], A[1], A[2], A[3]
        c0, c1, c2, c3 = P[w0], P[w0 + 1], P[w0 + 2], P[w0 + 3]
        for r in range(R):
            z[r] = bias + c0 * a0[r] + c1 * a1[r] + c2 * a2[r] + c3 * a3[r]
        k = 4
    else:
        for r in range(R):
            z[r] = bias
    while k + 4 <= din:
        a0, a1, a2, a3 = A[k], A[k + 1], A[k + 2], A[k + 3]
        c0, c1, c2, c3 = P[w0 + k], P[w0 + k + 1], P[w0 + k + 2], P[w0 + k + 3]
        for r in range(R):
            z[r] += c0 * a0[r] + c1 * a1[r] + c2 * a2[r] + c3 * a3[r]
        k += 4
    while k < din:
        a0 = A[k]
        c0 = P[w0 + k]
        for r in range(R):
            z[r] += c0 * a0[r]
        k += 1


@njit(fastmath={"contract"}, **_fast)
def _dense_rows4(P, w0, b0, A, din, R, z0, z1, z2, z3):
    # four outputs at once: each load of an input row feeds four multiply-adds
    d = din
    e0, e1, e2, e3 = P[b0], P[b0 + 1], P[b0 + 2], P[b0 + 3]
    if din == 2:   # 2-D points: the first layer of every Playground net, in one pass
        a0, a1 = A[0], A[1]
        c00, c01, c10, c11 = P[w0], P[w0 + 1], P[w0 + d], P[w0 + d + 1]
        c20, c21, c30, c31 = P[w0 + 2 * d], P[w0 + 2 * d + 1], P[w0 + 3 * d], P[w0 + 3 * d + 1]
        for r in range(R):
            u0 = a0[r]
            u1 = a1[r]
            z0[r] = e0 + c00 * u0 + c01 * u1
            z1[r] = e1 + c10 * u0 + c11 * u1
            z2[r] = e2 + c20 * u0 + c21 * u1
            z3[r] = e3 + c30 * u0 + c31 * u1
        return
    k = 0
    if din < 4:
        for r in range(R):
            z0[r] = e0
            z1[r] = e1
            z2[r] = e2
            z3[r] = e3
    while k + 4 <= din:
        a0, a1, a2, a3 = A[k], A[k + 1], A[k + 2], A[k + 3]
        c00, c01, c02, c03 = P[w0 + k], P[w0 + k + 1], P[w0 + k + 2], P[w0 + k + 3]
        e = w0 + d + k
        c10, c11, c12, c13 = P[e], P[e + 1], P[e + 2], P[e + 3]
        e += d
        c20, c21, c22, c23 = P[e], P[e + 1], P[e + 2], P[e + 3]
        e += d
        c30, c31, c32, c33 = P[e], P[e + 1], P[e + 2], P[e + 3]
        if k == 0:   # the first pass writes bias + products: no separate bias pass
            for r in range(R):
                u0 = a0[r]
                u1 = a1[r]
                u2 = a2[r]
                u3 = a3[r]
                z0[r] = e0 + (c00 * u0 + c01 * u1 + c02 * u2 + c03 * u3)
                z1[r] = e1 + (c10 * u0 + c11 * u1 + c12 * u2 + c13 * u3)
                z2[r] = e2 + (c20 * u0 + c21 * u1 + c22 * u2 + c23 * u3)
                z3[r] = e3 + (c30 * u0 + c31 * u1 + c32 * u2 + c33 * u3)
        else:
            for r in range(R):
                u0 = a0[r]
                u1 = a1[r]
                u2 = a2[r]
                u3 = a3[r]
                z0[r] += c00 * u0 + c01 * u1 + c02 * u2 + c03 * u3
                z1[r] += c10 * u0 + c11 * u1 + c12 * u2 + c13 * u3
                z2[r] += c20 * u0 + c21 * u1 + c22 * u2 + c23 * u3
                z3[r] += c30 * u0 + c31 * u1 + c32 * u2 + c33 * u3
        k += 4
    while k < din:
        a0 = A[k]
        c0, c1, c2, c3 = P[w0 + k], P[w0 + d + k], P[w0 + 2 * d + k], P[w0 + 3 * d + k]
        for r in range(R):
            u = a0[r]
            z0[r] += c0 * u
            z1[r] += c1 * u
            z2[r] += c2 * u
            z3[r] += c3 * u
        k += 1


@njit(fastmath={"contract"}, **_fast)
def _forward_block(X, P, lay, acts, fast_tanh, r0, R, A, Z, Y):
    L = lay.shape[0]
    dt = P.dtype.type
    d0 = lay[0, 2]
    for r in range(R):
        for k in range(d0):
            A[k, r] = X[r0 + r, k]
    for l in range(L):
        wo, bo, din, dout = lay[l, 0], lay[l, 1], lay[l, 2], lay[l, 3]
        code = acts[l]
        j4 = dout - dout % 4
        for j in range(0, j4, 4):
            _dense_rows4(P, wo + j * din, bo + j, A, din, R, Z[j], Z[j + 1], Z[j + 2], Z[j + 3])
        for j in range(j4, dout):
            _dense_row(P, wo + j * din, P[bo + j], A, din, R, Z[j])
        for j in range(dout):
            zj = Z[j]
            if code == 1:
                z0 = dt(0)
                for r in range(R):
                    v = zj[r]
                    zj[r] = v if v > z0 else z0
            elif code == 2:
                if fast_tanh:
                    for r in range(R):
                        zj[r] = _tanh_rational(zj[r])
                else:
                    for r in range(R):
                        zj[r] = np.tanh(zj[r])
            elif code == 3:
                for r in range(R):
                    zj[r] = _act(zj[r], 3, False)
        A, Z = Z, A
    k_ = lay[L - 1, 3]
    for r in range(R):
        for j in range(k_):
            Y[r0 + r, j] = A[j, r]


@njit(parallel=True, **_opts)
def mlp_forward_blocks(X, P, lay, acts, maxd, fast_tanh, ntask, Y):
    # ntask contiguous runs of blocks, one scratch pair each; rows are independent, so the
    # split never changes a result
    n = X.shape[0]
    nblk = (n + _BLOCK - 1) // _BLOCK
    for t in prange(ntask):
        A = np.empty((maxd, _BLOCK), P.dtype)   # feature-major: inner loops over rows
        Z = np.empty((maxd, _BLOCK), P.dtype)
        for blk in range((nblk * t) // ntask, (nblk * (t + 1)) // ntask):
            r0 = blk * _BLOCK
            _forward_block(X, P, lay, acts, fast_tanh, r0, min(_BLOCK, n - r0), A, Z, Y)


def mlp_forward(X: np.ndarray, P: np.ndarray, lay: np.ndarray, acts: np.ndarray, maxd: int,
                fast_tanh: bool, Y: np.ndarray) -> None:
    """Y = the plain MLP described by (P, lay, acts) applied to the rows of X, blocks of rows
    spread over the threads."""
    nblk = -(-X.shape[0] // _BLOCK)
    mlp_forward_blocks(X, P, lay, acts, maxd, fast_tanh, min(nblk, 2 * numba.get_num_threads()), Y)
