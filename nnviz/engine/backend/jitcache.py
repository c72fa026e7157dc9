"""Where Numba keeps the compiled CPU kernels; decided once, before the first kernel is defined.

Numba looks in NUMBA_CACHE_DIR, then the package's __pycache__, then its own user folder;
when none is writable (a read-only install, a read-only home) every ``cache=True`` kernel
fails with "cannot cache function ...: no locator available". Here, when neither the package
folder nor NUMBA_CACHE_DIR is writable, nnviz's user cache folder (platform convention) is
used, and when that is not writable either the kernels are compiled without a cache: slower
starts, never a failure.
"""
from __future__ import annotations

import functools
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

KERNELS_DIR = Path(__file__).resolve().parent


def writable(folder) -> bool:
    """Can a file be created in `folder` (made if missing)? Checked by doing it, as Numba does."""
    try:
        os.makedirs(folder, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return False
    return True


def user_cache_dir() -> Path:
    """nnviz's per-user cache folder for kernels, by platform convention."""
    home = Path.home()
    if sys.platform.startswith("win"):
        base = os.environ.get("LOCALAPPDATA")
        return (Path(base) if base else home / "AppData" / "Local") / "nnviz" / "Cache" / "numba"
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "nnviz" / "numba"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg and os.path.isabs(xdg) else home / ".cache") / "nnviz" / "numba"


@functools.lru_cache(maxsize=1)
def cache_enabled() -> bool:
    """True when the kernels can be cached on disk (pointing Numba at a folder if needed)."""
    from numba.core import config as _config
    config: Any = _config      # CACHE_DIR is set from the environment at import
    if config.CACHE_DIR and writable(config.CACHE_DIR):
        return True
    if writable(KERNELS_DIR / "__pycache__"):
        return True
    try:
        folder = user_cache_dir()
    except (RuntimeError, KeyError):     # no home folder to be found
        return False
    if not writable(folder):
        return False
    config.CACHE_DIR = str(folder)
    os.environ["NUMBA_CACHE_DIR"] = str(folder)     # the same answer if Numba reloads its config
    return True
