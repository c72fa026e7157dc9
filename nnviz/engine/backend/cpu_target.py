"""What the CPU offers and what Numba compiles for: the vector extensions that decide how
fast the kernels run (a kernel's best blocking differs between AVX2's 16 and AVX-512's 32
vector registers), and what the bench reports."""
from __future__ import annotations

import functools
import os

# the extensions that matter for float32 kernels, in the order the bench prints them
VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16",
                "avx_vnni", "amx_tile", "neon", "asimd", "sve")


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> list[str]:
    """The host CPU's vector extensions (Linux /proc/cpuinfo names), [] where unknown."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    have = set(line.split(":", 1)[1].split())
                    return [v for v in VECTOR_FLAGS if v in have]
    except OSError:
        pass
    return []


@functools.lru_cache(maxsize=1)
def numba_target() -> tuple[str, tuple[str, ...]]:
    """(CPU name, vector features) that Numba generates code for: the host's unless
    NUMBA_CPU_NAME / NUMBA_CPU_FEATURES say otherwise (e.g. haswell to test AVX2 code)."""
    import llvmlite.binding as ll
    from numba.core import config
    # set by numba from the environment at import; getattr: not declared for type checkers
    name = getattr(config, "CPU_NAME", None) or ll.get_host_cpu_name()
    feats = getattr(config, "CPU_FEATURES", None)
    if feats is None:
        feats = ll.get_host_cpu_features().flatten()
    on = {f[1:] for f in feats.split(",") if f.startswith("+")}
    vec = ("sse4.2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "neon", "sve")
    return name, tuple(v for v in vec if v in on)


def vector_bits() -> int:
    """Width of the widest float vector Numba's code uses: 512, 256 or 128."""
    if os.environ.get("NNVIZ_VECTOR_BITS"):
        return int(os.environ["NNVIZ_VECTOR_BITS"])
    feats = numba_target()[1]
    return 512 if "avx512f" in feats else 256 if "avx2" in feats or "avx" in feats else 128
