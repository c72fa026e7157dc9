"""Numba kernels for the CPU backend, ordered by operation: convolution, pooling, then
activations, the loss, optimiser updates and finite checks.

Each kernel walks whole rows so the innermost loop is a contiguous run: the
valid column range is computed once per row instead of testing every pixel,
which is what lets LLVM vectorise it.
"""
import types
from typing import Any

import numpy as np
from numba import njit, prange

from .jitcache import cache_enabled

_opts: dict[str, Any] = dict(cache=cache_enabled(), nogil=True)   # False: read-only everywhere


def _serial_and_parallel(impl):
    """A serial and a parallel dispatcher of one kernel body: every such twin in this file
    is named `<op>_s` / `<op>_p` (e.g. `conv_fwd_s`, `conv_fwd_p`); the backend picks one by
    the size of the work. Kernels without a twin keep a plain name.

    Numba's on-disk cache names entries after the function and keys them by signature,
    not by the parallel flag: two jits of one function would load each other's code.
    The parallel copy therefore gets a name of its own.
    """
    par = types.FunctionType(impl.__code__, impl.__globals__, impl.__name__ + "_parallel",
                             impl.__defaults__, impl.__closure__)
    par.__qualname__ = impl.__qualname__ + "_parallel"
    return njit(**_opts)(impl), njit(parallel=True, **_opts)(par)


@njit(inline="always")
def _valid_range(j, stride, pad, width, out_w):
    # output columns xo with 0 <= xo*stride - pad + j < width
    lo = 0
    if pad - j > 0:
        lo = (pad - j + stride - 1) // stride
    hi = (width - 1 + pad - j) // stride + 1
    if hi > out_w:
        hi = out_w
    if hi < lo:
        hi = lo
    return lo, hi


# ---- whole-batch im2col / col2im (ConvTranspose2D) ------------------------------------------
@njit(parallel=True, **_opts)
def im2col(x, kh, kw, sh, sw, ph, pw, oh, ow, cols):
    """x (N,C,H,W) -> cols (N, C*kh*kw, oh*ow)."""
    n_, c_, h_, w_ = x.shape
    for nc in prange(n_ * c_):
        n = nc // c_
        c = nc % c_
        for i in range(kh):
            for j in range(kw):
                dst = cols[n, (c * kh + i) * kw + j]
                lo, hi = _valid_range(j, sw, pw, w_, ow)
                for y in range(oh):
                    iy = y * sh - ph + i
                    base = y * ow
                    if iy < 0 or iy >= h_:
                        for xo in range(ow):
                            dst[base + xo] = 0
                        continue
                    src = x[n, c, iy]
                    for xo in range(lo):
                        dst[base + xo] = 0
                    off = j - pw
                    for xo in range(lo, hi):
                        dst[base + xo] = src[xo * sw + off]
                    for xo in range(hi, ow):
                        dst[base + xo] = 0


@njit(parallel=True, **_opts)
def col2im(cols, kh, kw, sh, sw, ph, pw, oh, ow, out):
    """Adjoint of im2col: accumulate cols (N, C*kh*kw, oh*ow) into out (N,C,H,W).

    One task per (n, c) plane, so no two threads write the same pixel and the
    sum order is fixed: results are bit-identical run to run.
    """
    n_, c_, h_, w_ = out.shape
    for nc in prange(n_ * c_):
        n = nc // c_
        c = nc % c_
        plane = out[n, c]
        plane[:, :] = 0
        for i in range(kh):
            for j in range(kw):
                src = cols[n, (c * kh + i) * kw + j]
                lo, hi = _valid_range(j, sw, pw, w_, ow)
                off = j - pw
                for y in range(oh):
                    iy = y * sh - ph + i
                    if iy < 0 or iy >= h_:
                        continue
                    dst = plane[iy]
                    base = y * ow
                    for xo in range(lo, hi):
                        dst[xo * sw + off] += src[base + xo]


# ---- batched convolution: im2col + GEMM per chunk of samples ------------------------
# A chunk holds samples n0..n1; its columns are laid out (C*kh*kw, m*oh*ow) so one GEMM
# covers the whole chunk. Chunks run in parallel (prange) or, for small work, in the
# calling thread. Per-chunk weight gradients are summed in chunk order afterwards, so the
# result depends only on the chunk count (a function of the shapes), never on scheduling.

@njit(**_opts)
def _im2col_chunk(x, kh, kw, sh, sw, ph, pw, oh, ow, n0, n1, cols):
    c_, h_, w_ = x.shape[1], x.shape[2], x.shape[3]
    ohw = oh * ow
    for n in range(n0, n1):
        off0 = (n - n0) * ohw
        for c in range(c_):
            for i in range(kh):
                for j in range(kw):
                    dst = cols[(c * kh + i) * kw + j]
                    lo, hi = _valid_range(j, sw, pw, w_, ow)
                    off = j - pw
                    for y in range(oh):
                        iy = y * sh - ph + i
                        base = off0 + y * ow
                        if iy < 0 or iy >= h_:
                            for xo in range(ow):
                                dst[base + xo] = 0
                            continue
                        if lo > 0:
                            dst[base:base + lo] = 0
                        if sw == 1:
                            _copy(dst[base + lo:base + hi], x[n, c, iy, lo + off:hi + off])
                        else:
                            dst[base + lo:base + hi] = x[n, c, iy, lo * sw + off:(hi - 1) * sw + off + 1:sw]
                        if hi < ow:
                            dst[base + hi:base + ow] = 0


