"""ONNX tensors and node attributes, checked before anything is allocated from them."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx

MAX_TENSOR_VALUES = 1 << 28      # one weight tensor: 1 GiB of float32


class OnnxError(Exception):
    """One line saying what in the graph nnviz cannot read."""


_FLOATS = {1: np.float32, 10: np.float16, 11: np.float64}
_INTS = {6: np.int32, 7: np.int64, 9: np.bool_}   # bool: Dropout's training_mode

def check_tensor(tp: onnx.TensorProto, what: str) -> np.ndarray:
    """The tensor's values as a numpy array, after checking it cannot cost more than it stores."""
    from onnx import TensorProto, numpy_helper
    if tp.data_location == TensorProto.EXTERNAL or len(tp.external_data):
        where = next((e.value for e in tp.external_data if e.key == "location"), "?")
        raise OnnxError(f"{what} keeps its data in external files (external storage: "
                        f"{where!r}); refused: nnviz reads self-contained .onnx files only")
    if tp.HasField("segment"):
        raise OnnxError(f"{what} is a segment of a larger tensor, which nnviz does not read")
    dims = [int(d) for d in tp.dims]
    if any(d < 0 for d in dims):
        raise OnnxError(f"{what} declares a negative dimension {dims}")
    count = math.prod(dims)
    if count > MAX_TENSOR_VALUES:
        raise OnnxError(f"{what} declares shape {dims} ({count:,} values), more than nnviz's "
                        f"limit of {MAX_TENSOR_VALUES:,}")
    dtype = _FLOATS.get(tp.data_type) or _INTS.get(tp.data_type)
    if dtype is None:
        raise OnnxError(f"{what} has element type {tp.data_type}; nnviz reads float, double, "
                        f"float16, int32, int64 and bool tensors")
    if tp.raw_data:
        stored = len(tp.raw_data)
        need = count * np.dtype(dtype).itemsize
    else:
        field = {1: "float_data", 11: "double_data", 7: "int64_data"}.get(tp.data_type, "int32_data")
        stored, need = len(getattr(tp, field)), count
    if stored != need:
        raise OnnxError(f"{what} declares shape {dims} ({count:,} values) but stores "
                        f"{stored:,} {'bytes' if tp.raw_data else 'values'}")
    a = numpy_helper.to_array(tp)
    if tp.data_type in _FLOATS:
        a = a.astype(np.float32)
        if not np.isfinite(a).all():
            raise OnnxError(f"{what} contains NaN or infinite values")
    return a


def f32(v: float) -> float:
    """ONNX keeps float settings as float32: 0.1 comes back as 0.10000000149; take the
    shortest decimal that is the same float32 (0.1)."""
    return float(str(np.float32(v)))


class Attrs(dict):
    """Node attributes; get() checks the value has the kind of its default."""

    def __init__(self, node, where):
        from onnx import helper
        super().__init__()
        self.where = where
        for a in node.attribute:
            try:
                v = helper.get_attribute_value(a)
            except Exception:   # a damaged attribute: the type check below names it
                v = None
            self[a.name] = v.decode("utf-8", "replace") if isinstance(v, bytes) else v

    def flag(self, name: str, default: int = 0) -> bool:
        """A 0/1 attribute (transB, keepdims, ceil_mode, ...); other values are refused."""
        v = self.get(name, default)
        if v not in (0, 1):
            raise OnnxError(f"{self.where}: attribute {name!r} is {v}; ONNX allows 0 or 1")
        return bool(v)

    def get(self, name, default=None):
        if name not in self:
            return default
        v = self[name]
        if isinstance(default, (list, tuple)):
            ok = isinstance(v, list) and all(isinstance(x, int) for x in v)
        elif isinstance(default, float):
            ok = isinstance(v, (int, float)) and math.isfinite(v)
        elif isinstance(default, str):
            ok = isinstance(v, str)
        else:
            ok = isinstance(v, int)
        if not ok:
            raise OnnxError(f"{self.where}: attribute {name!r} has a value of the wrong kind "
                            f"({type(v).__name__})")
        return v
