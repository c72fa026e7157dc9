"""CUDA backend vs CPU backend, run under numba's CUDA simulator.

Run by tests/test_cuda_sim.py in a subprocess with NUMBA_ENABLE_CUDASIM=1 (the
variable has to be set before numba is imported). Also runnable by hand:

    NUMBA_ENABLE_CUDASIM=1 python tests/cuda_sim_checks.py [name ...]

Prints one line per check: "PASS name seconds" or "FAIL name: reason", then
"SUMMARY passed=N failed=M seconds=S"; exits 1 if any check failed. The
simulator runs every CUDA thread as Python, so the shapes are tiny.
"""
import os
import sys
import time
import traceback
from types import SimpleNamespace

import numpy as np

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
    sys.exit("set NUMBA_ENABLE_CUDASIM=1 before running this script")

from nnviz.engine import backend
from nnviz.engine.backend import cpu as C

G = backend.load("cuda")
H = G.to_host
RTOL = 1e-4
CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def close(name, got, want, rtol=RTOL):
    got = H(got) if got is not None else None
    want = np.asarray(want)
    if got is None:
        raise AssertionError(f"{name}: got None")
    if tuple(got.shape) != tuple(want.shape):
        raise AssertionError(f"{name}: shape {got.shape} != {want.shape}")
    if got.dtype != want.dtype:
        raise AssertionError(f"{name}: dtype {got.dtype} != {want.dtype}")
    # relative to the array's scale, so entries near 0 do not blow the test up
    scale = max(float(np.abs(want).max()) if want.size else 0.0, 1e-6)
    err = float(np.abs(got.astype(np.float64) - want).max()) if want.size else 0.0
    if not err <= rtol * scale:
        raise AssertionError(f"{name}: max |diff| {err:.3g} > {rtol:g} * {scale:.3g}")


def close_f(name, got, want, rtol=RTOL):
    if not isinstance(got, float):
        raise AssertionError(f"{name}: expected a Python float, got {type(got).__name__}")
    if not abs(got - want) <= rtol * max(abs(want), 1e-6):
        raise AssertionError(f"{name}: {got!r} != {want!r}")


def on_device(name, a):
    if not G.is_device(a):
        raise AssertionError(f"{name}: result is {type(a).__name__}, not a device array")