@njit(**_opts)
def _col2im_chunk(cols, kh, kw, sh, sw, ph, pw, oh, ow, n0, n1, out):
    c_, h_, w_ = out.shape[1], out.shape[2], out.shape[3]
    ohw = oh * ow
    for n in range(n0, n1):
        off0 = (n - n0) * ohw
        for c in range(c_):
            plane = out[n, c]
            plane[:, :] = 0
            for i in range(kh):
                for j in range(kw):
                    src = cols[(c * kh + i) * kw + j]
                    lo, hi = _valid_range(j, sw, pw, w_, ow)
                    off = j - pw
                    for y in range(oh):
                        iy = y * sh - ph + i
                        if iy < 0 or iy >= h_:
                            continue
                        dst = plane[iy]
                        base = off0 + y * ow
                        if sw == 1:
                            for xo in range(lo, hi):
                                dst[xo + off] += src[base + xo]
                        else:
                            for xo in range(lo, hi):
                                dst[xo * sw + off] += src[base + xo]


@njit(inline="always")
def _chunk_bounds(n, nch, t):
    return (n * t) // nch, (n * (t + 1)) // nch


@njit(**_opts)
def _conv_fwd_chunk(x, w2, b, kh, kw, sh, sw, ph, pw, oh, ow, n0, n1, colsflat, yflat, relu, y):
    ckk, o_ = w2.shape[1], w2.shape[0]
    ohw = oh * ow
    L = (n1 - n0) * ohw
    cols = colsflat[:ckk * L].reshape(ckk, L)
    _im2col_chunk(x, kh, kw, sh, sw, ph, pw, oh, ow, n0, n1, cols)
    yb = yflat[:o_ * L].reshape(o_, L)
    np.dot(w2, cols, yb)
    hasb = b.shape[0] == o_
    for n in range(n0, n1):
        off = (n - n0) * ohw
        yn = y[n].reshape(o_, ohw)
        for o in range(o_):
            bo = b[o] if hasb else yb.dtype.type(0)
            _copy_add(yn[o], yb[o, off:off + ohw], bo, relu)


def _conv_fwd_impl(x, w2, b, kh, kw, sh, sw, ph, pw, oh, ow, nch, cols, ybuf, relu, y):
    n = x.shape[0]
    for t in prange(nch):
        n0, n1 = _chunk_bounds(n, nch, t)
        _conv_fwd_chunk(x, w2, b, kh, kw, sh, sw, ph, pw, oh, ow, n0, n1, cols[t], ybuf[t],
                        relu, y)


conv_fwd_s, conv_fwd_p = _serial_and_parallel(_conv_fwd_impl)


@njit(**_opts)
def _conv_bwd_chunk(w2, gy, kh, kw, sh, sw, ph, pw, oh, ow, n0, n1, colsflat, gflat,
                    gcolsflat, gwp, gbp, need_gx, gx):
    ckk, o_ = w2.shape[1], w2.shape[0]
    ohw = oh * ow
    L = (n1 - n0) * ohw
    cols = colsflat[:ckk * L].reshape(ckk, L)
    g = gflat[:o_ * L].reshape(o_, L)
    for n in range(n0, n1):
        off = (n - n0) * ohw
        gn = gy[n].reshape(o_, ohw)
        for o in range(o_):
            src = gn[o]
            dst = g[o]
            for p in range(ohw):
                dst[off + p] = src[p]
    np.dot(cols, g.T, gwp)   # (ckk, o): BLAS runs this shape 1.5-1.7x faster than (o, ckk)
    for o in range(o_):
        s = 0.0
        row = g[o]
        for p in range(L):
            s += row[p]
        gbp[o] = s
    if need_gx:
        gcols = gcolsflat[:ckk * L].reshape(ckk, L)
        np.dot(w2.T, g, gcols)
        _col2im_chunk(gcols, kh, kw, sh, sw, ph, pw, oh, ow, n0, n1, gx)


@njit(**_opts)
def _sum_chunks(gwp, gbp, gw, gb):
    # per-chunk weight (ckk, o) and bias gradients summed in chunk order: deterministic
    nch = gwp.shape[0]
    gw[:, :] = gwp[0].T
    for t in range(1, nch):
        gw += gwp[t].T
    for o in range(gb.shape[0]):
        s = 0.0
        for t in range(nch):
            s += gbp[t, o]
        gb[o] = s


