"""Save and load nnviz models as HDF5 files in the legacy Keras layout (docs/model-format.md)."""
import copy
import datetime
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..engine.spec import MAX_LAYERS
from ..files import FileRefused, check_regular, scan_h5
from . import keras as K
from .atomic import atomic_path
from .errors import ModelFormatError
from .tree import (
    MAX_ATTR_BYTES,
    TreeError,
    as_text,
    get_text_attr,
    read_array,
    read_tree,
    set_text_attr,
    write_array,
    write_tree,
)

FORMAT_VERSION = 1
MAX_INPUT_VALUES = 1 << 26   # per sample: a 4096x4096 RGB image is 50 M
MAX_CLASSES = 100_000
MAX_JSON_CHARS = 16 << 20
H5_SUFFIXES = (".h5", ".hdf5", ".keras", ".nnviz")


@dataclass
class LoadedModel:
    model: object
    meta: dict = field(default_factory=dict)
    path: Path | None = None

    def __repr__(self):
        return f"LoadedModel({self.model!r}, path={str(self.path)!r})"


# ---- layout helpers ------------------------------------------------------------------------
def _layout(model, nested=False):
    """Keras entries plus {nnviz state name: (keras layer name, weight name, to, from)}."""
    entries = K.convert(model.layers, K.Namer(), nested=nested)
    where = {}
    for gname, weights in K.weight_groups(entries):
        for layer, key, wname, to, frm in weights:
            where[f"{layer.index}.{key}"] = (gname, wname, to, frm)
    return entries, where


def _names(strings):
    return np.array([s.encode("utf-8") for s in strings], dtype="S") if strings \
        else np.zeros((0,), dtype="S1")


def _json_attr(obj, name, value, as_bytes=False):
    text = json.dumps(value, allow_nan=True)
    if as_bytes and len(text.encode("utf-8")) <= MAX_ATTR_BYTES:
        obj.attrs[name] = text.encode("utf-8")     # Keras writes its JSON attributes as bytes
    else:
        set_text_attr(obj, name, text)


def _plain(v):
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def _dataset_info(dataset):
    if dataset is None:
        return {"name": None, "input_shape": None, "class_names": None, "normalization": None}
    shape = getattr(dataset, "input_shape", None)
    names = getattr(dataset, "class_names", None)
    return {"name": getattr(dataset, "name", None),
            "input_shape": None if shape is None else [int(s) for s in shape],
            "class_names": None if names is None else [str(c) for c in names],
            "normalization": _plain(getattr(dataset, "normalization", None))}


def _umask_mode():
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o644


# ---- save ----------------------------------------------------------------------------------
def save_model(path, model, trainer=None, dataset=None, extra=None):
    """Write `model` (and the trainer's state, dataset facts, `extra`) to `path` atomically.

    The file is written beside the target and moved over it only when complete, so a
    failure (exception, full disk, crash) leaves any existing file untouched.
    """
    path = Path(os.fspath(path)).expanduser()
    data = model_bytes(model, trainer, dataset, extra)
    mode = (path.stat().st_mode & 0o777) if path.is_file() else _umask_mode()
    with atomic_path(path, mode) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
    return path


def model_bytes(model, trainer=None, dataset=None, extra=None):
    """The file save_model writes, as bytes.

    The HDF5 image is built in memory, so a full or read-only disk meets a plain write()
    (one OSError) and never the HDF5 library half-way through a file (tracebacks, then a
    crash). The CLI also calls this before training: every saved setting is checked then.
    """
    import io

    import h5py
    if dataset is None and trainer is not None:
        dataset = getattr(trainer, "dataset", None)
    state = trainer.state_dict() if trainer is not None else None
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        _write(f, model, state, dataset, extra)
    return buf.getvalue()


