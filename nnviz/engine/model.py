"""Sequential model: a list of layers built from an input shape."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import backend as _backend
from . import fused_mlp
from .layers import Conv2D, Layer, LayerError, MaxPool2D, ReLU, Residual
from .layers.residual import build_chain
from .losses import softmax

_DROPOUT_STREAM = 1_000_003  # seed offset: dropout masks draw from their own stream


def _walk(layers):
    for layer in layers:
        yield layer
        yield from _walk(getattr(layer, "children", ()))


class Sequential:
    def __init__(self, layers: list[Layer], input_shape: Sequence[int], seed: int = 0, name: str = "model",
                 dtype: Any = np.float32) -> None:
        if not isinstance(layers, (list, tuple)) or not layers:
            raise LayerError("Sequential: needs a non-empty list of layers")
        for i, l in enumerate(layers):
            if not isinstance(l, Layer):
                raise LayerError(f"layer {i}: {l!r} is not a layer")
        try:
            self.input_shape = tuple(int(s) for s in input_shape)
        except (TypeError, ValueError):
            raise LayerError(f"input_shape must be a list of positive integers, got {input_shape!r}") from None
        if (not self.input_shape or any(s <= 0 for s in self.input_shape)
                or list(self.input_shape) != list(input_shape)):  # int() truncated 2.5 or split "12"
            raise LayerError(f"input_shape must be a list of positive integers, got {input_shape!r}")
        self.layers = list(layers)
        self.seed = int(seed)
        self.name = name
        self.dtype = np.dtype(dtype)
        self.B = _backend.get()
        for i, l in enumerate(self.layers):
            l.index = i
        self.output_shape = build_chain(self.layers, self.input_shape,
                                        lambda l: np.random.default_rng([self.seed, l.index]),
                                        self.dtype, self.B)
        self.rng = np.random.default_rng([self.seed, _DROPOUT_STREAM])
        for l in _walk(self.layers):
            if hasattr(l, "rng"):
                l.rng = self.rng
        self._forward_hooks: list[Callable[[Layer, Any], None]] = []
        self._backward_hooks: list[Callable[[Layer], None]] = []
        self.fuse = True   # False: every layer runs on its own (same numbers, for checking)

    # --- running ------------------------------------------------------------
    def _check_input(self, x):
        x = self.B.asarray(x, self.dtype)
        if tuple(x.shape[1:]) != self.input_shape:
            raise LayerError(f"{self.name}: input has shape {tuple(x.shape[1:])} per sample, "
                             f"the model expects {self.input_shape}")
        return x

    def forward(self, x: Any, train: bool = False) -> Any:
        x = self._check_input(x)
        caps = self.B.capabilities
        if not train and not self._forward_hooks and "fused_mlp" in caps:
            y = fused_mlp.forward(self, x)      # large eval batches of plain MLPs, or None
            if y is not None:
                return y
        if self.fuse and not self._forward_hooks and "fused_conv_relu" in caps:
            return self._forward_fused(x, train)
        for layer in self.layers:
            x = layer.forward(x, train)
            for hook in self._forward_hooks:
                hook(layer, x)
        return x

    def _forward_fused(self, x, train):
        # Conv2D + ReLU in one kernel: the conv's pre-activation output is never stored
        layers, i, n = self.layers, 0, len(self.layers)
        while i < n:
            layer = layers[i]
            if type(layer) is Conv2D and i + 1 < n and type(layers[i + 1]) is ReLU:
                x = layer.forward(x, train, relu=True)
                layers[i + 1].adopt(x)
                i += 2
            else:
                x = layer.forward(x, train)
                i += 1
        return x

    __call__ = forward

    def backward(self, grad: Any, need_input_grad: bool = True) -> Any:
        """Backpropagate d loss / d output; returns d loss / d input."""
        fuse = self.fuse and "fused_conv_relu" in self.B.capabilities
        i = len(self.layers) - 1
        while i >= 0:
            layer = self.layers[i]
            if (fuse and type(layer) is MaxPool2D and i > 0 and type(self.layers[i - 1]) is ReLU
                    and (need_input_grad or i > 1)):
                grad = layer.backward_through_relu(grad)   # pool and ReLU in one pass
                done: tuple[Layer, ...] = (layer, self.layers[i - 1])
                i -= 2
            else:
                grad = layer.backward(grad, need_gx=need_input_grad or i > 0)
                done = (layer,)
                i -= 1
            for layer in done:
                for hook in self._backward_hooks:
                    hook(layer)
        return grad

    def predict_logits(self, x: Any, batch_size: int = 4096) -> np.ndarray:
        x = self._check_input(x)
        outs = [self.B.to_host(self.forward(x[i:i + batch_size]))
                for i in range(0, len(x), batch_size)]
        return np.concatenate(outs) if outs else np.zeros((0,) + self.output_shape, self.dtype)

    def predict_proba(self, x: Any, batch_size: int = 4096) -> np.ndarray:
        return softmax(self.predict_logits(x, batch_size))   # one logit: binary model

    def predict(self, x: Any, batch_size: int = 4096) -> np.ndarray:
        return self.predict_proba(x, batch_size).argmax(axis=1)

    # --- parameters ----------------------------------------------------------
    def named_parameters(self) -> list[tuple[str, Any]]:
        return [(f"{l.index}.{k}", p) for l in _walk(self.layers) for k, p in l.params.items()]

    def parameters(self) -> list:
        return [p for _, p in self.named_parameters()]

    def gradients(self) -> list:
        return [l.grads.get(k) for l in _walk(self.layers) for k in l.params]

    def named_buffers(self) -> list[tuple[str, Any]]:
        return [(f"{l.index}.{k}", b) for l in _walk(self.layers) for k, b in l.buffers.items()]

    def param_count(self) -> int:
        return sum(l.param_count() for l in self.layers)

    def state(self) -> dict[str, np.ndarray]:
        """Host copies of every parameter and buffer, e.g. the last good weights."""
        return {n: self.B.to_host(a).copy()
                for n, a in self.named_parameters() + self.named_buffers()}

    def load_state(self, state: dict) -> None:
        for n, a in self.named_parameters() + self.named_buffers():
            if n not in state:
                raise LayerError(f"{self.name}: state has no array {n!r}")
            src = np.asarray(state[n])
            if src.shape != a.shape:
                raise LayerError(f"{self.name}: {n} has shape {src.shape}, expected {a.shape}")
            a[...] = self.B.asarray(src, a.dtype)

    # --- hooks ---------------------------------------------------------------
    def has_hooks(self) -> bool:
        """True while a forward or backward hook is installed (fused paths then stand aside)."""
        return bool(self._forward_hooks or self._backward_hooks)

    def add_forward_hook(self, fn: Callable[[Layer, Any], None]) -> Callable[[], None]:
        """fn(layer, output) after every top-level layer; returns a remover."""
        self._forward_hooks.append(fn)
        return lambda: self._forward_hooks.remove(fn)

    def add_backward_hook(self, fn: Callable[[Layer], None]) -> Callable[[], None]:
        """fn(layer) after a layer's backward, when its grads are set."""
        self._backward_hooks.append(fn)
        return lambda: self._backward_hooks.remove(fn)

    def activations(self, x: Any) -> list[tuple[str, np.ndarray]]:
        """[(label, output copy)] for the input and every layer, in eval mode."""
        outs = [("input", np.array(self.B.to_host(self._check_input(x)), copy=True))]
        remove = self.add_forward_hook(
            lambda layer, y: outs.append((f"{layer.index} {layer.type}", np.array(self.B.to_host(y)))))
        try:
            self.forward(x, train=False)
        finally:
            remove()
        return outs

    def gradient_norms(self) -> dict[str, float]:
        """{parameter name: L2 norm of its latest gradient}."""
        names = [n for n, _ in self.named_parameters()]
        return {n: (float(np.sqrt(self.B.sq_norm(g))) if g is not None else 0.0)
                for n, g in zip(names, self.gradients())}

    # --- description ----------------------------------------------------------
    def summary(self) -> list[dict]:
        """One row per top-level layer: shape, parameters, receptive field, notes."""
        rows, rf, jump = [], 1, 1
        full = False
        for l in self.layers:
            if l.rf is not None and not full:
                (k, _), (s, _) = l.rf
                rf += (k - 1) * jump
                jump *= s
            elif isinstance(l, Residual):
                for c in _walk(l.layers):
                    if c.rf is not None and not full:
                        (k, _), (s, _) = c.rf
                        rf += (k - 1) * jump
                        jump *= s
            if l.type in ("Dense", "GlobalAvgPool2D") and len(self.input_shape) == 3:
                full = True
            rows.append({"index": l.index, "type": l.type, "config": l.config(),
                         "output_shape": list(l.output_shape), "params": l.param_count(),
                         "receptive_field": "full" if full else (
                             rf if len(self.input_shape) == 3 else None),
                         "notes": list(l.notes)})
        return rows

    def summary_text(self) -> str:
        lines = [f"{self.name}: input {self.input_shape}, {self.param_count():,} parameters",
                 f"{'#':>3}  {'layer':<16}{'output':<16}{'params':>10}  {'RF':>5}  notes"]
        for r in self.summary():
            rf = "" if r["receptive_field"] is None else str(r["receptive_field"])
            lines.append(f"{r['index']:>3}  {r['type']:<16}{str(tuple(r['output_shape'])):<16}"
                         f"{r['params']:>10,}  {rf:>5}  {'; '.join(r['notes'])}")
        return "\n".join(lines)

    def to_spec(self) -> dict:
        return {"name": self.name, "input_shape": list(self.input_shape),
                "layers": [l.config() for l in self.layers]}

    def __repr__(self):
        return f"Sequential({self.name!r}, input_shape={self.input_shape}, {len(self.layers)} layers)"
