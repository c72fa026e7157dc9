"""ONNX model files (`.onnx`), read and written with the `onnx` package.

Reading maps the graph to an nnviz Sequential (nnviz/io/onnx_read.py), writing maps every
nnviz layer to ONNX opset 13 (nnviz/io/onnx_write.py); docs/model-format.md says what maps
to what. Every failure to read is a ModelFormatError naming the file.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..files import FileRefused, open_regular
from .atomic import atomic_path
from .errors import ModelFormatError
from .formats import _check_file
from .h5model import LoadedModel, _dataset_info, _umask_mode

if TYPE_CHECKING:
    import onnx

    from ..engine import Sequential

NAME = "ONNX"
EXTENSIONS = (".onnx",)
MAX_FILE_BYTES = 1 << 30    # parsing holds the whole file in memory; real small nets are MBs
DATASET_KEY = "nnviz.dataset"     # metadata_props entry: JSON of the dataset facts
DATASET_KEYS = ("name", "input_shape", "class_names", "normalization")
_TORCH_GRAPH_NAMES = {"", "main_graph", "torch_jit", "torch-jit-export"}

# A serialised ModelProto starts with field 1 (ir_version, varint tag 0x08) and a small
# version number, then another ModelProto field tag.
_NEXT_TAGS = {0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72, 0x7A, 0x8A}


def can_read(path: str | os.PathLike) -> bool:
    """True when the file's first bytes look like an ONNX ModelProto."""
    try:
        with open_regular(path) as fh:
            head = fh.read(4)
    except (OSError, FileRefused):
        return False
    return len(head) >= 3 and head[0] == 0x08 and 1 <= head[1] <= 0x7F and head[2] in _NEXT_TAGS


def _text(v):
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _shown(path):
    return os.fspath(path) if isinstance(path, (str, os.PathLike)) else str(path)


def _parse(shown):
    import onnx
    from google.protobuf.message import DecodeError
    p = _check_file(shown)     # exists, a regular readable file
    try:
        # opened through nnviz/files.py (a FIFO swapped in is refused), read after the size
        # check, parsed from memory: no path for external data to be resolved against
        with open_regular(p) as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > MAX_FILE_BYTES:
                raise ModelFormatError(shown, f"is {size:,} bytes; nnviz reads ONNX files up "
                                              f"to {MAX_FILE_BYTES:,} bytes")
            data = fh.read(size)
    except FileRefused as e:
        raise ModelFormatError(shown, str(e)) from None
    except OSError as e:
        raise ModelFormatError(shown, f"cannot read: {e.strerror or e}") from None
    if not data:
        raise ModelFormatError(shown, "is empty")
    try:
        return p, onnx.load_model_from_string(data)
    except (DecodeError, RuntimeWarning, ValueError, TypeError) as e:
        reason = " ".join(str(e).split())[:200] or type(e).__name__
        raise ModelFormatError(shown, f"not a readable ONNX file: damaged, truncated or "
                                      f"another format ({reason})") from None


def read(path: str | os.PathLike, **options) -> LoadedModel:
    """Open an ONNX file as an nnviz model; `meta["notes"]` says what was changed on the way."""
    from ..engine import LayerError, Sequential
    from .onnx_read import GraphReader, OnnxError
    shown = _shown(path)
    p, mp = _parse(shown)
    reader = GraphReader(mp)
    try:
        layers, input_shape = reader.read()
        name = _text(mp.graph.name) if mp.graph.name not in _TORCH_GRAPH_NAMES else p.stem
        model = Sequential(layers, input_shape, seed=int(options.get("seed", 0)), name=name)
        model.load_state(reader.state(model))
    except OnnxError as e:
        raise ModelFormatError(shown, str(e)) from None
    except LayerError as e:
        raise ModelFormatError(shown, f"cannot build the model: {e}") from None
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError,
            ArithmeticError, RecursionError, MemoryError) as e:
        # protobuf accepts damaged files whose fields then hold nonsense: still a bad file
        reason = " ".join(str(e).split())[:200]
        raise ModelFormatError(shown, f"damaged file ({type(e).__name__}: {reason})") from None
    metadata = {_text(e.key): _text(e.value) for e in mp.metadata_props}
    producer = " ".join(_text(x) for x in (mp.producer_name, mp.producer_version) if x)
    meta = {"format": NAME, "ir_version": int(mp.ir_version), "opset": reader.opset,
            "source_format": f"ONNX opset {reader.opset}" + (f" from {producer}" if producer else ""),
            "producer": producer,
            "notes": reader.notes, "seed": model.seed, "model_spec": model.to_spec(),
            "metadata": metadata, "dataset": _dataset_meta(metadata, reader.notes),
            "training": None, "history": None, "extra": None}
    return LoadedModel(model=model, meta=meta, path=p)


def _dataset_meta(metadata: dict, notes: list) -> dict:
    """The dataset facts nnviz wrote into metadata_props (all None when absent)."""
    out: dict = dict.fromkeys(DATASET_KEYS)
    text = metadata.get(DATASET_KEY)
    if text is None:
        return out
    try:
        facts = json.loads(text)
    except ValueError:
        facts = None
    if not isinstance(facts, dict):
        notes.append(f"ignored the file's {DATASET_KEY} metadata (not a JSON object)")
        return out
    out.update({k: facts.get(k) for k in DATASET_KEYS})
    return out


def to_model_proto(model: Sequential, metadata: dict | None = None) -> onnx.ModelProto:
    """The ONNX ModelProto of an nnviz model (checked with onnx.checker)."""
    import onnx

    from .onnx_write import GraphWriter
    mp = GraphWriter(model).build(metadata)
    onnx.checker.check_model(mp, full_check=True)    # with shape inference
    return mp


def write(model: Sequential, path: str | os.PathLike, **options) -> Path:
    """Write `model` as ONNX to `path` atomically (an existing file is untouched on failure)."""
    import onnx
    path = Path(os.fspath(path)).expanduser()
    metadata = dict(options.get("metadata") or {})
    dataset = options.get("dataset") or getattr(options.get("trainer"), "dataset", None)
    if dataset is not None:    # class names and normalisation travel along
        metadata[DATASET_KEY] = json.dumps(_dataset_info(dataset))
    try:
        mp = to_model_proto(model, metadata)
    except ValueError as e:     # a layer type without an ONNX form
        raise ModelFormatError(path, str(e)) from None
    mode = (path.stat().st_mode & 0o777) if path.is_file() else _umask_mode()
    with atomic_path(path, mode) as tmp:
        onnx.save(mp, tmp)
    return path
