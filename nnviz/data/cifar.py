"""CIFAR-10, python version (pickled batches).

Looked for under ``<data_dir>/cifar10/``: the extracted files ``data_batch_1`` ..
``data_batch_5``, ``test_batch`` and ``batches.meta`` (directly there or in
``cifar-10-batches-py/``), or the archive ``cifar-10-python.tar.gz``.

The batches are pickles; they are read with ``encoding="bytes"`` through an
unpickler that only allows the numpy array reconstruction classes, so a
tampered file cannot run code.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from ..files import FileRefused, read_regular
from .dataset import Dataset, DatasetError, check_labels, normalize_images

TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
ARCHIVE = "cifar-10-python.tar.gz"
MAX_FILE = 256 << 20     # one batch is 31 MB; the archive member cap keeps a bomb out of memory
SUBDIR = "cifar-10-batches-py"
DEFAULT_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")


def _unpickle(data: bytes, where: str) -> dict:
    try:
        obj = _SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as e:  # any unpickling failure means a corrupt file
        raise DatasetError(f"{where}: not a readable CIFAR-10 pickle ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict):
        raise DatasetError(f"{where}: expected a pickled dict, found {type(obj).__name__}")
    return {k.decode() if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def _batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    d = _unpickle(data, where)
    if "data" not in d or "labels" not in d:
        raise DatasetError(f"{where}: missing key {'data' if 'data' not in d else 'labels'!r}")
    x = np.asarray(d["data"])
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072:
        raise DatasetError(f"{where}: 'data' must be uint8 (N, 3072), found {x.dtype} {x.shape}")
    try:
        y = np.asarray(d["labels"], dtype=np.int64).reshape(-1)
    except (TypeError, ValueError, OverflowError):   # OverflowError: a label such as 2**70
        raise DatasetError(f"{where}: 'labels' is not a list of integers from 0 to 9") from None
    if y.shape[0] != x.shape[0]:
        raise DatasetError(f"{where}: {x.shape[0]} images but {y.shape[0]} labels")
    check_labels(y, 10, where)
    return x.reshape(-1, 3, 32, 32), y


def _read_files(folder: Path) -> tuple[dict[str, bytes], str]:
    """Raw bytes of every needed file, from the extracted folder or the archive."""
    names = TRAIN_FILES + [TEST_FILE, META_FILE]
    for base in (folder, folder / SUBDIR):
        if all((base / n).is_file() for n in TRAIN_FILES + [TEST_FILE]):
            out: dict[str, bytes] = {}
            for n in names:
                p = base / n
                if p.is_file():
                    try:
                        out[str(p)] = read_regular(p, MAX_FILE)
                    except FileRefused as e:
                        raise DatasetError(f"{p}: {e}") from None
                    except OSError as e:
                        raise DatasetError(f"{p}: cannot read file ({e.strerror or e})") from None
            return out, str(base)
    arch = folder / ARCHIVE
    if not arch.is_file():
        raise DatasetError(f"{folder}: no CIFAR-10 batches ({', '.join(names[:-1])}) and no {ARCHIVE}; "
                           f"run 'nnviz datasets download cifar10'")
    out = {}
    found: set[str] = set()
    try:
        with tarfile.open(arch, "r:gz") as tf:
            for m in tf:       # streamed: stops once every batch is in, the rest is not inflated
                if found >= set(names):
                    break
                member = m.name.rsplit("/", 1)[-1]
                if m.isfile() and member in names:
                    if m.size > MAX_FILE:
                        raise DatasetError(f"{arch}:{m.name}: member of {m.size:,} bytes, more than "
                                           f"the {MAX_FILE:,} a CIFAR-10 batch can be")
                    f = tf.extractfile(m)
                    out[f"{arch}:{m.name}"] = f.read(MAX_FILE) if f else b""
                    found.add(member)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DatasetError(f"{arch}: corrupt or truncated archive ({e})") from None
    return out, str(arch)


def load_cifar10(folder: Path) -> Dataset:
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: folder not found; run 'nnviz datasets download cifar10'")
    files, source = _read_files(folder)
    by_base = {k.rsplit("/", 1)[-1]: k for k in files}
    for n in TRAIN_FILES + [TEST_FILE]:
        if n not in by_base:
            raise DatasetError(f"{source}: missing {n}")
    xs, ys = zip(*(_batch(files[by_base[n]], by_base[n]) for n in TRAIN_FILES))
    xte, yte = _batch(files[by_base[TEST_FILE]], by_base[TEST_FILE])
    classes = list(DEFAULT_CLASSES)
    if META_FILE in by_base:
        meta = _unpickle(files[by_base[META_FILE]], by_base[META_FILE])
        names = meta.get("label_names")
        if not isinstance(names, list) or len(names) != 10:
            raise DatasetError(f"{by_base[META_FILE]}: 'label_names' must be a list of 10 names")
        classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    xtr, xte_f, norm = normalize_images(np.concatenate(xs), xte)
    return Dataset(name="cifar10", x_train=xtr, y_train=np.concatenate(ys), x_test=xte_f,
                   y_test=yte, class_names=classes, normalization=norm, source=source)