def _conv_bwd_impl(w2, gy, kh, kw, sh, sw, ph, pw, oh, ow, nch, cols, gbuf, gcols, gwp, gbp,
                   need_gx, gx, gw, gb):
    n = gy.shape[0]
    for t in prange(nch):
        n0, n1 = _chunk_bounds(n, nch, t)
        _conv_bwd_chunk(w2, gy, kh, kw, sh, sw, ph, pw, oh, ow, n0, n1, cols[t], gbuf[t],
                        gcols[t], gwp[t], gbp[t], need_gx, gx)
    _sum_chunks(gwp, gbp, gw, gb)


conv_bwd_s, conv_bwd_p = _serial_and_parallel(_conv_bwd_impl)


# ---- stride-1 convolution on the padded plane flattened to 1-D ("wide" columns) ------------
# With stride 1, output row y, column x reads padded pixel (y+i)*Wp + (x+j). Computing the
# output on all Wp columns of each row (the last Wp-ow are discarded) makes every im2col row
# of a plane ONE contiguous copy, xp[i*Wp+j : i*Wp+j+oh*Wp], instead of oh short ones.

@njit(**_opts)
def _pad_plane(x, n, c, ph, pw, wp, xp):
    h_, w_ = x.shape[2], x.shape[3]
    if ph or pw:
        _fill0(xp)
    else:
        _fill0(xp[h_ * wp:])
    for y in range(h_):
        base = (y + ph) * wp + pw
        _copy(xp[base:base + w_], x[n, c, y])


@njit(**_opts)
def _copy_add(dst, src, b, relu):
    # a function of its own: LLVM vectorises the loop behind a runtime overlap check.
    # relu: the following ReLU layer's work, done while the row is in registers
    if relu:
        z = dst.dtype.type(0)
        for q in range(dst.shape[0]):
            v = src[q] + b
            dst[q] = v if v > z else z
    else:
        for q in range(dst.shape[0]):
            dst[q] = src[q] + b


@njit(**_opts)
def _copy(dst, src):
    # a vectorised loop; Numba's slice assignment copies element by element (measured:
    # LeNet conv2 forward 8.1 -> 5.8 ms at batch 256 on one core)
    for q in range(dst.shape[0]):
        dst[q] = src[q]


@njit(**_opts)
def _fill0(dst):
    z = dst.dtype.type(0)
    for q in range(dst.shape[0]):
        dst[q] = z


@njit(**_opts)
def _copy_sum(dst, src):
    s = 0.0
    for q in range(dst.shape[0]):
        v = src[q]
        dst[q] = v
        s += v
    return s


@njit(**_opts)
def _conv_fwd_wide_chunk(x, w2, b, kh, kw, ph, pw, oh, ow, n0, n1, colsflat, yflat, relu, y):
    c_, h_, w_ = x.shape[1], x.shape[2], x.shape[3]
    o_, ckk = w2.shape[0], w2.shape[1]
    hp, wp = h_ + 2 * ph, w_ + 2 * pw
    seg = oh * wp
    L = (n1 - n0) * seg
    cols = colsflat[:ckk * L].reshape(ckk, L)
    xp = np.empty(hp * wp + kw, x.dtype)
    for n in range(n0, n1):
        off0 = (n - n0) * seg
        for c in range(c_):
            _pad_plane(x, n, c, ph, pw, wp, xp)
            for i in range(kh):
                for j in range(kw):
                    s = i * wp + j
                    _copy(cols[(c * kh + i) * kw + j, off0:off0 + seg], xp[s:s + seg])
    yb = yflat[:o_ * L].reshape(o_, L)
    np.dot(w2, cols, yb)
    hasb = b.shape[0] == o_
    for n in range(n0, n1):
        off0 = (n - n0) * seg
        for o in range(o_):
            bo = b[o] if hasb else yb.dtype.type(0)
            for yy in range(oh):
                base = off0 + yy * wp
                _copy_add(y[n, o, yy], yb[o, base:base + ow], bo, relu)


def _conv_fwd_wide_impl(x, w2, b, kh, kw, ph, pw, oh, ow, nch, cols, ybuf, relu, y):
    n = x.shape[0]
    for t in prange(nch):
        n0, n1 = _chunk_bounds(n, nch, t)
        _conv_fwd_wide_chunk(x, w2, b, kh, kw, ph, pw, oh, ow, n0, n1, cols[t], ybuf[t], relu,
                             y)


conv_fwd_wide_s, conv_fwd_wide_p = _serial_and_parallel(_conv_fwd_wide_impl)


@njit(**_opts)
def _acc(dst, src):
    for q in range(dst.shape[0]):
        dst[q] += src[q]


