"""nnviz's own HDF5 files (legacy Keras layout + the /nnviz group): the format registry's entry."""
from __future__ import annotations

from pathlib import Path

from . import h5model
from .formats import h5_probe

NAME = "nnviz HDF5"
EXTENSIONS = (".h5", ".hdf5", ".nnviz")


def can_read(path: Path) -> bool:
    return bool(h5_probe(path, lambda f: "nnviz" in f))


def read(path: Path, **options) -> h5model.LoadedModel:
    return h5model.load_model(path)


def write(model, path: Path, trainer=None, dataset=None, extra=None, **options) -> None:
    h5model.save_model(path, model, trainer=trainer, dataset=dataset, extra=extra)
