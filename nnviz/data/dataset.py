"""The one in-memory dataset shape used by the whole of nnviz.

Images are float32 NCHW, toy sets are float32 (N, 2); labels are int64.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Dataset", "DatasetError", "normalize_images", "check_labels", "MAX_VALUES", "MAX_CLASSES"]

# Budgets checked from headers and declared shapes before anything is decompressed or
# allocated: 2**30 sample values are 4 GiB as float32 (MNIST is 55 M, CIFAR-10 184 M).
MAX_VALUES = 1 << 30
MAX_CLASSES = 100_000


class DatasetError(ValueError):
    """A dataset could not be found, read or validated.

    The message always names the file, folder or parameter and what was wrong.
    """


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    normalization: dict = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        self.x_train = np.ascontiguousarray(self.x_train, dtype=np.float32)
        self.x_test = np.ascontiguousarray(self.x_test, dtype=np.float32)
        self.y_train = np.ascontiguousarray(self.y_train, dtype=np.int64)
        self.y_test = np.ascontiguousarray(self.y_test, dtype=np.int64)
        self.class_names = [str(c) for c in self.class_names]
        where = self.source or self.name
        for split, x, y in (("train", self.x_train, self.y_train), ("test", self.x_test, self.y_test)):
            if y.ndim != 1 or x.shape[0] != y.shape[0]:
                raise DatasetError(
                    f"{where}: {split} split has {x.shape[0]} samples but {y.shape[0]} labels")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise DatasetError(
                f"{where}: train samples have shape {self.x_train.shape[1:]} but test samples "
                f"have shape {self.x_test.shape[1:]}")
        check_labels(self.y_train, len(self.class_names), f"{where} (y_train)")
        check_labels(self.y_test, len(self.class_names), f"{where} (y_test)")

    @property
    def input_shape(self) -> tuple:
        return tuple(int(s) for s in self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def _split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        if split == "train":
            return self.x_train, self.y_train
        if split == "test":
            return self.x_test, self.y_test
        raise DatasetError(f"split: expected 'train' or 'test', got {split!r}")

    def batches(self, batch_size: int, *, seed: int = 0, epoch: int = 0,
                shuffle: bool = True, split: str = "train"):
        """Yield ``(xb, yb)`` mini-batches of one epoch.

        The order is ``np.random.default_rng([seed, epoch]).permutation(n)``, so
        a run is reproducible and can be resumed at any epoch.  The last,
        partial batch is included.  Unshuffled batches are views.
        """
        if int(batch_size) < 1:
            raise DatasetError(f"batch_size: must be >= 1, got {batch_size!r}")
        batch_size = int(batch_size)
        x, y = self._split(split)
        n = x.shape[0]
        if shuffle:
            order = np.random.default_rng([int(seed), int(epoch)]).permutation(n)
            for i in range(0, n, batch_size):
                idx = order[i:i + batch_size]
                yield x[idx], y[idx]
        else:
            for i in range(0, n, batch_size):
                yield x[i:i + batch_size], y[i:i + batch_size]

    def subset(self, n_train: int | None = None, n_test: int | None = None) -> Dataset:
        """The first ``n_train`` / ``n_test`` samples (all when None)."""
        for pname, v in (("n_train", n_train), ("n_test", n_test)):
            if v is not None and int(v) < 0:
                raise DatasetError(f"{pname}: must be >= 0, got {v!r}")
        nt = self.x_train.shape[0] if n_train is None else int(n_train)
        ne = self.x_test.shape[0] if n_test is None else int(n_test)
        return Dataset(
            name=self.name,
            x_train=self.x_train[:nt].copy(), y_train=self.y_train[:nt].copy(),
            x_test=self.x_test[:ne].copy(), y_test=self.y_test[:ne].copy(),
            class_names=list(self.class_names),
            normalization={k: list(v) for k, v in self.normalization.items()},
            source=self.source,
        )

    def describe(self) -> dict:
        """A JSON-able summary."""
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "n_train": int(self.x_train.shape[0]),
            "n_test": int(self.x_test.shape[0]),
            "normalization": {k: [float(v) for v in vals] for k, vals in self.normalization.items()},
            "source": str(self.source),
        }


def check_labels(y: np.ndarray, num_classes: int, where: str) -> None:
    """Raise DatasetError unless every label lies in [0, num_classes)."""
    if y.size == 0:
        return
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= num_classes:
        raise DatasetError(
            f"{where}: labels must lie in [0, {num_classes}), found values in [{lo}, {hi}]")


_CHUNK = 2048  # images per block: keeps index temporaries in cache


def normalize_images(x_train: np.ndarray, x_test: np.ndarray, *, scale: float = 255.0):
    """Scale to [0, 1], then per-channel (x - mean) / std with TRAIN statistics.

    Inputs are (N, C, H, W), uint8 or float.  Returns float32 C-contiguous arrays
    and the ``normalization`` dict.  uint8 input goes through a 256-entry
    histogram (exact statistics) and a lookup table, so 60k MNIST images take
    a fraction of a second.
    """
    c = x_train.shape[1]
    mean = np.zeros(c)
    std = np.ones(c)
    is_u8 = x_train.dtype == np.uint8 and x_test.dtype == np.uint8
    for ch in range(c):
        plane = x_train[:, ch]
        if plane.size == 0:
            continue
        if is_u8:
            hist = np.zeros(256)
            for i in range(0, plane.shape[0], _CHUNK):
                hist += np.bincount(plane[i:i + _CHUNK].reshape(-1), minlength=256)
            v = np.arange(256) / scale
            m = float(hist @ v) / plane.size
            var = float(hist @ np.square(v - m)) / plane.size
        else:
            flat = plane.reshape(plane.shape[0], -1)
            m = float(np.mean(flat, dtype=np.float64)) / scale
            var = float(np.var(flat, dtype=np.float64)) / scale ** 2
        mean[ch] = m
        std[ch] = np.sqrt(var) if var > 1e-12 else 1.0

    def apply(x):
        out = np.empty(x.shape, dtype=np.float32)
        for ch in range(c):
            if is_u8:
                lut = ((np.arange(256) / scale - mean[ch]) / std[ch]).astype(np.float32)
                for i in range(0, x.shape[0], _CHUNK):
                    out[i:i + _CHUNK, ch] = lut[x[i:i + _CHUNK, ch]]
            else:
                out[:, ch] = (x[:, ch] / scale - mean[ch]) / std[ch]
        return out

    norm = {"mean": [float(v) for v in mean], "std": [float(v) for v in std]}
    return apply(x_train), apply(x_test), norm
