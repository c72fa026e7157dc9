"""Compile every CUDA kernel to PTX for a real GPU, without a GPU.

    python tests/cuda_ptx_check.py SIGNATURES.json

SIGNATURES.json comes from `NNVIZ_CUDA_SIGNATURES=... NUMBA_ENABLE_CUDASIM=1
python tests/cuda_sim_checks.py`: the argument types of every kernel launch
the checks made. Each kernel is compiled by numba's CUDA compiler through
NVVM (cuda.compile_ptx, sm_90), which catches what the simulator cannot:
typing errors, unsupported Python, float64 leaking into float32 kernels.
Needs libNVVM (a CUDA toolkit, or the nvidia-cuda-nvcc-cu12 wheel with
CUDA_HOME pointing at its nvidia/cuda_nvcc folder), not a GPU. Must run with
the simulator OFF. Prints "PTX name n_signatures" per kernel and exits 1 on
any failure.
"""
import json
import os
import sys

import numpy as np

if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
    sys.exit("run this with the CUDA simulator off")

import numba
from numba import cuda, types

from nnviz.engine.backend import cuda_kernels as K

CC = (9, 0)


def _offline_device_functions():
    # numba compiles device functions (and some builtins such as max) for "the
    # current device", which needs a driver; there is none here, so name the
    # target compute capability instead. Only this check script does this.
    from types import SimpleNamespace

    import numba.cuda.dispatcher as d
    d.get_current_device = lambda: SimpleNamespace(compute_capability=CC)


def to_type(spec):
    if spec[0] == "array":
        _, dtype, ndim, layout = spec
        return types.Array(numba.from_dtype(np.dtype(dtype)), ndim, layout)
    return getattr(types, spec[1])


def main(path):
    _offline_device_functions()
    with open(path) as fh:
        sigs = json.load(fh)
    bad = 0
    for name in sorted(sigs):
        fn = getattr(K, name).py_func
        for spec in sigs[name]:
            argtys = tuple(to_type(s) for s in spec)
            try:
                ptx, _ = cuda.compile_ptx(fn, argtys, cc=CC)
            except Exception as e:  # report all kernels, then fail
                bad += 1
                print(f"FAIL {name}{argtys}: {type(e).__name__}: {e}", flush=True)
                continue
            # float32 kernels should not do double-precision math on the device
            if ".f64" in ptx and "float64" not in str(argtys):
                f64 = [l.strip() for l in ptx.splitlines() if ".f64" in l][:3]
                print(f"WARN {name}{argtys}: float64 instructions: {f64}", flush=True)
        print(f"PTX {name} {len(sigs[name])}", flush=True)
    print(f"PTX SUMMARY kernels={len(sigs)} failed={bad}", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
