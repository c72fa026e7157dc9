"""Process-wide settings, applied by the entry points (`nnviz` CLI, the app, the bench's
nnviz worker) with one explicit call, never as a side effect of an import: a program that
embeds the engine keeps its own process settings unless it asks for these."""
from __future__ import annotations

import ctypes
import os
import sys

state: bool | None = None   # None: tune_process() not called; else whether glibc took the settings


def _keep_freed_memory() -> bool:
    """Stop glibc from giving each step's freed activations back to the kernel.

    A training step frees and reallocates the same few MB of activations; with glibc's
    defaults part of that is unmapped and then faulted in again (about 600 page faults
    per LeNet-5 step at batch 64, about 15% of the step). Fixed thresholds keep up to
    128 MB of freed memory in the heap for reuse. NNVIZ_MALLOC_DEFAULTS=1 leaves glibc alone.
    """
    if not sys.platform.startswith("linux") or os.environ.get("NNVIZ_MALLOC_DEFAULTS"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 32 << 20)
                    and libc.mallopt(m_trim_threshold, 128 << 20))
    except (OSError, AttributeError):   # not glibc
        return False


def tune_process() -> bool:
    """Apply the process-wide settings once (later calls do nothing); True when the
    allocator took them."""
    global state
    if state is None:
        state = _keep_freed_memory()
    return state
