"""The model file formats nnviz reads and writes, picked by content (reading) or extension (writing).

Each format is a module listed in FORMAT_MODULES and imported lazily. A format module exposes:

    NAME: str                        # short, shown to users: "nnviz HDF5", "Keras", "ONNX"
    EXTENSIONS: tuple[str, ...]      # lower case with the dot: (".onnx",); the first is the default
    def can_read(path: Path) -> bool
        # a cheap content sniff (a few bytes, a zip directory, an HDF5 group name); never raises,
        # never reads the whole file; `path` is an existing regular file
    def read(path: Path, **options) -> LoadedModel
        # every failure is a ModelFormatError(path, reason) (one line); unknown options are ignored
    def write(model, path: Path, **options) -> None
        # options: trainer=None, dataset=None, extra=None (formats keep what they can);
        # raises ModelFormatError(path, reason) when the format cannot represent the model
        # (e.g. "Keras has no layer for Abs (layer 3)"); writes atomically (io/atomic.py)

A format that cannot write sets `write = None`. LoadedModel.meta always has "format" (NAME);
imported models add "source_format" notes under meta["notes"] (a list of strings).

`load_model(path, input_scaling=None)` sniffs every format in order (the first that claims the
file reads it); when none does, the extension picks the format so its reader can say what is
wrong; otherwise one line lists what nnviz reads. `input_scaling` (see io/scaling.py) replaces the
model's input scaling after reading. `save_model(path, model, ...)` / `export_model(model, path,
...)` pick the format by extension (unknown extensions: nnviz HDF5, the native format).
"""
from __future__ import annotations

import importlib
import os
import stat
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import ModelFormatError

# sniffing order matters: nnviz's HDF5 files are also legacy Keras files, so nnviz comes first
FORMAT_MODULES = ("nnviz.io.nnviz_h5", "nnviz.io.keras_format", "nnviz.io.onnx_format")
DEFAULT_MODULE = "nnviz.io.nnviz_h5"

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _import(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name == name:       # the module itself is absent (not one of its imports)
            return None
        raise


def available() -> list[ModuleType]:
    """The format modules present in this nnviz, in sniffing order."""
    return [m for m in map(_import, FORMAT_MODULES) if m is not None]


def _missing_note() -> str:
    gone = [n.rsplit(".", 1)[1] for n in FORMAT_MODULES if _import(n) is None]
    return f" ({', '.join(gone)} support not installed)" if gone else ""


def describe_formats(writing: bool = False) -> str:
    """'nnviz HDF5 (.h5, .hdf5), Keras (.keras, .h5), ONNX (.onnx)' for messages."""
    mods = [m for m in available() if not writing or getattr(m, "write", None) is not None]
    return ", ".join(f"{m.NAME} ({', '.join(m.EXTENSIONS)})" for m in mods)


# ---- sniffing helpers for the format modules ---------------------------------------------------
def read_head(path: Path, n: int = 16, offset: int = 0) -> bytes:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read(n)
    except OSError:
        return b""


def is_hdf5(path: Path) -> bool:
    """HDF5 signature at 0 or at a user-block offset (512, 1024, 2048)."""
    return any(read_head(path, 8, off) == HDF5_SIGNATURE for off in (0, 512, 1024, 2048))


def h5_probe(path: Path, fn):
    """fn(open h5py.File) or None when the file does not open; for can_read()."""
    if not is_hdf5(path):
        return None
    try:
        import h5py
        with h5py.File(path, "r") as f:
            return fn(f)
    except Exception:   # a sniff never raises: any damage means 'not mine'
        return None


# ---- picking --------------------------------------------------------------------------------
def _check_file(path) -> Path:
    shown = os.fspath(path) if isinstance(path, (str, os.PathLike)) else str(path)
    p = Path(shown).expanduser()
    try:
        st = p.stat()
    except FileNotFoundError:
        raise ModelFormatError(shown, "no such file") from None
    except OSError as e:
        raise ModelFormatError(shown, f"cannot read: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ModelFormatError(shown, "is a folder, not a model file")
    if not stat.S_ISREG(st.st_mode):
        raise ModelFormatError(shown, "is not a regular file (a pipe or device?); "
                                      "give a saved model file")
    if not os.access(p, os.R_OK):
        raise ModelFormatError(shown, "permission denied")
    return p


def by_extension(path, writing: bool = False) -> ModuleType | None:
    suffix = Path(os.fspath(path)).suffix.lower()
    for name in FORMAT_MODULES:
        m = _import(name)
        if m is None:
            continue
        if suffix in m.EXTENSIONS and (not writing or getattr(m, "write", None) is not None):
            return m
    return None


def detect(path) -> ModuleType:
    """The format module that reads `path`, by content (see the module docstring)."""
    p = _check_file(path)
    for m in available():
        if m.can_read(p):
            return m
    guess = by_extension(p)     # nobody claims it: its extension's reader says what is wrong
    if guess is not None:
        return guess
    raise ModelFormatError(path, f"not a model file nnviz can read; it reads "
                                 f"{describe_formats()}{_missing_note()}")


def _refuse_outside_data(path: str | os.PathLike, p: Path) -> None:
    """An HDF5 file of any format must not read other files (external links or storage,
    virtual datasets: /etc/passwd, a FIFO). Checked before any reader looks inside."""
    if not is_hdf5(p):
        return
    from ..files import FileRefused, scan_h5
    try:
        import h5py
        with h5py.File(p, "r") as f:
            scan_h5(f)
    except FileRefused as e:
        raise ModelFormatError(path, str(e)) from None
    except OSError:
        return      # not an HDF5 file after all: the format's reader says what is wrong


def load_model(path: str | os.PathLike, input_scaling: Any = None, **options: Any) -> Any:
    """Read any supported model file; every failure is a ModelFormatError."""
    _refuse_outside_data(path, _check_file(path))
    fmt = detect(path)
    loaded = fmt.read(_check_file(path), **options)
    loaded.meta.setdefault("format", fmt.NAME)
    loaded.meta.setdefault("notes", [])
    if input_scaling is not None:
        from .scaling import set_input_scaling
        loaded.model = set_input_scaling(loaded.model, input_scaling)
    return loaded


def save_model(path: str | os.PathLike, model: Any, trainer: Any = None, dataset: Any = None,
               extra: dict | None = None, **options: Any) -> Any:
    """Write `model` in the format its extension names (nnviz HDF5 when unknown)."""
    path = Path(os.fspath(path)).expanduser()
    fmt = by_extension(path, writing=True)
    if fmt is None:
        suffix = path.suffix.lower()
        known = {e for m in available() for e in m.EXTENSIONS}
        if suffix in known or suffix == ".onnx":   # read-only, or ONNX support absent
            raise ModelFormatError(path, f"nnviz cannot write {suffix} files; it writes "
                                         f"{describe_formats(writing=True)}{_missing_note()}")
        fmt = importlib.import_module(DEFAULT_MODULE)
    fmt.write(model, path, trainer=trainer, dataset=dataset, extra=extra, **options)
    return path


def export_model(model: Any, path: str | os.PathLike, **options: Any) -> Any:
    """save_model with the model first (what the app's Export action calls)."""
    return save_model(path, model, **options)
