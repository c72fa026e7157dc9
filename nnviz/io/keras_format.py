"""Keras files (legacy .h5 with model_config, Keras 3 .keras zips): the format registry's entry.

Reads both; writes `.keras` (nnviz's own .h5, nnviz_h5, is also a Keras legacy file). A .keras
file is never extracted: its two members are read into memory after checking the member
count, their declared sizes and compression ratios.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from .errors import ModelFormatError
from .formats import h5_probe, is_hdf5, read_head
from .h5model import LoadedModel, _umask_mode
from .keras_graph import KerasReadError
from .keras_read import convert
from .tree import TreeError, read_array

NAME = "Keras"
EXTENSIONS = (".keras", ".h5", ".hdf5")

MAX_MEMBERS = 64
MAX_CONFIG_BYTES = 16 << 20
MAX_WEIGHTS_BYTES = 2 << 30
MAX_RATIO = 1000            # declared size / compressed size: deflate tops out near 1032


def can_read(path: Path) -> bool:
    if read_head(path, 4) in (b"PK\x03\x04", b"PK\x05\x06"):
        return True         # a zip: only .keras among our formats (the reader checks the rest)
    return bool(h5_probe(path, lambda f: "nnviz" not in f and "model_config" in f.attrs))


def read(path: Path, **options) -> LoadedModel:
    try:
        if read_head(path, 2) == b"PK":
            spec, state, notes, version = _read_zip(path)
            kind = "Keras 3 .keras"
        elif not is_hdf5(path):
            raise KerasReadError("not a Keras file: neither a .keras zip nor HDF5 (.h5)")
        else:
            spec, state, notes, version = _read_h5(path)
            kind = "Keras legacy HDF5"
        model = _build(spec, state)
    except (KerasReadError, TreeError) as e:
        raise ModelFormatError(path, str(e)) from None
    except ModelFormatError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as e:
        raise ModelFormatError(path, f"not a readable .keras (zip) file: {e}") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            RuntimeError, OverflowError, MemoryError) as e:
        raise ModelFormatError(path, f"damaged Keras file ({type(e).__name__}: "
                                     f"{' '.join(str(e).split())[:300]})") from None
    meta = {"format": NAME, "source_format": kind, "keras_version": version, "notes": notes,
            "seed": 0, "model_spec": spec, "training": None, "history": None, "extra": None,
            "dataset": {"name": None, "input_shape": None, "class_names": None,
                        "normalization": None}}
    return LoadedModel(model=model, meta=meta, path=Path(path))


def _build(spec, state):
    from ..engine import LayerError, model_from_spec
    try:
        model = model_from_spec(spec, seed=0)
        model.load_state(state)
    except LayerError as e:
        raise KerasReadError(f"the converted model does not build: {e}") from None
    return model


def write(model, path: Path, **options) -> None:
    """A Keras 3 .keras file; refused (one line) for a model Keras cannot represent."""
    import datetime

    import h5py

    from .. import __version__
    from . import keras as K
    from .atomic import atomic_path
    problems = K.keras_problems(model)
    if problems:
        raise ModelFormatError(path, f"Keras cannot represent this model: {'; '.join(problems)}"
                               f" (save it as .h5 for nnviz)")
    entries = K.convert(model.layers, K.Namer())
    config = K.keras3_config(model, entries)
    host = model.state()
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.create_group("vars")
        for group, weights in K.keras3_weight_groups(entries, config["class_name"] != "Sequential"):
            g = f.create_group(f"layers/{group}/vars")
            for i, (layer, key, _, to, _) in enumerate(weights):
                g.create_dataset(str(i), data=to(host[f"{layer.index}.{key}"]))
    meta = {"keras_version": "3.0.0", "nnviz_version": str(__version__),
            "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    mode = _umask_mode()
    with atomic_path(Path(path), mode) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", json.dumps(meta))
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", buf.getvalue())


def _group(root, path):
    """root[path] when every step is a group stored in this file (else None)."""
    import h5py
    g = root
    for part in path.split("/"):
        if not isinstance(g, h5py.Group) or not isinstance(g.get(part, getlink=True),
                                                           h5py.HardLink):
            return None
        g = g.get(part)
    return g if isinstance(g, h5py.Group) else None


def _dataset(group, name, what):
    """group[name] when it is a dataset stored in this file (no external links or storage:
    a hostile file could point them at any file on disk)."""
    import h5py
    link = group.get(name, getlink=True)
    if isinstance(link, (h5py.ExternalLink, h5py.SoftLink)):
        raise KerasReadError(f"{what} is a link; nnviz reads arrays stored in the file")
    ds = group.get(name)
    if isinstance(ds, h5py.Dataset) and ds.external:
        raise KerasReadError(f"{what} keeps its data in external files; nnviz reads arrays "
                             f"stored in the file")
    return ds


# ---- legacy HDF5 ------------------------------------------------------------------------------
def _text(v):
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, np.ndarray) and v.shape == ():
        return _text(v.item())
    if isinstance(v, str):
        return v
    raise KerasReadError("model_config is not text")


def _names(attr):
    return [_text(x) for x in np.asarray(attr).reshape(-1)]


def _read_h5(path):
    import h5py
    budget = 2 * Path(path).stat().st_size + (1 << 20)
    with h5py.File(path, "r") as f:
        if "model_config" not in f.attrs:
            raise KerasReadError("has no model_config (a weights-only file?); save the whole "
                                 "model with model.save(...)")
        text = _text(f.attrs["model_config"])
        if len(text) > MAX_CONFIG_BYTES:
            raise KerasReadError("model_config is larger than 16 MiB")
        cfg = json.loads(text)
        mw = f.get("model_weights")
        if mw is None or not isinstance(mw, h5py.Group):
            raise KerasReadError("has no model_weights group")
        version = _text(f.attrs["keras_version"]) if "keras_version" in f.attrs else None

        def weights(node, _snake_name, shapes):
            g = _group(mw, node.name)
            if g is None:
                raise KerasReadError(f"model_weights has no group for {node.label}")
            names = _names(g.attrs.get("weight_names", np.zeros(0, "S1")))
            if len(names) != len(shapes):
                raise KerasReadError(f"{node.label} has {len(names)} weight arrays, expected "
                                     f"{len(shapes)} for its config")
            out = []
            for wn, shape in zip(names, shapes):
                if wn not in g:
                    raise KerasReadError(f"model_weights/{node.name} has no {wn}")
                what = f"{node.name}/{wn}"
                out.append(read_array(_dataset(g, wn, what), budget, shape, what))
            return out

        spec, state, notes = convert(cfg, weights, max_params=budget // 4)
    return spec, state, notes, version


# ---- Keras 3 zip ------------------------------------------------------------------------------
def _member(zf, name, cap):
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise KerasReadError(f"is a zip without {name}: not a Keras 3 .keras file") from None
    if info.flag_bits & 0x1:
        raise KerasReadError(f"{name} is encrypted")
    if info.file_size > cap:
        raise KerasReadError(f"{name} declares {info.file_size:,} bytes, more than nnviz reads "
                             f"({cap:,})")
    if info.file_size > (1 << 20) and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        raise KerasReadError(f"{name} expands {info.file_size // max(info.compress_size, 1):,}"
                             f" times (a zip bomb?)")
    with zf.open(info) as fh:
        data = fh.read(info.file_size + 1)
    if len(data) != info.file_size:
        raise KerasReadError(f"{name} does not hold its declared size")
    return data


def _read_zip(path):
    import h5py
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise KerasReadError(f"the zip holds {len(infos):,} members; a .keras file has 3")
        cfg = json.loads(_member(zf, "config.json", MAX_CONFIG_BYTES).decode("utf-8"))
        meta = {}
        if "metadata.json" in zf.namelist():
            try:
                meta = json.loads(_member(zf, "metadata.json", 1 << 20).decode("utf-8"))
            except (ValueError, KerasReadError):
                meta = {}
        blob = _member(zf, "model.weights.h5", MAX_WEIGHTS_BYTES)
    budget = len(blob) + (1 << 20)
    opened = []      # the weights file opens at the first weight: config errors come first

    def weights(node, group, shapes):
        if not opened:
            try:
                opened.append(h5py.File(io.BytesIO(blob), "r"))
            except OSError:
                raise KerasReadError("model.weights.h5 is not a readable HDF5 file") from None
        g = _group(opened[0], f"layers/{group}/vars")
        if g is None:     # tf.keras 2.13-2.15 wrote .keras weights under this name
            g = _group(opened[0], f"_layer_checkpoint_dependencies/{group}/vars")
        if g is None:
            raise KerasReadError(f"model.weights.h5 has no layers/{group}/vars for {node.label}")
        if len(g) != len(shapes):
            raise KerasReadError(f"{node.label} has {len(g)} weight arrays in model.weights.h5, "
                                 f"expected {len(shapes)} for its config")
        return [read_array(_dataset(g, str(i), f"layers/{group}/vars/{i}"), budget, shape,
                           f"layers/{group}/vars/{i}") for i, shape in enumerate(shapes)]

    try:
        spec, state, notes = convert(cfg, weights, max_params=budget // 4)
    finally:
        for f in opened:
            f.close()
    version = meta.get("keras_version") if isinstance(meta, dict) else None
    return spec, state, notes, version
