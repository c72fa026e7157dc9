"""An ONNX graph as an nnviz Sequential (docs/model-format.md, "ONNX").

The graph is walked node by node in its (topological) order. Activations form one
chain of nnviz layers; an `Add` of an earlier chain value and the chain's end turns
the layers in between into a `Residual`. Small integer tensors that PyTorch computes
for `x.view(x.size(0), -1)` (Shape, Gather, Unsqueeze, Concat) are evaluated here, with
the batch size as a symbol (onnx_shapes.py). Every tensor is checked (no external data,
declared size matching the stored bytes, a size budget) before numpy sees it (onnx_tensors.py).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..engine.backend import cpu as _cpu
from ..engine.layers import (
    Abs,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    ConvTranspose2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    InputScaling,
    LayerError,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Residual,
    Sigmoid,
    Tanh,
)
from .onnx_shapes import BATCH, ShapeOps
from .onnx_tensors import Attrs, OnnxError, check_tensor, f32

if TYPE_CHECKING:
    import onnx

    from ..engine import Sequential
    from ..engine.layers import Layer

MIN_OPSET = 13
MAX_SAMPLE_VALUES = 1 << 24      # one sample's input or layer output: 16.7 million values
SUPPORTED = ("Conv", "ConvTranspose", "Gemm", "MatMul(+Add)", "Relu", "LeakyRelu", "Sigmoid",
             "Tanh", "Abs", "MaxPool", "AveragePool", "GlobalAveragePool", "ReduceMean (over H, W)",
             "Flatten", "Reshape (to flat)", "BatchNormalization", "Dropout", "Add (residual)",
             "Softmax/LogSoftmax (last node)", "Identity", "Sub/Div/Mul/Add (input scaling)")


_ACTIVATIONS = {"Sigmoid": Sigmoid, "Tanh": Tanh, "Abs": Abs}


class _Value:
    """A chain activation: where it is in the chain and its per-sample ONNX shape."""

    def __init__(self, pos, shape, pooled=False):
        self.pos = pos          # number of chain layers before it; None: inside a Residual
        self.shape = tuple(shape)
        self.pooled = pooled    # after GlobalAveragePool: ONNX still has the 1x1 map axes

    @property
    def onnx_shape(self):
        return self.shape + ((1, 1) if self.pooled else ())


class GraphReader(ShapeOps):
    def __init__(self, model_proto: onnx.ModelProto):
        self.mp = model_proto
        self.g = model_proto.graph
        self.consts: dict[str, np.ndarray] = {}   # constants (object arrays may hold BATCH)
        self.values: dict[str, _Value] = {}       # chain activations
        self.layers: list[Layer] = []             # the chain
        self.arrays: dict[int, dict[str, np.ndarray]] = {}   # id(layer) -> {key: weights}
        self.notes: list[str] = []
        self.tip = ""              # the name of the chain's end
        self.matmul_tip = None     # a MatMul's output, whose bias may follow as an Add
        self.affine = None         # (scale, offset) of the input scaling read so far
        self.scaling_note = ""

    # ---- entry ---------------------------------------------------------------------------
    def read(self) -> tuple[list[Layer], tuple[int, ...]]:
        if not self.mp.HasField("graph"):
            raise OnnxError("not an ONNX model (no graph)")
        self._check_opset()
        if len(self.g.sparse_initializer):
            raise OnnxError("the graph has sparse initializers, which nnviz does not read")
        for i, tp in enumerate(self.g.initializer):
            self.consts[tp.name] = check_tensor(tp, f"initializer {tp.name or i!r}")
        input_shape = self._input()
        if not len(self.g.node):
            raise OnnxError("the graph has no nodes")
        outputs = [o.name for o in self.g.output]
        if len(outputs) != 1:
            raise OnnxError(f"the graph has {len(outputs)} outputs ({', '.join(outputs)}); "
                            f"nnviz models have one")
        self.output = outputs[0]
        self.used = {i for n in self.g.node for i in n.input} | {self.output}
        for i, node in enumerate(self.g.node):
            self.node, self.where = node, f"node {node.name or '#' + str(i)!r} ({node.op_type})"
            try:
                self._dispatch(node)
            except LayerError as e:
                raise OnnxError(f"{self.where}: {e}") from None
            except IndexError:
                raise OnnxError(f"{self.where}: is missing an input") from None
        if self.output != self.tip:
            raise OnnxError(f"the graph output {self.output!r} is not the end of the layer chain")
        if self.values[self.tip].pooled:   # GlobalAveragePool output kept as (C, 1, 1)
            raise OnnxError("the graph ends with a GlobalAveragePool without Flatten; nnviz's "
                            "GlobalAvgPool2D gives (channels,)")
        if not self.layers:
            raise OnnxError("the graph has no layers nnviz can run")
        self._check_output_shape()
        self._validate()     # last: our own messages say more about what nnviz cannot read
        return self.layers, input_shape

    def _check_output_shape(self):
        """A declared output shape must be what the layers give (else the file is broken)."""
        out = self.g.output[0]
        if not out.type.tensor_type.HasField("shape"):
            return
        dims = list(out.type.tensor_type.shape.dim)
        got = self.values[self.tip].onnx_shape
        declared = [d.dim_value if d.HasField("dim_value") else None for d in dims[1:]]
        if len(declared) != len(got) or any(d not in (None, g) for d, g in zip(declared, got)):
            shown = ", ".join("?" if d is None else str(d) for d in declared)
            raise OnnxError(f"the graph output {out.name!r} declares per-sample shape ({shown}) "
                            f"but the layers give {got}")

    def state(self, model: Sequential) -> dict[str, np.ndarray]:
        """{model state name: array} for the built model."""
        from ..engine.model import _walk
        out = {}
        for layer in _walk(model.layers):
            for key, a in self.arrays.get(id(layer), {}).items():
                out[f"{layer.index}.{key}"] = a
        return out

    def _validate(self):
        """ONNX's own node checks and strict shape inference (attributes, arities, types,
        shapes that agree: what onnxruntime checks when it loads a file)."""
        import onnx
        ctx = onnx.checker.C.CheckerContext()
        ctx.ir_version = self.mp.ir_version
        ctx.opset_imports = {o.domain: o.version for o in self.mp.opset_import}
        for i, node in enumerate(self.g.node):   # attributes each op allows, input counts
            try:
                onnx.checker.check_node(node, ctx)
            except onnx.checker.ValidationError as e:
                where = f"node {node.name or '#' + str(i)!r} ({node.op_type})"
                raise OnnxError(f"{where}: not valid ONNX ({str(e).splitlines()[0][:200]})") from None
        try:
            onnx.shape_inference.infer_shapes(self.mp, check_type=True, strict_mode=True)
        except onnx.shape_inference.InferenceError as e:
            text = " ".join(str(e).split())
            raise OnnxError(f"not a valid ONNX graph ({text[:300]})") from None

    # ---- graph boundary ------------------------------------------------------------------
    def _check_opset(self):
        ops = {o.domain: o.version for o in self.mp.opset_import}
        v = ops.get("", ops.get("ai.onnx"))
        if v is None:
            raise OnnxError("the model imports no standard ONNX opset")
        if v < MIN_OPSET:
            raise OnnxError(f"uses opset {v}; nnviz reads opset {MIN_OPSET} and later "
                            f"(re-export with opset_version={MIN_OPSET} or more)")
        self.opset = v

    def _input(self):
        ins = [i for i in self.g.input if i.name not in self.consts]
        if len(ins) != 1:
            raise OnnxError(f"the graph has {len(ins)} inputs ({', '.join(i.name for i in ins)}); "
                            f"nnviz models have one")
        inp = ins[0]
        tt = inp.type.tensor_type
        if not inp.type.HasField("tensor_type") or tt.elem_type != 1:
            raise OnnxError(f"input {inp.name!r} is not a float tensor")
        dims = list(tt.shape.dim)
        if len(dims) not in (2, 4):
            raise OnnxError(f"input {inp.name!r} has {len(dims)} dimensions; nnviz reads "
                            f"(batch, features) or (batch, channels, height, width)")
        first = dims[0]
        self.batch = int(first.dim_value) if first.HasField("dim_value") and first.dim_value > 0 else None
        shape = []
        for d in dims[1:]:
            if not d.HasField("dim_value") or d.dim_value <= 0:
                raise OnnxError(f"input {inp.name!r} has a dimension without a fixed size "
                                f"({d.dim_param or '?'}); nnviz needs fixed sample shapes")
            shape.append(int(d.dim_value))
        if math.prod(shape) > MAX_SAMPLE_VALUES:
            raise OnnxError(f"input {inp.name!r} declares samples of shape {tuple(shape)}, more "
                            f"than nnviz's limit of {MAX_SAMPLE_VALUES:,} values")
        self.values[inp.name] = _Value(0, shape)
        self.tip = inp.name
        return tuple(shape)

    # ---- helpers -------------------------------------------------------------------------
    def _fail(self, msg):
        raise OnnxError(f"{self.where}: {msg}")

    def _dispatch(self, node):
        if node.domain not in ("", "ai.onnx"):
            self._unsupported()
        handler = getattr(self, f"_op_{node.op_type}", None)
        if handler is None:
            self._unsupported()
        handler(node, Attrs(node, self.where))

    def _unsupported(self):
        raise OnnxError(f"{self.where}: op type {self.node.op_type!r}"
                        f"{' of domain ' + repr(self.node.domain) if self.node.domain else ''}"
                        f" has no nnviz layer; supported: {', '.join(SUPPORTED)}")

    def _const(self, name, what, shape_ok=False):
        """A constant; shape values (from Shape, which may hold the batch size) only where
        `shape_ok` (Reshape targets and shape arithmetic)."""
        if name not in self.consts:
            if name in self.values:
                self._fail(f"{what} {name!r} must be a constant (an initializer), not computed")
            self._fail(f"{what} {name!r} is not defined before this node")
        val = self.consts[name]
        if val.dtype == object and not shape_ok:
            self._fail(f"{what} {name!r} is computed from the input's shape; nnviz needs "
                       f"a constant here")
        return val

    def _opt_const(self, node, i, what):
        return self._const(node.input[i], what) if len(node.input) > i and node.input[i] else None

    def _act(self, name):
        """The chain value `name`, which must be the chain's end."""
        v = self.values.get(name)
        if v is None:
            if name in self.consts:
                self._fail(f"input {name!r} is a constant; nnviz layers take the previous "
                           f"layer's output")
            self._fail(f"input {name!r} is not defined before this node")
        if name != self.tip:
            self._fail(f"reads {name!r}, which is not the previous layer's output: nnviz models "
                       f"are a chain of layers with identity skip connections (Residual)")
        return v

    def _one_output(self, node):
        if any(o and o in self.used for o in node.output[1:]):
            self._fail("uses optional extra outputs, which nnviz layers do not have")
        return node.output[0]

    def _push(self, node, layer, arrays=None, src=None):
        """Append `layer`, fed by `src` (default: the node's first input), to the chain (built
        now, so shapes are checked node by node)."""
        v = self._act(src or node.input[0])
        if v.pooled and not isinstance(layer, (ReLU, LeakyReLU, Sigmoid, Tanh, Abs, Dropout)):
            self._fail("follows a GlobalAveragePool directly; nnviz reads GlobalAveragePool "
                       "followed by Flatten (or an activation)")
        layer.index = len(self.layers)
        arrays = arrays or {}
        self._check_arrays(layer, v.shape, arrays)
        out = layer.build(v.shape, np.random.default_rng(0), np.float32, _cpu)
        if math.prod(out) > MAX_SAMPLE_VALUES:     # running it would need this much per sample
            self._fail(f"gives per-sample outputs of shape {tuple(out)}, more than nnviz's "
                       f"limit of {MAX_SAMPLE_VALUES:,} values")
        self.layers.append(layer)
        self.arrays[id(layer)] = arrays
        self._set(node, _Value(len(self.layers), out, v.pooled))

    def _check_arrays(self, layer, shape, arrays):
        """Weights must have the shapes the layer will allocate, before it allocates them."""
        if isinstance(layer, Dense):
            if len(shape) != 1:
                return    # build() says what is wrong
            want = {"weight": (layer.out_features, shape[0]), "bias": (layer.out_features,)}
        elif isinstance(layer, (Conv2D, ConvTranspose2D)):
            w = (layer.out_channels, shape[0]) if isinstance(layer, Conv2D) else \
                (shape[0], layer.out_channels)
            want = {"weight": w + layer.kernel_size, "bias": (layer.out_channels,)}
        else:
            want = {k: (shape[0],) for k in arrays}
        for k, a in arrays.items():
            if tuple(a.shape) != want[k]:
                self._fail(f"{k} has shape {tuple(a.shape)}, expected {want[k]} for an input "
                           f"of shape {tuple(shape)}")

    def _set(self, node, value):
        name = self._one_output(node)
        self.values[name] = value
        self.tip = name

    def _alias(self, node):
        src = node.input[0]
        if src in self.consts:
            self.consts[node.output[0]] = self.consts[src]
            return
        v = self._act(src)
        self.values[node.output[0]] = v
        self.tip = node.output[0]

    # ---- layers --------------------------------------------------------------------------
    def _geometry(self, a, kernel):
        """(stride, padding) of Conv/ConvTranspose/pool attributes; padding symmetric."""
        if any(d != 1 for d in a.get("dilations", [1, 1])):
            self._fail(f"dilations {a['dilations']}; nnviz has no dilated convolutions or pools")
        stride = tuple(a.get("strides", [1, 1]))
        if len(stride) != 2 or len(kernel) != 2:
            self._fail("is not 2-D; nnviz has 2-D layers only")
        pads = list(a.get("pads", [0, 0, 0, 0]))
        auto = a.get("auto_pad", "NOTSET")
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = self._same_pads(kernel, stride)
        elif auto not in ("NOTSET", "VALID"):
            self._fail(f"auto_pad {auto!r} is not an ONNX value")
        elif auto == "VALID":
            pads = [0, 0, 0, 0]
        if len(pads) != 4 or pads[0] != pads[2] or pads[1] != pads[3]:
            self._fail(f"pads {pads} are not the same on both sides; nnviz pads symmetrically")
        return stride, (pads[0], pads[1])

    def _same_pads(self, kernel, stride):
        hw = self._act(self.node.input[0]).shape[1:]
        pads = []
        for n, k, s in zip(hw, kernel, stride):
            total = max((-(-n // s) - 1) * s + k - n, 0)
            if total % 2:
                self._fail(f"auto_pad SAME needs {total} padding pixels, which cannot be split "
                           f"evenly; nnviz pads symmetrically")
            pads.append(total // 2)
        return pads * 2

    def _conv(self, node, a, cls, out_axis):
        """Conv / ConvTranspose: weight, bias, kernel and geometry checked, layer pushed."""
        w = self._const(node.input[1], "weight")
        b = self._opt_const(node, 2, "bias")
        if w.ndim != 4:
            self._fail(f"weight has shape {w.shape}; nnviz has 2-D convolutions only")
        if a.get("group", 1) != 1:
            self._fail(f"group {a['group']}; nnviz has no grouped convolutions")
        kernel = tuple(w.shape[2:])
        if tuple(a.get("kernel_shape", kernel)) != kernel:
            self._fail(f"kernel_shape {a['kernel_shape']} does not match the weight {w.shape}")
        stride, pad = self._geometry(a, kernel)
        arrays = {"weight": w} if b is None else {"weight": w, "bias": b}
        self._push(node, cls(w.shape[out_axis], kernel, stride, pad, bias=b is not None), arrays)

    def _op_Conv(self, node, a):
        self._conv(node, a, Conv2D, 0)

    def _op_ConvTranspose(self, node, a):
        if any(a.get("output_padding", [0, 0])):
            self._fail(f"output_padding {a['output_padding']}; nnviz's ConvTranspose2D has none")
        if "output_shape" in a:
            self._fail("sets output_shape; nnviz reads ConvTranspose with pads instead")
        if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            self._fail(f"auto_pad {a['auto_pad']}; nnviz reads explicit pads")
        self._conv(node, a, ConvTranspose2D, 1)

    def _pool(self, node, a, cls):
        kernel = tuple(a.get("kernel_shape", []))
        stride, pad = self._geometry(a, kernel)
        if pad != (0, 0):
            self._fail(f"pads {list(pad) * 2}; nnviz pools without padding")
        if a.flag("storage_order", 0):
            self._fail("storage_order 1 is not supported")
        shape = self._act(node.input[0]).shape
        if len(shape) != 3:
            self._fail(f"expects an image input, got per-sample shape {shape}")
        if a.flag("ceil_mode", 0) and any((n - k) % s for n, k, s in zip(shape[1:], kernel, stride)):
            self._fail("ceil_mode 1 with windows that do not fit exactly; nnviz rounds down")
        self._push(node, cls(list(kernel), list(stride)))

    def _op_MaxPool(self, node, a):
        self._pool(node, a, MaxPool2D)

    def _op_AveragePool(self, node, a):
        self._pool(node, a, AvgPool2D)

    def _op_GlobalAveragePool(self, node, a):
        v = self._act(node.input[0])
        if len(v.shape) != 3:
            self._fail(f"expects an image input, got per-sample shape {v.shape}")
        self._push(node, GlobalAvgPool2D())
        self.values[self.tip].pooled = True

    def _op_ReduceMean(self, node, a):
        """x.mean((2, 3)) in PyTorch: the global average pool, keepdims or not."""
        v = self._act(node.input[0])
        if len(node.input) > 1 and node.input[1]:     # opset 18 and later: an input
            axes = [int(x) for x in self._int_values(node.input[1], "axes").reshape(-1)]
        else:
            axes = a.get("axes", [])
        if len(v.onnx_shape) != 3 or v.pooled or sorted(x % 4 for x in axes) != [2, 3]:
            self._fail(f"averages over axes {axes}; nnviz reads ReduceMean only over the image "
                       f"axes (2, 3) of (N, C, H, W), as global average pooling")
        self._push(node, GlobalAvgPool2D())
        self.values[self.tip].pooled = a.flag("keepdims", 1)

    def _flatten_to(self, node, v):
        if v.pooled:    # GlobalAveragePool + Flatten is nnviz's GlobalAvgPool2D alone
            self._set(node, _Value(v.pos, v.shape))
        elif len(v.shape) == 1:
            self._set(node, v)
        else:
            self._push(node, Flatten())

    def _op_Flatten(self, node, a):
        v = self._act(node.input[0])
        axis = a.get("axis", 1)
        if axis not in (1, 1 - len(v.onnx_shape) - 1):
            self._fail(f"axis {axis}; nnviz flattens everything but the batch (axis 1)")
        self._flatten_to(node, v)

    def _op_Reshape(self, node, a):
        v = self._act(node.input[0])
        target = list(np.asarray(self._const(node.input[1], "shape", shape_ok=True)).reshape(-1))
        n = math.prod(v.onnx_shape)
        keep_zero = a.flag("allowzero", 0)
        # the batch dimension: from Shape, 0 (copy), -1 (infer), or the file's fixed batch size
        first_ok = target and (target[0] is BATCH or target[0] == -1 or (target[0] == 0 and not keep_zero)
                               or (self.batch is not None and target[0] == self.batch))
        if len(target) == 2 and first_ok and (target[1] == n or (target[1] == -1 and target[0] != -1)):
            self._flatten_to(node, v)
        elif len(target) == len(v.onnx_shape) + 1 and first_ok and [
                int(t) if t is not BATCH else t for t in target[1:]] == list(v.onnx_shape):
            self._alias(node)
        else:
            shown = ["N" if t is BATCH else int(t) for t in target]
            self._fail(f"reshapes (N, {', '.join(map(str, v.onnx_shape))}) to {shown}; nnviz "
                       f"reads Reshape only as flattening to (N, {n})")

    def _op_Gemm(self, node, a):
        self._act(node.input[0])
        if a.flag("transA", 0):
            self._fail("transA 1; nnviz reads Gemm with the activation as A")
        w = self._const(node.input[1], "weight")
        c = self._opt_const(node, 2, "bias")
        if w.ndim != 2:
            self._fail(f"weight has shape {w.shape}")
        w = w if a.flag("transB", 0) else w.T
        w = np.ascontiguousarray(w * np.float32(a.get("alpha", 1.0)))
        arrays = {"weight": w}
        if c is not None:
            try:
                arrays["bias"] = np.ascontiguousarray(
                    np.broadcast_to(c * np.float32(a.get("beta", 1.0)), (1, w.shape[0]))[0])
            except ValueError:
                self._fail(f"bias C has shape {c.shape}, expected ({w.shape[0]},)")
        self._push(node, Dense(w.shape[0], bias=c is not None), arrays)

    def _op_MatMul(self, node, a):
        self._act(node.input[0])
        w = self._const(node.input[1], "weight")
        if w.ndim != 2:
            self._fail(f"weight has shape {w.shape}; nnviz reads (batch, in) x (in, out)")
        self._push(node, Dense(w.shape[1], bias=False), {"weight": np.ascontiguousarray(w.T)})
        self.matmul_tip = self.tip

    def _op_Add(self, node, a):
        x, y = node.input[0], node.input[1]
        if x in self.values and y in self.values:
            return self._residual(node, x, y)
        if not self.layers or (self.affine is not None and len(self.layers) == 1):
            return self._scale_input(node, "Add")
        act, const = (x, y) if x in self.values else (y, x)
        b = self._const(const, "addend")
        v = self._act(act)
        last = self.layers[-1] if self.layers else None
        if not (self.matmul_tip == act and isinstance(last, Dense)
                and not last.use_bias):
            self._fail("adds a constant; nnviz reads Add as a residual connection or as the "
                       "bias after MatMul")
        try:
            bias = np.ascontiguousarray(np.broadcast_to(b, (1, last.out_features))[0])
        except ValueError:
            self._fail(f"bias has shape {b.shape}, expected ({last.out_features},)")
        last.use_bias = True
        self.arrays[id(last)]["bias"] = bias
        self._set(node, v)

    def _residual(self, node, x, y):
        if self.tip not in (x, y) or x == y:
            self._fail("adds two values that are not a block's input and its output; nnviz "
                       "reads Add as an identity skip connection (Residual)")
        skip = y if x == self.tip else x
        s, t = self.values[skip], self.values[self.tip]
        if s.pos is None:
            self._fail(f"adds {skip!r}, which is inside an earlier residual block")
        inner = self.layers[s.pos:]
        if not inner:
            self._fail("adds a value to itself")
        if s.onnx_shape != t.onnx_shape:
            self._fail(f"adds shapes {s.onnx_shape} and {t.onnx_shape}; a skip connection "
                       f"needs them equal (projection shortcuts are not supported)")
        for v in self.values.values():
            if v.pos is not None and v.pos > s.pos:
                v.pos = None
        res = Residual(inner)
        res.index = s.pos
        res.build(s.shape, np.random.default_rng(0), np.float32, _cpu)
        self.layers[s.pos:] = [res]
        self._set(node, _Value(s.pos + 1, s.shape, s.pooled))

    def _per_channel(self, name, shape, what):
        """An input-scaling constant as one value or one per channel."""
        c = self._const(name, what)
        if c.ndim == len(shape) + 1 and c.shape[0] == 1:
            c = c[0]
        if c.size != 1 and c.shape != (shape[0],) + (1,) * (len(shape) - 1):
            self._fail(f"{what} has shape {c.shape}; nnviz reads Sub/Div/Mul/Add at the input as "
                       f"scaling by one value or one per channel")
        return c.reshape(-1).astype(np.float64)

    def _scale_input(self, node, op):
        """Sub, Add, Mul, Div by constants at the model's input compose into one affine map,
        read as InputScaling (mean, std): y = (x - mean) / std."""
        x, y = node.input[0], node.input[1]
        act, const = (y, x) if (y in self.values and op in ("Add", "Mul")) else (x, y)
        if act not in self.values:
            self._fail(f"computes constant {op.lower()} input; nnviz reads input scaling as "
                       f"(x - mean) / std")
        at_input = (not self.layers and act in self.values) or (
            self.affine is not None and len(self.layers) == 1 and act == self.tip)
        if not at_input:
            self._fail(f"nnviz reads {op} only at the model's input, by constants, as input "
                       f"scaling ((x - mean) / std); supported: {', '.join(SUPPORTED)}")
        shape = self._act(act).shape
        c = self._per_channel(const, shape, "constant")
        scale, offset = self.affine or (np.ones(1), np.zeros(1))
        if op in ("Div", "Mul") and not np.all(c != 0):
            self._fail(f"{op.lower()}s by 0")
        if op in ("Sub", "Add"):
            offset = offset - c if op == "Sub" else offset + c
        else:
            scale, offset = (scale * c, offset * c) if op == "Mul" else (scale / c, offset / c)
        if not np.all(scale > 0):
            self._fail("scales the input by a factor <= 0; nnviz's input scaling needs std > 0")
        mean, std = [f32(v) for v in -offset / scale], [f32(v) for v in 1 / scale]
        if not self.layers:
            self._push(node, InputScaling(mean, std), src=act)
        else:
            self.layers[0].mean, self.layers[0].std = mean, std
            self._set(node, self.values[self.tip])
        self.affine = (scale, offset)
        note = f"the graph scales its input: (x - {mean}) / {std}, read as nnviz's input scaling"
        if self.scaling_note in self.notes:
            self.notes[self.notes.index(self.scaling_note)] = note
        else:
            self.notes.append(note)
        self.scaling_note = note

    def _op_Sub(self, node, a):
        self._scale_input(node, "Sub")

    def _op_Div(self, node, a):
        self._scale_input(node, "Div")

    def _op_Mul(self, node, a):
        self._scale_input(node, "Mul")

    def _op_BatchNormalization(self, node, a):
        if a.flag("training_mode", 0):
            self._fail("is in training mode; nnviz reads the inference form (running statistics)")
        names = ("weight", "bias", "running_mean", "running_var")
        arrays = {k: np.ascontiguousarray(self._const(node.input[i + 1], k).reshape(-1))
                  for i, k in enumerate(names)}
        if (arrays["running_var"] < 0).any():
            self._fail("has a negative running variance")
        m = f32(1.0 - f32(a.get("momentum", 0.9)))
        self._push(node, BatchNorm(momentum=m if 0 < m <= 1 else 0.1,
                                   eps=f32(a.get("epsilon", 1e-5))), arrays)

    def _op_Dropout(self, node, a):
        ratio = self._opt_const(node, 1, "ratio")
        p = f32(np.asarray(ratio).reshape(-1)[0]) if ratio is not None and ratio.size else 0.5
        self._push(node, Dropout(p))

    def _op_LeakyRelu(self, node, a):
        self._push(node, LeakyReLU(f32(a.get("alpha", 0.01))))

    def _op_Relu(self, node, a):
        self._push(node, ReLU())

    def _activation(self, node, a):
        self._push(node, _ACTIVATIONS[node.op_type]())

    _op_Sigmoid = _op_Tanh = _op_Abs = _activation

    def _op_Softmax(self, node, a):
        v = self._act(node.input[0])
        axis = a.get("axis", -1)
        if node.output[0] != self.output or len(v.onnx_shape) != 1 or axis not in (1, -1):
            self._fail("nnviz reads Softmax only as the model's last node over the classes "
                       "(it keeps the logits)")
        self.notes.append(f"the model ended with {node.op_type}; nnviz keeps the logits before "
                          f"it (the same class ranking) and applies softmax itself")
        self._alias(node)

    _op_LogSoftmax = _op_Softmax

    def _op_Identity(self, node, a):
        self._alias(node)
