"""Dataset names -> loaders, the user data folder, and the catalogue."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .bundled import BUNDLED_NAMES, bundled_path, load_bundled
from .cifar import ARCHIVE, SUBDIR, TEST_FILE, load_cifar10
from .dataset import Dataset, DatasetError
from .folder import load_image_folder
from .hdf5 import load_hdf5
from .idx import FILES, find_file, load_idx_folder
from .toy import TOY_NAMES, make_toy

DOWNLOADABLE = {"mnist": "mnist", "fashion-mnist": "fashion-mnist", "cifar10": "cifar10"}
KINDS = {**{n: "toy" for n in TOY_NAMES}, **{n: "bundled" for n in BUNDLED_NAMES},
         "mnist": "idx", "fashion-mnist": "idx", "cifar10": "cifar"}
_SIZES = {"mnist": (60000, 10000, [1, 28, 28]), "fashion-mnist": (60000, 10000, [1, 28, 28]),
          "cifar10": (50000, 10000, [3, 32, 32])}


# SGD (momentum 0.9) learning rates for the sets whose default network wants another than
# the image default (0.05), used when the user gives none (`nnviz train`, the inspector).
# color-shapes: lab7-cnn with PyTorch's default init is at 79.8% after 2 epochs at 0.01
# and 90.7% at 0.03, 95.5% at 0.02 (seed 0; docs/datasets.md).
DEFAULT_LR = {"color-shapes": 0.02}


def default_lr(name: str | None, fallback: float) -> float:
    """The learning rate to train the set `name` with when none is given."""
    return DEFAULT_LR.get(str(name), fallback)


def default_data_dir() -> Path:
    """``$NNVIZ_DATA_DIR``, else the platform's per-user data folder + ``nnviz``."""
    env = os.environ.get("NNVIZ_DATA_DIR")
    if env:
        return Path(env).expanduser()
    home = Path.home()
    if sys.platform.startswith("win"):
        base = os.environ.get("APPDATA")
        return (Path(base) if base else home / "AppData" / "Roaming") / "nnviz"
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "nnviz"
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg and os.path.isabs(xdg) else home / ".local" / "share") / "nnviz"


def _data_dir(data_dir) -> Path:
    return Path(data_dir).expanduser() if data_dir is not None else default_data_dir()


def dataset_folder(name: str, data_dir=None) -> Path:
    """Where a downloadable set is looked for."""
    return _data_dir(data_dir) / DOWNLOADABLE[name]


def _no_kwargs(name: str, kw: dict) -> None:
    if kw:
        raise DatasetError(f"{name}: unexpected parameter(s) {', '.join(sorted(kw))}")


def load_dataset(name_or_path: str, data_dir=None, **kw) -> Dataset:
    """Load a dataset by name (see ``list_datasets``) or from an .h5 file / image folder path."""
    name = str(name_or_path)
    if name in TOY_NAMES:
        allowed = {"n", "noise", "seed", "test_fraction", "classes"}
        bad = set(kw) - allowed
        if bad:
            raise DatasetError(f"{name}: unexpected parameter(s) {', '.join(sorted(bad))} "
                               f"(allowed: {', '.join(sorted(allowed))})")
        return make_toy(name, **kw)
    if name in BUNDLED_NAMES:
        _no_kwargs(name, kw)
        return load_bundled(name)
    if name in ("mnist", "fashion-mnist"):
        _no_kwargs(name, kw)
        return load_idx_folder(dataset_folder(name, data_dir), name=name)
    if name == "cifar10":
        _no_kwargs(name, kw)
        return load_cifar10(dataset_folder(name, data_dir))
    path = Path(name).expanduser()
    if path.is_dir():
        bad = set(kw) - {"seed", "test_fraction", "size"}
        if bad:
            raise DatasetError(f"{path}: unexpected parameter(s) {', '.join(sorted(bad))}")
        return load_image_folder(path, **kw)
    if path.is_file():
        _no_kwargs(str(path), kw)
        if path.suffix.lower() in (".h5", ".hdf5", ".hdf"):
            return load_hdf5(path)
        raise DatasetError(f"{path}: unknown file type (expected .h5/.hdf5 or an image folder)")
    if path.exists():     # a FIFO, a device, a socket: nothing a dataset is read from
        raise DatasetError(f"{path}: not a regular file or folder (a pipe or device?)")
    known = ", ".join(list(KINDS))
    raise DatasetError(f"{name}: no such dataset name, file or folder (names: {known})")


def _present(name: str, data_dir) -> tuple[bool, str]:
    kind = KINDS[name]
    if kind == "toy":
        return True, "generated"
    if kind == "bundled":
        p = bundled_path(name)
        return p.is_file(), str(p)
    folder = dataset_folder(name, data_dir)
    if kind == "idx":
        return all(find_file(folder, s) for s in FILES.values()), str(folder)
    ok = ((folder / TEST_FILE).is_file() or (folder / SUBDIR / TEST_FILE).is_file()
          or (folder / ARCHIVE).is_file())
    return ok, str(folder)


def list_datasets(data_dir=None) -> list[dict]:
    """One dict per known name: name, kind, where, present, and sizes when known."""
    out = []
    for name, kind in KINDS.items():
        present, where = _present(name, data_dir)
        entry = {"name": name, "kind": kind, "where": where, "present": bool(present),
                 "downloadable": name in DOWNLOADABLE}
        if kind == "toy":
            entry.update(n_train=200, n_test=200, input_shape=[2])
        elif kind == "bundled" and present:
            entry.update(_h5_sizes(Path(where)))
        elif name in _SIZES and present:
            entry.update(n_train=_SIZES[name][0], n_test=_SIZES[name][1], input_shape=_SIZES[name][2])
        out.append(entry)
    return out


def _h5_sizes(path: Path) -> dict:
    try:
        import h5py

        with h5py.File(path, "r") as f:
            shp = f["x_train"].shape
            return {"n_train": int(shp[0]), "n_test": int(f["x_test"].shape[0]),
                    "input_shape": [int(s) for s in (shp[1:] if len(shp) != 3 else (1,) + shp[1:])]}
    except Exception:  # catalogue stays usable when a file is damaged
        return {}
