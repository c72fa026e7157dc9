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

from .dataset import Dataset, DatasetError, check_labels, normalize_images

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


def read_bytes(path: Path) -> bytes:
    """File contents, gunzipped when the name ends in .gz or the gzip magic is present."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise DatasetError(f"{path}: cannot read file ({e.strerror or e})") from None
    if raw[:2] == b"\x1f\x8b" or str(path).endswith(".gz"):
        try:
            return gzip.decompress(raw)
        except EOFError:
            raise DatasetError(f"{path}: gzip data is truncated (file incomplete?)") from None
        except (gzip.BadGzipFile, zlib.error, OSError) as e:
            raise DatasetError(f"{path}: corrupt gzip data ({e})") from None
    return raw


def parse_idx(data: bytes, path: Path, magic: int) -> np.ndarray:
    """Parse an IDX byte string: uint8 images (N, H, W) for 2051, labels (N,) for 2049."""
    ndim = 3 if magic == IMAGE_MAGIC else 1
    head = 4 + 4 * ndim
    if len(data) < head:
        raise DatasetError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    got = int.from_bytes(data[:4], "big")
    if got != magic:
        kind = "image" if magic == IMAGE_MAGIC else "label"
        raise DatasetError(f"{path}: wrong IDX magic number {got}, expected {magic} for a {kind} file")
    dims = np.frombuffer(data, dtype=">u4", count=ndim, offset=4).astype(np.int64)
    if ndim == 3 and (dims[1] == 0 or dims[2] == 0):
        raise DatasetError(f"{path}: image dimensions {dims[1]}x{dims[2]} are invalid")
    need = head + int(np.prod(dims))
    if len(data) < need:
        raise DatasetError(f"{path}: truncated: header promises {need} bytes "
                           f"({'x'.join(map(str, dims))}) but file has {len(data)}")
    if len(data) > need:
        raise DatasetError(f"{path}: {len(data) - need} unexpected trailing bytes after the data")
    arr = np.frombuffer(data, dtype=np.uint8, offset=head)
    return arr.reshape(tuple(int(d) for d in dims))


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
        arrays[key] = parse_idx(read_bytes(p), p, magic)
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
