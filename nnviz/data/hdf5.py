"""Datasets stored in one HDF5 file.

Layout (all at the root of the file):

=============== ======================================================
``x_train``     samples: uint8 (scaled by 1/255) or float; shape
                ``(N, H, W)`` greyscale images, ``(N, C, H, W)`` images,
                or ``(N, D)`` feature vectors
``y_train``     integer labels, shape ``(N,)``, values in [0, K)
``x_test``      like ``x_train`` (same per-sample shape)
``y_test``      like ``y_train``
``class_names`` optional: K strings (variable-length or fixed bytes);
                default ``"0" .. "K-1"`` with K = largest label + 1
=============== ======================================================

Images are normalised per channel with the mean/std of the training split
(after the 1/255 scaling for uint8); ``(N, D)`` vectors per feature.  Root
attributes (``description`` ...) are ignored by the loader.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..files import FileRefused, check_regular, nbytes, scan_h5
from .dataset import MAX_CLASSES, MAX_VALUES, Dataset, DatasetError, normalize_images

REQUIRED = ("x_train", "y_train", "x_test", "y_test")


def _read(f, key: str, path: Path) -> np.ndarray:
    import h5py

    obj = f.get(key)
    if obj is None:
        raise DatasetError(f"{path}: missing dataset '{key}' (need {', '.join(REQUIRED)})")
    if not isinstance(obj, h5py.Dataset):
        raise DatasetError(f"{path}: '{key}' is a group, expected a dataset")
    values = nbytes(obj.shape, 1)
    limit = MAX_CLASSES if key == "class_names" else MAX_VALUES
    if values > limit or nbytes(obj.shape, obj.dtype.itemsize) > 4 * MAX_VALUES:
        raise DatasetError(f"{path}: '{key}' declares shape {obj.shape} = {values:,} values of "
                           f"{obj.dtype}, more than nnviz loads ({limit:,} values, 4 bytes each)")
    try:
        return obj[()]
    except Exception as e:  # h5py raises OSError/KeyError/... for damaged data
        raise DatasetError(f"{path}: cannot read dataset '{key}' ({e})") from None


def _name(n, path: Path) -> str:
    if isinstance(n, (bytes, np.bytes_)):
        try:
            return bytes(n).decode("utf-8")
        except UnicodeDecodeError:
            return bytes(n).decode("latin-1")
    if isinstance(n, (str, np.str_)):
        return str(n)
    raise DatasetError(f"{path}: 'class_names' must be text, found {type(n).__name__}")


def load_hdf5(path, name: str | None = None) -> Dataset:
    """Load an HDF5 file with the layout described in the module docstring."""
    import h5py

    path = Path(path)
    try:
        check_regular(path)     # a FIFO would block h5py
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except FileRefused as e:
        raise DatasetError(f"{path}: {e}") from None
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DatasetError(f"{path}: not a readable HDF5 file ({e})") from None
    with f:
        try:    # data kept in other files (external storage or links) would read them
            scan_h5(f)
        except FileRefused as e:
            raise DatasetError(f"{path}: {e}") from None
        missing = [k for k in REQUIRED if k not in f]
        if missing:
            raise DatasetError(f"{path}: missing dataset(s) {', '.join(missing)} "
                               f"(need {', '.join(REQUIRED)})")
        arr = {k: _read(f, k, path) for k in REQUIRED}
        raw_names = _read(f, "class_names", path) if "class_names" in f else None
    for split in ("train", "test"):
        x, y = arr[f"x_{split}"], arr[f"y_{split}"]
        if x.ndim not in (2, 3, 4):
            raise DatasetError(f"{path}: 'x_{split}' must have shape (N,D), (N,H,W) or (N,C,H,W), "
                               f"found {x.shape}")
        if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
            raise DatasetError(f"{path}: 'x_{split}' must be uint8 or float, found {x.dtype}")
        if x.dtype.kind in "iu" and x.dtype != np.uint8:
            raise DatasetError(f"{path}: integer 'x_{split}' must be uint8, found {x.dtype}")
        if np.issubdtype(x.dtype, np.floating) and x.size and not np.isfinite(x).all():
            raise DatasetError(f"{path}: 'x_{split}' contains NaN or infinite values")
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise DatasetError(f"{path}: 'y_{split}' must be 1-D integers, found {y.dtype} {y.shape}")
        if x.shape[0] != y.shape[0]:
            raise DatasetError(f"{path}: 'x_{split}' has {x.shape[0]} samples but "
                               f"'y_{split}' has {y.shape[0]} labels")
    if arr["x_train"].shape[1:] != arr["x_test"].shape[1:]:
        raise DatasetError(f"{path}: 'x_train' samples {arr['x_train'].shape[1:]} and 'x_test' "
                           f"samples {arr['x_test'].shape[1:]} differ in shape")
    if (arr["x_train"].dtype == np.uint8) != (arr["x_test"].dtype == np.uint8):
        raise DatasetError(f"{path}: 'x_train' ({arr['x_train'].dtype}) and 'x_test' "
                           f"({arr['x_test'].dtype}) differ in dtype")
    ymax = max([int(arr[k].max()) for k in ("y_train", "y_test") if arr[k].size] or [0])
    ymin = min([int(arr[k].min()) for k in ("y_train", "y_test") if arr[k].size] or [0])
    if ymin < 0:
        raise DatasetError(f"{path}: negative label {ymin}")
    if raw_names is not None:
        names = [_name(n, path) for n in np.asarray(raw_names).reshape(-1)]
        if ymax >= len(names):
            raise DatasetError(f"{path}: label {ymax} out of range for {len(names)} class_names")
    elif ymax >= MAX_CLASSES:    # the class list is built up to the largest label
        raise DatasetError(f"{path}: label {ymax} means {ymax + 1:,} classes, more than the "
                           f"{MAX_CLASSES:,} nnviz supports")
    else:
        names = [str(i) for i in range(ymax + 1)]
    xtr, xte = arr["x_train"], arr["x_test"]
    scale = 255.0 if xtr.dtype == np.uint8 else 1.0
    if xtr.ndim == 3:
        xtr, xte = xtr[:, None], xte[:, None]
    if xtr.ndim == 2:  # feature vectors: normalise per feature
        xtr4, xte4, norm = normalize_images(xtr[:, :, None], xte[:, :, None], scale=scale)
        xtr, xte = xtr4[:, :, 0], xte4[:, :, 0]
    else:
        xtr, xte, norm = normalize_images(xtr, xte, scale=scale)
    return Dataset(name=name or path.stem, x_train=xtr, y_train=arr["y_train"], x_test=xte,
                   y_test=arr["y_test"], class_names=names, normalization=norm, source=str(path))
