"""Serial and parallel twins of a kernel must not share Numba's on-disk cache entries."""
import numpy as np

from nnviz.engine.backend import cpu_kernels as K


def test_every_serial_parallel_pair_has_its_own_cache_name():
    pairs = [(n[:-2], getattr(K, n), getattr(K, n[:-2] + "_p")) for n in dir(K)
             if n.endswith("_s") and hasattr(K, n[:-2] + "_p")]
    assert len(pairs) >= 8
    for name, s, p in pairs:
        assert s.targetoptions.get("parallel") is not True, name
        assert p.targetoptions.get("parallel") is True, name
        # the cache file is named after the qualified name: it must differ
        assert s.py_func.__qualname__ != p.py_func.__qualname__, name


def test_twins_compute_the_same():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 500)).astype(np.float32)
    g = rng.standard_normal((3, 500)).astype(np.float32)
    a, b = np.empty_like(x), np.empty_like(x)
    K.relu_bwd_s(x, g, a)
    K.relu_bwd_p(x, g, b)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, np.where(x > 0, g, 0))
