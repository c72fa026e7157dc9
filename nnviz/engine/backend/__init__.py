"""Backend selection. Layers reach kernels only through `get()`; what a backend module
offers, and its optional `capabilities`, is written down in contract.py.

`auto` picks CUDA when numba.cuda finds a GPU and the cuda backend is
installed, else the CPU; the choice is logged once.
"""
from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger("nnviz")
_current = None


class BackendError(RuntimeError):
    pass


def _configure_cpu_threads():
    # OpenBLAS/MKL threads spin while Numba's threads run: pin BLAS to one.
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=1, user_api="blas")
    except Exception:  # threadpoolctl missing or no BLAS found: nothing to pin
        pass


def cuda_available() -> bool:
    if os.environ.get("NNVIZ_DISABLE_CUDA"):
        return False
    try:
        from numba import cuda
        return bool(cuda.is_available())
    except Exception:
        return False


def available() -> list[str]:
    names = ["cpu"]
    if cuda_available():
        names.append("cuda")
    return names


def load(name: str | None = "auto") -> Any:
    """Return the backend module for `name` (auto, cpu, cuda)."""
    name = (name or "auto").lower()
    if name not in ("auto", "cpu", "cuda"):
        raise BackendError(f"unknown backend {name!r}: expected auto, cpu or cuda")
    if name == "auto":
        name = "cuda" if cuda_available() else "cpu"
    if name == "cuda":
        if not cuda_available():
            raise BackendError("backend 'cuda' requested but no CUDA GPU is available "
                               "(numba.cuda.is_available() is False); use --backend cpu")
        try:
            from . import cuda
        except ImportError as e:
            raise BackendError(f"backend 'cuda' is not available: {e}") from e
        return cuda
    from . import cpu
    _configure_cpu_threads()
    return cpu


def get() -> Any:
    """The active backend (CPU unless `use()` chose another)."""
    global _current
    if _current is None:
        _current = load("cpu")
    return _current


def use(name: str | None = "auto") -> Any:
    global _current
    mod = load(name)
    if _current is not mod:
        log.info("nnviz backend: %s (%s)", mod.name, mod.device_name())
    _current = mod
    return mod
