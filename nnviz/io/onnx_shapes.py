"""The small integer tensors PyTorch computes for `x.view(x.size(0), -1)`: Shape, Gather,
Unsqueeze, Concat and Constant are evaluated while reading, the batch size kept as a symbol."""
import numpy as np

from .onnx_tensors import check_tensor


class _Batch:
    """The batch dimension inside a shape computation (unknown until run time)."""

    def __repr__(self):
        return "N"


BATCH = _Batch()


class ShapeOps:
    """GraphReader's handlers for shape arithmetic (consts: name -> numpy array, object
    arrays where they hold BATCH)."""

    def _op_Constant(self, node, a):
        from onnx import TensorProto
        if "value" in a:
            if not isinstance(a["value"], TensorProto):
                self._fail("has a value that is not a dense tensor")
            val = check_tensor(a["value"], f"{self.where} value")
        elif "value_int" in a:
            val = np.array(a.get("value_int", 0), dtype=np.int64)
        elif "value_ints" in a:
            val = np.array(a.get("value_ints", []), dtype=np.int64)
        elif "value_float" in a:
            val = np.array(a.get("value_float", 0.0), dtype=np.float32)
        else:
            self._fail("has no dense tensor value nnviz can read")
        self.consts[node.output[0]] = val

    def _op_Shape(self, node, a):
        v = self.values.get(node.input[0])
        if v is None:
            self._fail(f"input {node.input[0]!r} is not a layer output")
        full = [BATCH, *v.onnx_shape]
        self.consts[node.output[0]] = np.array(full[a.get("start", 0):a.get("end", None)],
                                               dtype=object)

    def _small(self, name, what):
        if name in self.values:     # shape arithmetic only; on activations these are layers
            self._unsupported()
        val = self._const(name, what, shape_ok=True)
        if val.size > 64:
            self._fail(f"{what} {name!r} has {val.size} values; nnviz evaluates only small "
                       f"shape tensors")
        return val

    def _int_values(self, name, what):
        """A small constant as a numpy int64 array (not one that holds the batch size)."""
        val = self._small(name, what)
        if val.dtype == object and any(v is BATCH for v in val.reshape(-1)):
            self._fail(f"{what} {name!r} depends on the batch size")
        try:
            return val.astype(np.int64)
        except (TypeError, ValueError):
            self._fail(f"{what} {name!r} is not a list of integers")

    def _op_Gather(self, node, a):
        data, idx = self._small(node.input[0], "data"), self._int_values(node.input[1], "indices")
        try:
            self.consts[node.output[0]] = np.asarray(
                np.take(data, idx, axis=a.get("axis", 0)), dtype=data.dtype)
        except (IndexError, ValueError) as e:
            self._fail(str(e))

    def _op_Unsqueeze(self, node, a):
        data = self._small(node.input[0], "data")
        axes = self._int_values(node.input[1], "axes").reshape(-1)
        out = data
        try:
            for ax in sorted(int(x) % (data.ndim + axes.size) for x in axes):
                out = np.expand_dims(out, ax)
        except (ValueError, IndexError):
            self._fail(f"axes {axes.tolist()} do not fit a tensor of {data.ndim} dimensions")
        self.consts[node.output[0]] = out

    def _op_Concat(self, node, a):
        parts = [np.asarray(self._small(n, "input"), dtype=object).reshape(-1)
                 for n in node.input]
        if a.get("axis", 0) not in (0, -1):
            self._fail("concatenates shape tensors along an axis other than 0")
        self.consts[node.output[0]] = np.concatenate(parts)