@njit(**_opts)
def _conv_bwd_wide_chunk(w2, gy, c_, h_, w_, kh, kw, ph, pw, oh, ow, n0, n1, colsflat, gflat,
                         gcolsflat, gwp, gbp, need_gx, gx):
    o_, ckk = w2.shape[0], w2.shape[1]
    hp, wp = h_ + 2 * ph, w_ + 2 * pw
    seg = oh * wp
    L = (n1 - n0) * seg
    cols = colsflat[:ckk * L].reshape(ckk, L)
    g = gflat[:o_ * L].reshape(o_, L)
    for o in range(o_):
        gbp[o] = 0.0
    for n in range(n0, n1):
        off0 = (n - n0) * seg
        for o in range(o_):
            s = 0.0
            for yy in range(oh):
                base = off0 + yy * wp
                s += _copy_sum(g[o, base:base + ow], gy[n, o, yy])
                _fill0(g[o, base + ow:base + wp])
            gbp[o] += s
    np.dot(cols, g.T, gwp)   # (ckk, o): BLAS runs this shape 1.5-1.7x faster than (o, ckk)
    if need_gx:
        gcols = gcolsflat[:ckk * L].reshape(ckk, L)
        np.dot(w2.T, g, gcols)
        xg = np.empty(hp * wp + kw, w2.dtype)
        for n in range(n0, n1):
            off0 = (n - n0) * seg
            for c in range(c_):
                _fill0(xg)
                for i in range(kh):
                    for j in range(kw):
                        s0 = i * wp + j
                        _acc(xg[s0:s0 + seg], gcols[(c * kh + i) * kw + j, off0:off0 + seg])
                for yy in range(h_):
                    base = (yy + ph) * wp + pw
                    _copy(gx[n, c, yy], xg[base:base + w_])


def _conv_bwd_wide_impl(w2, gy, c_, h_, w_, kh, kw, ph, pw, oh, ow, nch, cols, gbuf, gcols,
                        gwp, gbp, need_gx, gx, gw, gb):
    n = gy.shape[0]
    for t in prange(nch):
        n0, n1 = _chunk_bounds(n, nch, t)
        _conv_bwd_wide_chunk(w2, gy, c_, h_, w_, kh, kw, ph, pw, oh, ow, n0, n1, cols[t],
                             gbuf[t], gcols[t], gwp[t], gbp[t], need_gx, gx)
    _sum_chunks(gwp, gbp, gw, gb)


conv_bwd_wide_s, conv_bwd_wide_p = _serial_and_parallel(_conv_bwd_wide_impl)


# ---- direct stride-1 convolution on the wide planes, without im2col ---------------------------
# For few input channels (a network's first layers: c*kh*kw of 25-75) the im2col + GEMM
# path spends most of its time copying columns, and BLAS runs a 6-row GEMM at a third of its
# speed. Here every kernel row updates a whole wide output plane in one vectorised pass:
#   out[co, p] += sum_j w[co, ci, i, j] * inp[ci, i*Wp + j + p],  p over oh*Wp,
# with the padded input planes flattened as in the wide path. The input gradient is the same
# correlation of the wide output gradient (zero in its Wp-ow extra columns, with a zero margin
# of (kh-1)*Wp + kw-1 in front) with the flipped, transposed kernel.

@njit(**_opts)
def _row5(acc, x, s, w):
    w0, w1, w2, w3, w4 = w[0], w[1], w[2], w[3], w[4]
    n = acc.shape[0]
    # slices, not x[s + p + j]: an index LLVM cannot prove non-negative keeps Numba's
    # wraparound test in the loop, and the loop then does not vectorise
    x0, x1, x2 = x[s:s + n], x[s + 1:s + 1 + n], x[s + 2:s + 2 + n]
    x3, x4 = x[s + 3:s + 3 + n], x[s + 4:s + 4 + n]
    for p in range(n):
        acc[p] += w0 * x0[p] + w1 * x1[p] + w2 * x2[p] + w3 * x3[p] + w4 * x4[p]


@njit(**_opts)
def _rows5x2(acc, co, x, s, w, ci, i):
    """_row5 for output channels co and co+1 at once: each input load feeds both, and one
    call does two rows' work (per-call costs weigh on LeNet's 10x10 planes). Four channels
    at once were no faster with AVX-512 and spilled registers with AVX2."""
    n = acc.shape[1]
    a0, a1 = acc[co], acc[co + 1]
    x0, x1, x2 = x[s:s + n], x[s + 1:s + 1 + n], x[s + 2:s + 2 + n]
    x3, x4 = x[s + 3:s + 3 + n], x[s + 4:s + 4 + n]
    u00, u01, u02, u03, u04 = w[co, ci, i, 0], w[co, ci, i, 1], w[co, ci, i, 2], w[co, ci, i, 3], w[co, ci, i, 4]
    c1 = co + 1
    u10, u11, u12, u13, u14 = w[c1, ci, i, 0], w[c1, ci, i, 1], w[c1, ci, i, 2], w[c1, ci, i, 3], w[c1, ci, i, 4]
    for p in range(n):
        v0, v1, v2, v3, v4 = x0[p], x1[p], x2[p], x3[p], x4[p]
        a0[p] += u00 * v0 + u01 * v1 + u02 * v2 + u03 * v3 + u04 * v4
        a1[p] += u10 * v0 + u11 * v1 + u12 * v2 + u13 * v3 + u14 * v4


@njit(**_opts)
def _row3(acc, x, s, w):
    w0, w1, w2 = w[0], w[1], w[2]
    n = acc.shape[0]
    x0, x1, x2 = x[s:s + n], x[s + 1:s + 1 + n], x[s + 2:s + 2 + n]
    for p in range(n):
        acc[p] += w0 * x0[p] + w1 * x1[p] + w2 * x2[p]