def _write(f, model, state, dataset, extra):
    from .. import __version__
    entries, where = _layout(model)
    host = model.state()
    backend = model.B.name

    # --- the Keras part ---
    _json_attr(f, "model_config", K.model_config(model, entries), as_bytes=True)
    f.attrs["keras_version"] = K.KERAS_VERSION
    f.attrs["backend"] = "nnviz"
    mw = f.create_group("model_weights")
    mw.attrs["keras_version"] = K.KERAS_VERSION
    mw.attrs["backend"] = "nnviz"
    layer_names = []
    for name, weights in K.weight_groups(entries):
        layer_names.append(name)
        g = mw.create_group(name)
        g.attrs["weight_names"] = _names([w[2] for w in weights])
        for layer, key, wname, to, _ in weights:
            write_array(g, wname, to(host[f"{layer.index}.{key}"]))
    mw.attrs["layer_names"] = _names(layer_names)

    # --- nnviz's own part ---
    g = f.create_group("nnviz")
    g.attrs["format_version"] = np.int64(FORMAT_VERSION)
    g.attrs["nnviz_version"] = str(__version__)
    g.attrs["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    g.attrs["backend"] = backend
    g.attrs["seed"] = np.int64(model.seed)
    g.attrs["dtype"] = str(model.dtype)
    _json_attr(g, "model_spec", model.to_spec())
    _json_attr(g, "dropout_rng", _plain(model.rng.bit_generator.state))
    dg = g.create_group("dataset")
    for k, v in _dataset_info(dataset).items():
        _json_attr(dg, k, v)
    if extra is not None:
        write_tree(g.create_group("extra"), extra)

    if state is None:
        return
    state = dict(state)
    history = state.pop("history", None)
    if history is not None:
        write_tree(g.create_group("history"), history)
    opt = state.get("optimizer")
    params = [n for n, _ in model.named_parameters()]
    if isinstance(opt, dict) and isinstance(opt.get("slots"), dict) and all(
            isinstance(v, (list, tuple)) and len(v) == len(params) for v in opt["slots"].values()):
        kind = str((opt.get("config") or {}).get("type", "SGD"))
        ow = f.create_group("optimizer_weights")
        names = [f"{kind}/iter:0"]
        ow.create_dataset(names[0], data=np.int64(opt.get("t", 0)))
        paths = {}
        for key, arrays in opt["slots"].items():
            paths[key] = []
            for pname, a in zip(params, arrays):
                _, wname, to, _ = where[pname]
                p = f"{kind}/{wname[:-2]}/{K.SLOT_NAMES.get(key, key)}:0"
                write_array(ow, p, to(np.asarray(a)))
                paths[key].append(p)
                names.append(p)
        ow.attrs["weight_names"] = _names(names)
        _json_attr(g, "optimizer_slots", paths)
        state["optimizer"] = {k: v for k, v in opt.items() if k != "slots"}
    write_tree(g.create_group("training"), state)
    cfg = state.get("config") or {}
    if isinstance(cfg, dict):
        _json_attr(f, "training_config", _plain(K.training_config(cfg)), as_bytes=True)


# ---- load ----------------------------------------------------------------------------------
class _Fail(Exception):
    pass


def load_model(path):
    """Read a file written by save_model; every failure is a ModelFormatError."""
    import h5py
    shown = os.fspath(path) if isinstance(path, (str, os.PathLike)) else str(path)
    try:
        p = Path(shown).expanduser()
        if not p.exists():
            raise ModelFormatError(shown, "no such file")
        if p.is_dir():
            raise ModelFormatError(shown, "is a folder, not a model file")
        check_regular(p)     # a FIFO or device would block h5py forever
        size = p.stat().st_size
        try:
            f = h5py.File(p, "r")
        except (OSError, ValueError) as e:
            raise ModelFormatError(shown, f"not a readable HDF5 file ({_short(e)})") from None
        with f:
            # nnviz writes its arrays uncompressed: together they fit in the file
            budget = 2 * size + (1 << 20)
            declared = scan_h5(f)
            if declared > budget:
                raise _Fail(f"its arrays declare {declared:,} bytes in all, more than a file of "
                            f"{size:,} bytes holds (nnviz does not compress its arrays)")
            model, meta = _read(f, budget)
    except ModelFormatError:
        raise
    except FileRefused as e:
        raise ModelFormatError(shown, str(e)) from None
    except (_Fail, TreeError) as e:
        raise ModelFormatError(shown, str(e)) from None
    except (KeyError, ValueError, OSError, json.JSONDecodeError) as e:
        raise ModelFormatError(shown, f"damaged or not an nnviz model file: {_short(e)}") from None
    except (TypeError, AttributeError, IndexError, RuntimeError, OverflowError, MemoryError,
            LookupError, ArithmeticError, AssertionError) as e:
        # h5py and numpy answer some corruptions with these; treat them all as a bad file
        raise ModelFormatError(shown, f"damaged file ({type(e).__name__}: {_short(e)})") from None
    return LoadedModel(model=model, meta=meta, path=p)


def _short(e, n=300):
    s = str(e).strip() or type(e).__name__
    s = " ".join(s.split())
    return s if len(s) <= n else s[:n] + "..."


def _group(parent, name):
    import h5py
    if name not in parent:
        raise _Fail(f"has no {parent.name.rstrip('/')}/{name} group"
                    + (" (not saved by nnviz?)" if name == "nnviz" else ""))
    g = parent.get(name)
    if not isinstance(g, h5py.Group):
        raise _Fail(f"{g.name} is not a group")
    return g


def _json(obj, name, required=True):
    text = get_text_attr(obj, name, required=False)
    if text is None:
        if required:
            raise _Fail(f"{obj.name} has no attribute {name!r}")
        return None
    if len(text) > MAX_JSON_CHARS:   # parsing 60 MB of hostile JSON took seconds
        raise _Fail(f"{obj.name} attribute {name!r} holds {len(text):,} characters of JSON, more "
                    f"than the {MAX_JSON_CHARS:,} a model of {MAX_LAYERS:,} layers needs")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise _Fail(f"{obj.name} attribute {name!r} is not valid JSON: {e}") from None


def _int_attr(obj, name):
    if name not in obj.attrs:
        raise _Fail(f"{obj.name} has no attribute {name!r}")
    v = np.asarray(obj.attrs[name])
    if v.shape != () or v.dtype.kind not in "iu":
        raise _Fail(f"{obj.name} attribute {name!r} should be an integer")
    return int(v)


def _read(f, budget):
    from ..engine import LayerError, model_from_spec
    from ..engine.layers.init import weight_limit
    g = _group(f, "nnviz")
    version = _int_attr(g, "format_version")
    if version > FORMAT_VERSION:
        raise _Fail(f"written by a newer nnviz (format version {version}); this nnviz reads "
                    f"format {FORMAT_VERSION}: update nnviz")
    if version < 1:
        raise _Fail(f"unknown format version {version}")
    meta = {"format_version": version,
            "nnviz_version": get_text_attr(g, "nnviz_version", required=False),
            "created": get_text_attr(g, "created", required=False),
            "backend": get_text_attr(g, "backend", required=False)}

    # the Keras view must be there and parse, though the spec is what we build from
    cfg = _json(f, "model_config")
    if not isinstance(cfg, dict) or cfg.get("class_name") not in ("Sequential", "Functional"):
        raise _Fail("model_config is not a Keras Sequential or Functional model")
    spec = _json(g, "model_spec")
    _check_spec_size(spec)
    seed = _int_attr(g, "seed")
    dtype = get_text_attr(g, "dtype", required=False) or "float32"
    if dtype not in ("float32", "float64"):
        raise _Fail(f"unsupported dtype {dtype!r}")
    try:
        with weight_limit(budget // np.dtype(dtype).itemsize):
            model = model_from_spec(spec, seed=seed, dtype=np.dtype(dtype))
    except LayerError as err:
        raise _Fail(f"model_spec: {err}") from None

    # weights, from the Keras groups
    mw = _group(f, "model_weights")
    got = _name_list(mw, "layer_names")
    # nested: each residual as one nnviz>Residual layer, as nnviz wrote before Keras could
    # open its files
    for nested in (True, False):
        entries, where = _layout(model, nested)
        groups = list(K.weight_groups(entries))
        want = [name for name, _ in groups]
        if got == want:
            break
    else:
        raise _Fail(f"model_weights layer_names {got} do not match the model's layers {want}")
    expected = model.state()
    state = {}
    for gname, weights in groups:
        if not weights:
            continue
        lg = _group(mw, gname)
        names = _name_list(lg, "weight_names")
        if names != [w[2] for w in weights]:
            raise _Fail(f"{lg.name} weight_names {names} do not match the model "
                        f"({[w[2] for w in weights]})")
        for layer, key, wname, to, frm in weights:
            sname = f"{layer.index}.{key}"
            kshape = to(expected[sname]).shape
            if wname not in lg:
                raise _Fail(f"has no weight {lg.name}/{wname}")
            arr = read_array(lg[wname], budget, kshape, f"weight {lg.name}/{wname}", require_crc=True)
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                raise _Fail(f"weight {lg.name}/{wname} holds NaN or infinite values (saved from a "
                            f"run that diverged?); the weights cannot be used")
            state[sname] = frm(arr)
    model.load_state(state)
    rng_state = _json(g, "dropout_rng", required=False)
    if rng_state is not None:
        _set_rng(model, rng_state, "dropout_rng")

    meta["seed"] = seed
    meta["model_spec"] = spec
    ds = _group(g, "dataset") if "dataset" in g else None
    meta["dataset"] = {k: (_json(ds, k, required=False) if ds is not None else None)
                       for k in ("name", "input_shape", "class_names", "normalization")}
    _check_dataset_info(meta["dataset"])
    meta["history"] = read_tree(_group(g, "history"), budget, require_crc=True) if "history" in g else None
    meta["extra"] = read_tree(_group(g, "extra"), budget, require_crc=True) if "extra" in g else None
    meta["training"] = None
    if "training" in g:
        training = read_tree(_group(g, "training"), budget, require_crc=True)
        slots = _json(g, "optimizer_slots", required=False)
        if slots is not None:
            training["optimizer"] = dict(training.get("optimizer") or {})
            training["optimizer"]["slots"] = _read_slots(f, model, where, slots, budget)
        if meta["history"] is not None:
            training["history"] = copy.deepcopy(meta["history"])
        _check_training(model, training)
        meta["training"] = training
    meta["keras_version"] = get_text_attr(f, "keras_version", required=False)
    return model, meta


def _check_spec_size(spec):
    """Refuse specs far beyond any real model before building them (time, memory, messages)."""
    if not isinstance(spec, dict):
        return   # model_from_spec names what is wrong, and counts the layers first
    shape = spec.get("input_shape")
    if isinstance(shape, list) and all(isinstance(s, int) and not isinstance(s, bool) for s in shape):
        values = 1
        for s in shape:
            values *= max(s, 1)
        if values > MAX_INPUT_VALUES:
            raise _Fail(f"model_spec input_shape {shape} has {values:,} values per sample, "
                        f"more than {MAX_INPUT_VALUES:,}")


def _check_dataset_info(ds):
    """nnviz/dataset holds facts about the training data; odd values are a damaged file."""
    def bad(key, want):
        raise _Fail(f"nnviz/dataset attribute {key!r} should be {want}, found "
                    f"{_short(json.dumps(ds[key])[:200], 80)}")
    if ds["name"] is not None and not isinstance(ds["name"], str):
        bad("name", "text")
    shape = ds["input_shape"]
    if shape is not None and not (isinstance(shape, list) and len(shape) <= 8 and all(
            isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)):
        bad("input_shape", "a list of positive integers")
    names = ds["class_names"]
    if names is not None and not (isinstance(names, list) and len(names) <= MAX_CLASSES
                                  and all(isinstance(c, str) for c in names)):
        bad("class_names", f"a list of at most {MAX_CLASSES:,} names")
    norm = ds["normalization"]
    if norm is not None and not (isinstance(norm, dict) and all(
            isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                        for x in v) for v in norm.values())):
        bad("normalization", "an object of number lists")


def _name_list(obj, name):
    if name not in obj.attrs:
        raise _Fail(f"{obj.name} has no attribute {name!r}")
    v = np.asarray(obj.attrs[name])
    if v.ndim != 1:
        raise _Fail(f"{obj.name} attribute {name!r} should be a list of names")
    if v.size == 0:
        return []
    if v.dtype.kind not in "SOU":
        raise _Fail(f"{obj.name} attribute {name!r} should be a list of names")
    return [as_text(x, f"{obj.name} {name}") for x in v]


def _set_rng(model, st, what):
    if not isinstance(st, dict):
        raise _Fail(f"{what} is not a generator state")
    try:
        model.rng.bit_generator.state = st
    except (TypeError, ValueError, KeyError, OverflowError) as e:
        raise _Fail(f"{what} is not a valid generator state: {_short(e)}") from None


def _read_slots(f, model, where, slots, budget):
    ow = _group(f, "optimizer_weights")
    params = model.named_parameters()
    if not isinstance(slots, dict):
        raise _Fail("nnviz/optimizer_slots should map slot names to lists of paths")
    out = {}
    for key, paths in slots.items():
        if not isinstance(paths, list) or len(paths) != len(params):
            raise _Fail(f"optimizer slot {key!r} lists {len(paths) if isinstance(paths, list) else '?'} "
                        f"arrays for {len(params)} parameters")
        arrays = []
        for (pname, p), path in zip(params, paths):
            if not isinstance(path, str) or path not in ow:
                raise _Fail(f"optimizer_weights has no {path!r}")
            _, _, to, frm = where[pname]
            kshape = to(model.B.to_host(p)).shape
            arrays.append(frm(read_array(ow[path], budget, kshape, f"optimizer_weights/{path}",
                                         require_crc=True)))
        out[key] = arrays
    return out


def _check_training(model, st):
    """The trainer's own check, so a damaged state fails here, not later."""
    from ..train.trainer import Trainer, TrainerError
    try:
        Trainer.check_state(model, st)
    except TrainerError as e:
        raise _Fail(str(e)) from None
