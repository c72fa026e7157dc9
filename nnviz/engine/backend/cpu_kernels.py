"""Numba kernels for the CPU backend.

Each kernel walks whole rows so the innermost loop is a contiguous run: the
valid column range is computed once per row instead of testing every pixel,
which is what lets LLVM vectorise it.
"""
import numpy as np
from numba import njit, prange

_opts = dict(cache=True, nogil=True)


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


@njit(parallel=True, **_opts)
def maxpool_forward(x, kh, kw, sh, sw, out, argmax):
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


@njit(parallel=True, **_opts)
def maxpool_backward(gy, argmax, gx):
    n_, c_, h_, w_ = gx.shape
    oh, ow = gy.shape[2], gy.shape[3]
    for nc in prange(n_ * c_):
        n = nc // c_
        c = nc % c_
        g = gx[n, c]
        g[:, :] = 0
        for y in range(oh):
            for xo in range(ow):
                a = argmax[n, c, y, xo]
                g[a // w_, a % w_] += gy[n, c, y, xo]


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
        g[:, :] = 0
        for y in range(oh):
            for xo in range(ow):
                v = gy[n, c, y, xo] * scale
                for i in range(kh):
                    row = g[y * sh + i]
                    for j in range(kw):
                        row[xo * sw + j] += v