@njit(**_opts)
def _axpy(acc, x, s, a):
    n = acc.shape[0]
    xs = x[s:s + n]
    for p in range(n):
        acc[p] += a * xs[p]


@njit(**_opts)
def _corr(inp, w, wp, acc):
    """acc[co, :] += sum over ci, i, j of w[co, ci, i, j] * inp[ci, i*wp + j:][:len];
    5-wide kernels two output channels at a time."""
    co_, ci_, kh, kw = w.shape
    cob = co_ - co_ % 2 if kw == 5 else 0
    for co in range(0, cob, 2):
        for ci in range(ci_):
            x = inp[ci]
            for i in range(kh):
                _rows5x2(acc, co, x, i * wp, w, ci, i)
    for co in range(cob, co_):
        a = acc[co]
        for ci in range(ci_):
            x = inp[ci]
            for i in range(kh):
                wr = w[co, ci, i]
                if kw == 5:
                    _row5(a, x, i * wp, wr)
                elif kw == 3:
                    _row3(a, x, i * wp, wr)
                else:
                    for j in range(kw):
                        _axpy(a, x, i * wp + j, wr[j])


# reassoc: the dot products vectorise (their sum order then follows the vector width)
@njit(fastmath={"reassoc", "nsz", "contract"}, **_opts)
def _dot5(g, x, s, out):
    n = g.shape[0]
    x0, x1, x2 = x[s:s + n], x[s + 1:s + 1 + n], x[s + 2:s + 2 + n]
    x3, x4 = x[s + 3:s + 3 + n], x[s + 4:s + 4 + n]
    z = g.dtype.type(0)
    a0, a1, a2, a3, a4 = z, z, z, z, z
    for p in range(n):
        gv = g[p]
        a0 += gv * x0[p]
        a1 += gv * x1[p]
        a2 += gv * x2[p]
        a3 += gv * x3[p]
        a4 += gv * x4[p]
    out[0] += a0
    out[1] += a1
    out[2] += a2
    out[3] += a3
    out[4] += a4


@njit(fastmath={"reassoc", "nsz", "contract"}, **_opts)
def _dots5x2(g, goff, co, x, s, n, gw, ci, i):
    """_dot5 for output channels co and co+1 at once: each input load feeds both."""
    ga, gb = g[co][goff:goff + n], g[co + 1][goff:goff + n]
    x0, x1, x2 = x[s:s + n], x[s + 1:s + 1 + n], x[s + 2:s + 2 + n]
    x3, x4 = x[s + 3:s + 3 + n], x[s + 4:s + 4 + n]
    z = g.dtype.type(0)
    a0, a1, a2, a3, a4 = z, z, z, z, z
    b0, b1, b2, b3, b4 = z, z, z, z, z
    for p in range(n):
        v0, v1, v2, v3, v4 = x0[p], x1[p], x2[p], x3[p], x4[p]
        u = ga[p]
        a0 += u * v0
        a1 += u * v1
        a2 += u * v2
        a3 += u * v3
        a4 += u * v4
        u = gb[p]
        b0 += u * v0
        b1 += u * v1
        b2 += u * v2
        b3 += u * v3
        b4 += u * v4
    gw[co, ci, i, 0] += a0
    gw[co, ci, i, 1] += a1
    gw[co, ci, i, 2] += a2
    gw[co, ci, i, 3] += a3
    gw[co, ci, i, 4] += a4
    gw[co + 1, ci, i, 0] += b0
    gw[co + 1, ci, i, 1] += b1
    gw[co + 1, ci, i, 2] += b2
    gw[co + 1, ci, i, 3] += b3
    gw[co + 1, ci, i, 4] += b4


@njit(fastmath={"reassoc", "nsz", "contract"}, **_opts)
def _dot3(g, x, s, out):
    n = g.shape[0]
    x0, x1, x2 = x[s:s + n], x[s + 1:s + 1 + n], x[s + 2:s + 2 + n]
    z = g.dtype.type(0)
    a0, a1, a2 = z, z, z
    for p in range(n):
        gv = g[p]
        a0 += gv * x0[p]
        a1 += gv * x1[p]
        a2 += gv * x2[p]
    out[0] += a0
    out[1] += a1
    out[2] += a2


@njit(fastmath={"reassoc", "nsz", "contract"}, **_opts)
def _dot(g, x, s):
    n = g.shape[0]
    xs = x[s:s + n]
    a = g.dtype.type(0)
    for p in range(n):
        a += g[p] * xs[p]
    return a