def rnd(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# ---- arrays ------------------------------------------------------------------
@check
def contract():
    from nnviz.engine.backend.contract import conforms
    problems = conforms(G)
    if problems:
        raise AssertionError("; ".join(problems))


@check
def arrays():
    rng = np.random.default_rng(0)
    x = rnd(rng, 3, 5)
    d = G.asarray(x)
    on_device("asarray", d)
    assert G.asarray(d) is d, "asarray must pass device arrays through"
    close("to_host", d, x)
    assert isinstance(G.to_host(x), np.ndarray)
    z = G.zeros((2, 3))
    on_device("zeros", z)
    close("zeros", z, np.zeros((2, 3), np.float32))
    cache = {}
    b1 = G.buffer(cache, "k", (2, 2), np.float32)
    assert G.buffer(cache, "k", (2, 2), np.float32) is b1, "buffer must be reused"
    assert G.buffer(cache, "k", (3, 2), np.float32) is not b1
    y = rnd(rng, 3, 5)
    close("mul", G.mul(d, G.asarray(y)), C.mul(x, y))
    close("add", G.add(d, y), C.add(x, y))          # host operand accepted
    close("add broadcast", G.add(d, y[:1]), C.add(x, y[:1]))
    assert "simulator" in G.device_name().lower() or G.device_name()


def _matmul(a, b, ta=False, tb=False):
    """2-D op(a) @ op(b) through the batched device GEMM."""
    y = G.gemm(G.asarray(a)[None], G.asarray(b)[None], ta, tb)
    return y.reshape(y.shape[1], y.shape[2])


@check
def gemm_variants():
    rng = np.random.default_rng(1)
    m, k, n = 17, 9, 13                                   # partial 16x16 tiles
    a, b = rnd(rng, m, k), rnd(rng, k, n)
    close("gemm nn", _matmul(a, b), a @ b)
    close("gemm tn", _matmul(np.ascontiguousarray(a.T), b, ta=True), a @ b)
    close("gemm nt", _matmul(a, np.ascontiguousarray(b.T), tb=True), a @ b)
    close("gemm tt", _matmul(np.ascontiguousarray(a.T), np.ascontiguousarray(b.T),
                             ta=True, tb=True), a @ b)
    # batched with a broadcast operand, and the batch-reduced variant
    ab, bb = rnd(rng, 3, m, k), rnd(rng, 3, k, n)
    close("gemm batched", G.gemm(ab, bb), np.matmul(ab, bb))
    close("gemm broadcast", G.gemm(a[None], bb), np.matmul(a, bb))
    close("gemm reduce", G.gemm(ab, bb, reduce_batch=True), np.matmul(ab, bb).sum(0)[None])
    # K larger than one tile
    a2, b2 = rnd(rng, 5, 37), rnd(rng, 37, 3)
    close("gemm K=37", _matmul(a2, b2), a2 @ b2)
    out = G.asarray(np.ones((1, m, n), np.float32))
    G.gemm(a[None], b[None], out=out, accumulate=True)
    close("gemm accumulate", out, (a @ b + 1)[None])


@check
def dense():
    rng = np.random.default_rng(2)
    x, w, b, gy = rnd(rng, 4, 7), rnd(rng, 5, 7), rnd(rng, 5), rnd(rng, 4, 5)
    xd, wd = G.asarray(x), G.asarray(w)
    y = G.dense_forward(xd, wd, G.asarray(b))
    on_device("dense y", y)
    close("dense fwd", y, C.dense_forward(x, w, b))
    close("dense fwd nobias", G.dense_forward(xd, wd, None), C.dense_forward(x, w, None))
    got = G.dense_backward(xd, wd, G.asarray(gy))
    want = C.dense_backward(x, w, gy)
    for nm, g_, w_ in zip(("gx", "gw", "gb"), got, want):
        on_device(nm, g_)
        close(f"dense {nm}", g_, w_)
    assert G.dense_backward(xd, wd, G.asarray(gy), need_gx=False)[0] is None


def _conv_case(fwd, bwd, gfwd, gbwd, x, w, b, stride, pad, extra=()):
    cc, gc = {}, {}
    yc = fwd(x, w, b, stride, pad, *extra, cc)
    yg = gfwd(G.asarray(x), G.asarray(w), G.asarray(b), stride, pad, *extra, gc)
    on_device("y", yg)
    close(f"{fwd.__name__}", yg, yc)
    rng = np.random.default_rng(9)
    gy = rnd(rng, *yc.shape)
    want = bwd(x, w, gy, stride, pad, cc)
    got = gbwd(G.asarray(x), G.asarray(w), G.asarray(gy), stride, pad, gc)
    for nm, g_, w_ in zip(("gx", "gw", "gb"), got, want):
        on_device(nm, g_)
        close(f"{bwd.__name__} {nm}", g_, w_)
    assert gbwd(G.asarray(x), G.asarray(w), G.asarray(gy), stride, pad, gc,
                need_gx=False)[0] is None


@check
def conv2d():
    rng = np.random.default_rng(3)
    x, w, b = rnd(rng, 2, 2, 6, 6), rnd(rng, 3, 2, 3, 3), rnd(rng, 3)
    _conv_case(C.conv2d_forward, C.conv2d_backward, G.conv2d_forward, G.conv2d_backward,
               x, w, b, (2, 2), (1, 1))
    x2 = rnd(rng, 2, 2, 4, 4)
    _conv_case(C.conv2d_forward, C.conv2d_backward, G.conv2d_forward, G.conv2d_backward,
               x2, w, b, (1, 1), (0, 0))


@check
def conv_transpose2d():
    rng = np.random.default_rng(4)
    x, w, b = rnd(rng, 2, 2, 3, 3), rnd(rng, 2, 3, 3, 3), rnd(rng, 3)
    out_hw = ((3 - 1) * 2 - 2 + 3,) * 2
    _conv_case(C.conv_transpose2d_forward, C.conv_transpose2d_backward,
               G.conv_transpose2d_forward, G.conv_transpose2d_backward,
               x, w, b, (2, 2), (1, 1), extra=(out_hw,))


@check
def pooling():
    rng = np.random.default_rng(5)
    x = rnd(rng, 2, 2, 6, 6)
    for k, s in (((2, 2), (2, 2)), ((3, 3), (2, 2))):   # overlapping windows too
        for kind in ("max", "avg"):
            cc, gc = {}, {}
            fc, bc = getattr(C, f"{kind}pool_forward"), getattr(C, f"{kind}pool_backward")
            fg, bg = getattr(G, f"{kind}pool_forward"), getattr(G, f"{kind}pool_backward")
            yc = fc(x, k, s, cc)
            yg = fg(G.asarray(x), k, s, gc)
            close(f"{kind}pool fwd k{k}", yg, yc)
            gy = rnd(rng, *yc.shape)
            close(f"{kind}pool bwd k{k}", bg(G.asarray(gy), x.shape, k, s, gc),
                  bc(gy, x.shape, k, s, cc))
            if kind == "max" and "argmax" in cc:      # the CPU cache layout may change
                close("argmax", gc["argmax"], cc["argmax"], rtol=0)
    x = rnd(rng, 2, 3, 5, 4)
    yc = C.global_avgpool_forward(x, {})
    yg = G.global_avgpool_forward(G.asarray(x), {})
    on_device("global_avgpool fwd", yg)
    close("global_avgpool fwd", yg, yc)
    close("global_avgpool fwd vs mean", yg, x.mean(axis=(2, 3)))
    gy = rnd(rng, 2, 3)
    close("global_avgpool bwd", G.global_avgpool_backward(G.asarray(gy), x.shape, {}),
          C.global_avgpool_backward(gy, x.shape, {}))


@check
def activations():
    rng = np.random.default_rng(6)
    x = rnd(rng, 3, 7) * 3
    x[0, 0] = 0.0
    x[0, 1] = 40.0         # sigmoid / tanh saturation
    x[0, 2] = -40.0
    gy = rnd(rng, 3, 7)
    xd, gyd = G.asarray(x), G.asarray(gy)
    for nm, extra in (("relu", ()), ("leaky_relu", (0.1,)), ("sigmoid", ()), ("tanh", ()),
                      ("abs", ())):
        yc = getattr(C, f"{nm}_forward")(x, *extra)
        yg = getattr(G, f"{nm}_forward")(xd, *extra)
        on_device(nm, yg)
        close(f"{nm} fwd", yg, yc)
        close(f"{nm} bwd", getattr(G, f"{nm}_backward")(xd, yg, gyd, *extra),
              getattr(C, f"{nm}_backward")(x, yc, gy, *extra))
    nan = G.relu_forward(np.array([np.nan, -1.0], np.float32))
    assert np.isnan(H(nan)[0]), "relu must keep NaN (divergence detection)"


@check
def batchnorm():
    rng = np.random.default_rng(7)
    for shape in ((4, 2), (2, 2, 3, 3)):
        c = shape[1]
        x = rnd(rng, *shape) * 2 + 1
        gamma, beta = rnd(rng, c), rnd(rng, c)
        gy = rnd(rng, *shape)
        mc, vc = rnd(rng, c), np.abs(rnd(rng, c)) + 0.5
        mg, vg = G.asarray(mc), G.asarray(vc)
        for train in (True, False):
            cc, gc = {}, {}
            yc = C.batchnorm_forward(x, gamma, beta, mc, vc, 0.1, 1e-5, train, cc)
            yg = G.batchnorm_forward(G.asarray(x), G.asarray(gamma), G.asarray(beta), mg, vg,
                                     0.1, 1e-5, train, gc)
            tag = f"bn {len(shape)}d {'train' if train else 'eval'}"
            close(f"{tag} fwd", yg, yc)
            close(f"{tag} running_mean", mg, mc)
            close(f"{tag} running_var", vg, vc)
            got = G.batchnorm_backward(G.asarray(gy), G.asarray(gamma), train, gc)
            want = C.batchnorm_backward(gy, gamma, train, cc)
            for nm, g_, w_ in zip(("gx", "ggamma", "gbeta"), got, want):
                close(f"{tag} {nm}", g_, w_)


@check
def dropout():
    rc, rg = np.random.default_rng([0, 5]), np.random.default_rng([0, 5])
    for _ in range(2):
        mc = C.dropout_mask(rc, (3, 4), 0.3, np.dtype(np.float32))
        mg = G.dropout_mask(rg, (3, 4), 0.3, np.dtype(np.float32))
        on_device("mask", mg)
        close("dropout mask", mg, mc, rtol=0)     # bit for bit
    assert rc.bit_generator.state == rg.bit_generator.state


@check
def losses():
    rng = np.random.default_rng(8)
    z = rnd(rng, 5, 4) * 3
    lab = np.array([0, 3, 1, 1, 2], np.int64)
    zd = G.asarray(z)
    vc, gc = C.softmax_xent(z, lab)
    vg, gg = G.softmax_xent(zd, lab)
    close_f("xent value", vg, vc)
    on_device("xent grad", gg)
    close("xent grad", gg, gc)
    t = rnd(rng, 5, 4)
    vc, gc = C.mse(z, t)
    vg, gg = G.mse(zd, t)
    close_f("mse value", vg, vc)
    close("mse grad", gg, gc)
    tb = (rng.random((5, 4)) > 0.5).astype(np.float32)
    z2 = z.copy()
    z2[0, 0], z2[0, 1] = 60.0, -60.0
    vc, gc = C.bce_with_logits(z2, tb)
    vg, gg = G.bce_with_logits(G.asarray(z2), tb)
    close_f("bce value", vg, vc)
    close("bce grad", gg, gc)


def _opt_case(name, update_c, update_g, slots, args_for_step, steps=3):
    rng = np.random.default_rng(10)
    p = rnd(rng, 4, 5)
    pc, pg = p.copy(), G.asarray(p)
    sc = [np.zeros_like(p) for _ in range(slots)]
    sg = [G.zeros(p.shape) for _ in range(slots)]
    for t in range(1, steps + 1):
        g = rnd(rng, 4, 5)
        update_c(pc, g, *sc, *args_for_step(t))
        update_g(pg, G.asarray(g), *sg, *args_for_step(t))
    close(f"{name} param", pg, pc)
    for i, (a, b) in enumerate(zip(sg, sc)):
        close(f"{name} slot{i}", a, b)


@check
def optimizers():
    for mom, nest, wd, l1 in ((0.0, False, 0.0, 0.0), (0.9, False, 0.0, 0.0),
                              (0.9, True, 1e-2, 0.0), (0.5, False, 1e-2, 1e-3)):
        _opt_case(f"sgd m={mom} n={nest} wd={wd} l1={l1}", C.sgd_update, G.sgd_update, 1,
                  lambda t, mom=mom, nest=nest, wd=wd, l1=l1: (0.1, mom, nest, wd, l1, t == 1))
    for wd, l1 in ((0.0, 0.0), (1e-2, 1e-3)):
        _opt_case(f"adam wd={wd} l1={l1}", C.adam_update, G.adam_update, 2,
                  lambda t, wd=wd, l1=l1: (0.01, 0.9, 0.999, 1e-8, wd, l1, t))
    # host arrays are updated in place too
    p = np.ones(3, np.float32)
    G.sgd_update(p, np.ones(3, np.float32), np.zeros(3, np.float32), 0.5, 0.0, False, 0, 0, True)
    close("sgd host in place", p, np.full(3, 0.5, np.float32))


@check
def norms():
    rng = np.random.default_rng(11)
    a = rnd(rng, 40, 7)                                   # 280 values: 2 reduction blocks
    close_f("sq_norm", G.sq_norm(G.asarray(a)), C.sq_norm(a))
    close_f("sq_norm small", G.sq_norm(a[:1]), C.sq_norm(a[:1]))
    good = [G.asarray(a), G.asarray(a[:3])]
    assert G.all_finite(good) is True
    for bad_v in (np.nan, np.inf, -np.inf):
        b = a[:3].copy()
        b[1, 2] = bad_v
        assert G.all_finite(good + [G.asarray(b)]) is False, bad_v
    assert G.all_finite([]) is True


@check
def end_to_end():
    from nnviz.engine import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential
    from nnviz.train import Trainer

    rng = np.random.default_rng(12)
    # 4x4 images, batch 2: every GEMM is one 16x16 tile per sample (the simulator
    # runs each CUDA thread in Python, so this keeps the check to seconds)
    ds = SimpleNamespace(name="tiny", input_shape=(1, 4, 4),
                         x_train=rnd(rng, 6, 1, 4, 4), y_train=rng.integers(0, 3, 6),
                         x_test=rnd(rng, 2, 1, 4, 4), y_test=rng.integers(0, 3, 2))

    def make():
        return Sequential([Conv2D(2, 3, padding=1), ReLU(), MaxPool2D(2), Flatten(), Dense(3)],
                          input_shape=ds.input_shape, seed=3)

    def train():
        m = make()
        tr = Trainer(m, ds, optimizer="sgd", lr=0.1, momentum=0.9, batch_size=2, seed=1)
        losses = [tr.step()[0] for _ in range(3)]
        return m, tr, losses

    backend.use("cpu")
    mc, tc, lc = train()
    # optim.py and losses.py call backend.get(): the cuda backend must stay active
    # while the cuda model trains
    backend.use("cuda")
    try:
        mg, tg, lg = train()
        assert mg.B is G, "model did not pick up the cuda backend"
        for (n, a) in mg.named_parameters():
            on_device(n, a)
        for v in tg.optimizer.velocity:
            on_device("velocity", v)
        sc, sg = mc.state(), mg.state()
        for k in sc:
            close(f"e2e {k}", sg[k], sc[k])
        for i, (a, b) in enumerate(zip(lg, lc)):
            close_f(f"e2e loss step {i + 1}", a, b)
        el_c, el_g = tc.evaluate("test"), tg.evaluate("test")
        close_f("e2e test loss", el_g[0], el_c[0])
        close("e2e predict", mg.predict_proba(ds.x_test), mc.predict_proba(ds.x_test))
        gn_c, gn_g = mc.gradient_norms(), mg.gradient_norms()
        for k in gn_c:
            close_f(f"e2e grad norm {k}", gn_g[k], gn_c[k])
        # snapshot round trip (state -> load_state) on the device
        mg.load_state(sc)
        for k, v in mg.state().items():
            close(f"e2e load_state {k}", v, sc[k], rtol=0)
    finally:
        backend.use("cpu")


# ---- kernel signatures for the PTX compile check -------------------------------
def _record_signatures(path):
    """Wrap every kernel launch to record its argument types (written to `path`).

    tests/cuda_ptx_check.py compiles each kernel for a real GPU (sm_90 PTX, via
    NVVM, no GPU needed) with exactly these types: the simulator runs kernels as
    plain Python and would not notice code that the CUDA compiler rejects.
    """
    import atexit
    import json

    import numba

    from nnviz.engine.backend import cuda_kernels as K

    seen = {}

    def typ(a):
        if hasattr(a, "_ary"):                       # simulator device array
            a = a._ary
        if isinstance(a, np.ndarray):
            t = numba.typeof(a)
            return ["array", str(a.dtype), t.ndim, t.layout]
        return ["scalar", str(numba.typeof(a))]

    class Recorder:
        def __init__(self, name, kernel):
            self.name, self.kernel = name, kernel

        def __getitem__(self, cfg):
            launch = self.kernel[cfg]

            def run(*args):
                sig = json.dumps([typ(a) for a in args])
                seen.setdefault(self.name, set()).add(sig)
                return launch(*args)
            return run

    for nm in dir(K):
        k = getattr(K, nm)
        if type(k).__name__ == "FakeCUDAKernel" and not getattr(k, "_device", False):
            setattr(K, nm, Recorder(nm, k))

    def dump():
        with open(path, "w") as f:
            json.dump({k: sorted(json.loads(s) for s in v) for k, v in seen.items()}, f)
    atexit.register(dump)


def main(argv):
    if os.environ.get("NNVIZ_CUDA_SIGNATURES"):
        _record_signatures(os.environ["NNVIZ_CUDA_SIGNATURES"])
    wanted = set(argv)
    t_all = time.perf_counter()
    failed = passed = 0
    for fn in CHECKS:
        if wanted and fn.__name__ not in wanted:
            continue
        t0 = time.perf_counter()
        try:
            fn()
        except Exception as e:  # report every check, not just the first failure
            failed += 1
            print(f"FAIL {fn.__name__}: {type(e).__name__}: {e}", flush=True)
            traceback.print_exc(file=sys.stderr)
        else:
            passed += 1
            print(f"PASS {fn.__name__} {time.perf_counter() - t0:.1f}s", flush=True)
    print(f"SUMMARY passed={passed} failed={failed} "
          f"seconds={time.perf_counter() - t_all:.1f}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
