"""MNIST / Fashion-MNIST in the original IDX format (gzipped or raw).

Looked for under ``<data_dir>/mnist/`` and ``<data_dir>/fashion-mnist/`` with the
standard names ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
``t10k-images-idx3-ubyte[.gz]`` and ``t10k-labels-idx1-ubyte[.gz]``.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ..files import FileRefused, open_regular
from .dataset import MAX_VALUES, Dataset, DatasetError, check_labels, normalize_images

IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
CLASS_NAMES = {
    "mnist": [str(i) for i in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
}


def find_file(folder: Path, stem: str) -> Path | None:
    """``folder/stem.gz`` or ``folder/stem`` (gz preferred), or None."""
    for cand in (folder / (stem + ".gz"), folder / stem):
        if cand.is_file():
            return cand
    return None


def _open_stream(path: Path, raw):
    """The file itself, or a gunzipping reader when it is gzip (by name or magic)."""
    magic = raw.read(2)
    raw.seek(0)
    if magic == b"\x1f\x8b" or str(path).endswith(".gz"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    return raw


def _read(stream, n: int) -> bytes:
    """Up to n bytes; the gzip reader returns short reads, so loop until n or the end."""
    parts, got = [], 0
    while got < n:
        block = stream.read(min(n - got, 1 << 24))
        if not block:
            break
        parts.append(block)
        got += len(block)
    return b"".join(parts)


def read_idx(path: Path, magic: int, max_values: int | None = None) -> np.ndarray:
    """uint8 images (N, H, W) for magic 2051, labels (N,) for 2049, from a raw or gzipped file.

    The header is checked against `max_values` (Python integers: N*H*W cannot overflow)
    before the body is decompressed, and never more than the header promises is inflated,
    so a gzip bomb or a lying header costs nothing.
    """
    limit = MAX_VALUES if max_values is None else max_values
    ndim = 3 if magic == IMAGE_MAGIC else 1
    head_len = 4 + 4 * ndim
    try:
        with open_regular(path) as raw:
            stream = _open_stream(path, raw)
            head = _read(stream, head_len)
            dims = _check_header(head, path, magic, ndim, limit)
            need = 1
            for d in dims:
                need *= d
            body = _read(stream, need + 1)
    except FileRefused as e:
        raise DatasetError(f"{path}: {e}") from None
    except EOFError:
        raise DatasetError(f"{path}: gzip data is truncated (file incomplete?)") from None
    except (gzip.BadGzipFile, zlib.error) as e:
        raise DatasetError(f"{path}: corrupt gzip data ({e})") from None
    except OSError as e:
        raise DatasetError(f"{path}: cannot read file ({e.strerror or e})") from None
    if len(body) < need:
        raise DatasetError(f"{path}: truncated: header promises {head_len + need} bytes "
                           f"({'x'.join(map(str, dims))}) but file has {head_len + len(body)}")
    if len(body) > need:
        raise DatasetError(f"{path}: unexpected trailing bytes after the "
                           f"{'x'.join(map(str, dims))} values")
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def _check_header(head: bytes, path: Path, magic: int, ndim: int, limit: int) -> tuple:
    if len(head) < 4 + 4 * ndim:
        raise DatasetError(f"{path}: too short for an IDX header ({len(head)} bytes)")
    got = int.from_bytes(head[:4], "big")
    if got != magic:
        kind = "image" if magic == IMAGE_MAGIC else "label"
        raise DatasetError(f"{path}: wrong IDX magic number {got}, expected {magic} for a {kind} file")
    dims = tuple(int.from_bytes(head[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    if ndim == 3 and (dims[1] == 0 or dims[2] == 0):
        raise DatasetError(f"{path}: image dimensions {dims[1]}x{dims[2]} are invalid")
    values = 1
    for d in dims:
        values *= d
    if values > limit:
        raise DatasetError(f"{path}: header declares {'x'.join(map(str, dims))} = {values:,} values, "
                           f"more than the {limit:,} nnviz loads")
    return dims


def load_idx_folder(folder: Path, name: str = "mnist") -> Dataset:
    """Load an MNIST-format folder; validates everything before building the Dataset."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: folder not found; put the four IDX files there or "
                           f"run 'nnviz datasets download {name}'")
    paths = {}
    for key, stem in FILES.items():
        p = find_file(folder, stem)
        if p is None:
            raise DatasetError(f"{folder / stem}[.gz]: file not found; run "
                               f"'nnviz datasets download {name}'")
        paths[key] = p
    arrays = {}
    for key, p in paths.items():
        magic = IMAGE_MAGIC if key.endswith("images") else LABEL_MAGIC
        arrays[key] = read_idx(p, magic)
    classes = CLASS_NAMES.get(name, CLASS_NAMES["mnist"])
    for split in ("train", "test"):
        xi, yl = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if xi.shape[0] != yl.shape[0]:
            raise DatasetError(f"{paths[f'{split}_images']}: {xi.shape[0]} images but "
                               f"{paths[f'{split}_labels'].name} has {yl.shape[0]} labels")
        check_labels(yl, len(classes), str(paths[f"{split}_labels"]))
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise DatasetError(f"{paths['test_images']}: image size {arrays['test_images'].shape[1:]} "
                           f"differs from the training images {arrays['train_images'].shape[1:]}")
    xtr, xte, norm = normalize_images(arrays["train_images"][:, None], arrays["test_images"][:, None])
    return Dataset(name=name, x_train=xtr, y_train=arrays["train_labels"].astype(np.int64),
                   x_test=xte, y_test=arrays["test_labels"].astype(np.int64),
                   class_names=list(classes), normalization=norm, source=str(folder))