@njit(**_opts)
def _wgrad(g, goff, seg, inp, wp, gw):
    """gw[co, ci, i, j] += g[co, goff:goff+seg] . inp[ci, i*wp + j:][:seg]; 5-wide kernels
    two output channels at a time."""
    co_, ci_, kh, kw = gw.shape
    cob = co_ - co_ % 2 if kw == 5 else 0
    for co in range(0, cob, 2):
        for ci in range(ci_):
            x = inp[ci]
            for i in range(kh):
                _dots5x2(g, goff, co, x, i * wp, seg, gw, ci, i)
    for co in range(cob, co_):
        gr = g[co][goff:goff + seg]
        for ci in range(ci_):
            x = inp[ci]
            for i in range(kh):
                for j in range(kw):
                    gw[co, ci, i, j] += _dot(gr, x, i * wp + j)


@njit(**_opts)
def _pad_planes(x, n, ph, pw, wp, xp):
    for c in range(x.shape[1]):
        _pad_plane(x, n, c, ph, pw, wp, xp[c])


@njit(**_opts)
def _conv_fwd_direct_chunk(x, w, b, ph, pw, oh, ow, n0, n1, relu, y):
    c_, h_, w_ = x.shape[1], x.shape[2], x.shape[3]
    o_, kw = w.shape[0], w.shape[3]
    hp, wp = h_ + 2 * ph, w_ + 2 * pw
    seg = oh * wp
    xp = np.empty((c_, hp * wp + kw), x.dtype)
    acc = np.empty((o_, seg), x.dtype)
    hasb = b.shape[0] == o_
    for n in range(n0, n1):
        _pad_planes(x, n, ph, pw, wp, xp)
        _fill0(acc.reshape(-1))
        _corr(xp, w, wp, acc)
        for o in range(o_):
            bo = b[o] if hasb else x.dtype.type(0)
            for yy in range(oh):
                _copy_add(y[n, o, yy], acc[o, yy * wp:yy * wp + ow], bo, relu)


def _conv_fwd_direct_impl(x, w, b, ph, pw, oh, ow, nch, relu, y):
    n = x.shape[0]
    for t in prange(nch):
        n0, n1 = _chunk_bounds(n, nch, t)
        _conv_fwd_direct_chunk(x, w, b, ph, pw, oh, ow, n0, n1, relu, y)


conv_fwd_direct_s, conv_fwd_direct_p = _serial_and_parallel(_conv_fwd_direct_impl)


@njit(**_opts)
def _conv_bwd_direct_chunk(x, wf, gy, ph, pw, n0, n1, need_gx, gwp, gbp, gx):
    c_, h_, w_ = x.shape[1], x.shape[2], x.shape[3]
    o_, kh, kw = gy.shape[1], wf.shape[2], wf.shape[3]
    oh, ow = gy.shape[2], gy.shape[3]
    hp, wp = h_ + 2 * ph, w_ + 2 * pw
    seg = oh * wp
    m = (kh - 1) * wp + kw - 1
    xp = np.empty((c_, hp * wp + kw), x.dtype)
    gext = np.zeros((o_, hp * wp + m + kw), x.dtype)   # only the valid columns are written
    gacc = np.empty((c_, hp * wp), x.dtype)
    _fill0(gwp.reshape(-1))
    for o in range(o_):
        gbp[o] = 0.0
    for n in range(n0, n1):
        _pad_planes(x, n, ph, pw, wp, xp)
        for o in range(o_):
            s = 0.0
            for yy in range(oh):
                base = m + yy * wp
                s += _copy_sum(gext[o, base:base + ow], gy[n, o, yy])
            gbp[o] += s
        _wgrad(gext, m, seg, xp, wp, gwp)
        if need_gx:
            _fill0(gacc.reshape(-1))
            _corr(gext, wf, wp, gacc)
            for c in range(c_):
                for yy in range(h_):
                    base = (yy + ph) * wp + pw
                    _copy(gx[n, c, yy], gacc[c, base:base + w_])


def _conv_bwd_direct_impl(x, wf, gy, ph, pw, nch, need_gx, gwp, gbp, gx, gw, gb):
    n = x.shape[0]
    for t in prange(nch):
        n0, n1 = _chunk_bounds(n, nch, t)
        _conv_bwd_direct_chunk(x, wf, gy, ph, pw, n0, n1, need_gx, gwp[t], gbp[t], gx)
    # per-chunk gradients summed in chunk order: deterministic
    gw[:] = gwp[0].reshape(gw.shape)
    for t in range(1, nch):
        gw += gwp[t].reshape(gw.shape)
    for o in range(gb.shape[0]):
        s = 0.0
        for t in range(nch):
            s += gbp[t, o]
        gb[o] = s


conv_bwd_direct_s, conv_bwd_direct_p = _serial_and_parallel(_conv_bwd_direct_impl)


# ---- pooling with any window and stride ---------------------------------------------------
def _maxpool_fwd_impl(x, kh, kw, sh, sw, out, argmax):
    n_, c_, h_, w_ = x.shape
    oh, ow = out.shape[2], out.shape[3]
    for nc in prange(n_ * c_):
        n = nc // c_
        c = nc % c_
        plane = x[n, c]
        for y in range(oh):
            for xo in range(ow):
                y0 = y * sh
                x0 = xo * sw
                best = plane[y0, x0]
                arg = y0 * w_ + x0
                for i in range(kh):
                    row = plane[y0 + i]
                    for j in range(kw):
                        v = row[x0 + j]
                        if v > best:
                            best = v
                            arg = (y0 + i) * w_ + x0 + j
                out[n, c, y, xo] = best
                argmax[n, c, y, xo] = arg


def _maxpool_bwd_impl(gy, argmax, gx):
    n_, c_, h_, w_ = gx.shape
    oh, ow = gy.shape[2], gy.shape[3]
    for nc in prange(n_ * c_):
        n = nc // c_
        c = nc % c_
        g = gx[n, c]
        _fill0(g.reshape(-1))
        for y in range(oh):
            for xo in range(ow):
                a = argmax[n, c, y, xo]
                g[a // w_, a % w_] += gy[n, c, y, xo]


maxpool_fwd_s, maxpool_fwd_p = _serial_and_parallel(_maxpool_fwd_impl)
maxpool_bwd_s, maxpool_bwd_p = _serial_and_parallel(_maxpool_bwd_impl)


@njit(parallel=True, **_opts)
def avgpool_forward(x, kh, kw, sh, sw, out):
    n_, c_, h_, w_ = x.shape
    oh, ow = out.shape[2], out.shape[3]
    scale = 1.0 / (kh * kw)
    for nc in prange(n_ * c_):
        n = nc // c_
        c = nc % c_
        plane = x[n, c]
        for y in range(oh):
            for xo in range(ow):
                s = 0.0
                for i in range(kh):
                    row = plane[y * sh + i]
                    for j in range(kw):
                        s += row[xo * sw + j]
                out[n, c, y, xo] = s * scale


@njit(parallel=True, **_opts)
def avgpool_backward(gy, kh, kw, sh, sw, gx):
    n_, c_, h_, w_ = gx.shape
    oh, ow = gy.shape[2], gy.shape[3]
    scale = 1.0 / (kh * kw)
    for nc in prange(n_ * c_):
        n = nc // c_
        c = nc % c_
        g = gx[n, c]
        _fill0(g.reshape(-1))
        for y in range(oh):
            for xo in range(ow):
                v = gy[n, c, y, xo] * scale
                for i in range(kh):
                    row = g[y * sh + i]
                    for j in range(kw):
                        row[xo * sw + j] += v


# ---- 2x2 / stride-2 max-pool (every LeNet and Lab-7 pool) ------------------------------------
def _maxpool2_impl(x, out, argmax):
    # same order and ties as maxpool_fwd_s: (0,0), (0,1), (1,0), (1,1), strict >.
    # Plain 4-D indexing: a row view per output row cost more than the row's work.
    n_, c_, h_, w_ = x.shape
    oh, ow = out.shape[2], out.shape[3]
    for nc in prange(n_ * c_):
        n = nc // c_
        c = nc % c_
        for y in range(oh):
            b0 = 2 * y * w_
            b1 = b0 + w_
            for xo in range(ow):
                x0 = 2 * xo
                best = x[n, c, 2 * y, x0]
                a = b0 + x0
                v = x[n, c, 2 * y, x0 + 1]
                if v > best:
                    best = v
                    a = b0 + x0 + 1
                v = x[n, c, 2 * y + 1, x0]
                if v > best:
                    best = v
                    a = b1 + x0
                v = x[n, c, 2 * y + 1, x0 + 1]
                if v > best:
                    best = v
                    a = b1 + x0 + 1
                out[n, c, y, xo] = best
                argmax[n, c, y, xo] = a


maxpool2_s, maxpool2_p = _serial_and_parallel(_maxpool2_impl)


# ---- backward of the 2x2 / stride-2 max-pool, optionally through the ReLU before it ----------
# Windows do not overlap, so each gradient goes to its argmax with a plain store after one
# vectorised zero fill of the plane (2.5-3x faster than writing all four pixels of every
# window). With relu=True the ReLU in front is folded in: the pooled value is the ReLU
# output at the argmax, so "pooled > 0" is ReLU's mask there. Same numbers either way.
def _maxpool2_bwd_impl(gy, pooled, argmax, relu, gx):
    n_, c_, h_, w_ = gx.shape
    oh, ow = gy.shape[2], gy.shape[3]
    z = gx.dtype.type(0)
    flat = gx.reshape(-1)
    hw = h_ * w_
    for nc in prange(n_ * c_):
        n = nc // c_
        c = nc % c_
        p0 = nc * hw
        _fill0(flat[p0:p0 + hw])
        for y in range(oh):
            for xo in range(ow):
                if relu and not pooled[n, c, y, xo] > z:
                    continue
                flat[p0 + argmax[n, c, y, xo]] = gy[n, c, y, xo]


maxpool2_bwd_s, maxpool2_bwd_p = _serial_and_parallel(_maxpool2_bwd_impl)


# ---- 2x2 / stride-2 average pool (the LeNet-5 preset's pools) --------------------------------
# The same float operations as avgpool_forward/backward (float64 sum in window order, times
# 0.25); windows do not overlap, so backward writes every input pixel exactly once.
def _avgpool2_impl(x, out):
    n_, c_, h_, w_ = x.shape
    oh, ow = out.shape[2], out.shape[3]
    for nc in prange(n_ * c_):
        n = nc // c_
        c = nc % c_
        for y in range(oh):
            for xo in range(ow):
                s = 0.0
                s += x[n, c, 2 * y, 2 * xo]
                s += x[n, c, 2 * y, 2 * xo + 1]
                s += x[n, c, 2 * y + 1, 2 * xo]
                s += x[n, c, 2 * y + 1, 2 * xo + 1]
                out[n, c, y, xo] = s * 0.25


def _avgpool2_bwd_impl(gy, gx):
    n_, c_, h_, w_ = gx.shape
    oh, ow = gy.shape[2], gy.shape[3]
    z = gx.dtype.type(0)
    for nc in prange(n_ * c_):
        n = nc // c_
        c = nc % c_
        for y in range(oh):
            r0 = gx[n, c, 2 * y]
            r1 = gx[n, c, 2 * y + 1]
            g = gy[n, c, y]
            for xo in range(ow):
                v = g[xo] * 0.25
                r0[2 * xo] = v
                r0[2 * xo + 1] = v
                r1[2 * xo] = v
                r1[2 * xo + 1] = v
            for x in range(2 * ow, w_):
                r0[x] = z
                r1[x] = z
        for y in range(2 * oh, h_):
            _fill0(gx[n, c, y])


avgpool2_s, avgpool2_p = _serial_and_parallel(_avgpool2_impl)
avgpool2_bwd_s, avgpool2_bwd_p = _serial_and_parallel(_avgpool2_bwd_impl)


# ---- elementwise (fused, one pass, no temporaries) ----------------------------------
def _relu_fwd_impl(x, out):
    a = x.reshape(-1)
    o = out.reshape(-1)
    z = a.dtype.type(0)
    for i in prange(a.shape[0]):
        v = a[i]
        o[i] = v if v > z else z


def _relu_bwd_impl(y, gy, out):
    a = y.reshape(-1)
    g = gy.reshape(-1)
    o = out.reshape(-1)
    z = g.dtype.type(0)
    for i in prange(a.shape[0]):
        o[i] = g[i] if a[i] > 0 else z


def _tanh_bwd_impl(y, gy, out):
    a = y.reshape(-1)
    g = gy.reshape(-1)
    o = out.reshape(-1)
    one = g.dtype.type(1)
    for i in prange(a.shape[0]):
        v = a[i]
        o[i] = g[i] * (one - v * v)


relu_fwd_s, relu_fwd_p = _serial_and_parallel(_relu_fwd_impl)
relu_bwd_s, relu_bwd_p = _serial_and_parallel(_relu_bwd_impl)
tanh_bwd_s, tanh_bwd_p = _serial_and_parallel(_tanh_bwd_impl)


# ---- softmax cross-entropy from logits, forward and gradient in one pass ---------------------------
@njit(error_model="numpy", **_opts)
def softmax_xent(z, labels, grad, out):
    """out[0] = mean loss (float64 sum), out[1] = 1 if a label is outside [0, k)."""
    n, k = z.shape
    total = 0.0
    inv_n = grad.dtype.type(1.0 / n)
    out[1] = 0.0
    for i in range(n):
        row = z[i]
        m = row[0]
        for j in range(1, k):
            if row[j] > m:
                m = row[j]
        s = 0.0
        for j in range(k):
            e = np.exp(row[j] - m)
            grad[i, j] = e
            s += e
        lab = labels[i]
        if lab < 0 or lab >= k:
            out[1] = 1.0
            return
        total += np.log(s) - (row[lab] - m)
        r = 1.0 / s
        for j in range(k):
            grad[i, j] = grad[i, j] * r * inv_n
        grad[i, lab] -= inv_n
    out[0] = total / n


# ---- optimiser updates: one pass per parameter ------------------------------------------
@njit(**_opts)
def sgd_momentum(p, g, v, lr, momentum, nesterov, first):
    pf = p.reshape(-1)
    gf = g.reshape(-1)
    vf = v.reshape(-1)
    lr_ = pf.dtype.type(lr)
    mom = vf.dtype.type(momentum)
    for i in range(pf.shape[0]):
        gi = gf[i]
        if first:
            vi = gi
        else:
            vi = vf[i] * mom + gi
        vf[i] = vi
        if nesterov:
            pf[i] -= lr_ * (gi + mom * vi)
        else:
            pf[i] -= lr_ * vi


@njit(**_opts)
def sgd_plain(p, g, lr):
    pf = p.reshape(-1)
    gf = g.reshape(-1)
    lr_ = pf.dtype.type(lr)
    for i in range(pf.shape[0]):
        pf[i] -= lr_ * gf[i]


# ---- finite checks ----------------------------------------------------------------------------
@njit(fastmath={"reassoc"}, **_opts)   # reassoc: the sum vectorises; NaN still propagates
def all_finite_1(a):
    f = a.reshape(-1)
    s = f.dtype.type(0)
    for i in range(f.shape[0]):
        s += f[i] * 0
    return s == 0
