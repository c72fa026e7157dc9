"""What a backend module offers: the written contract behind `nnviz.engine.backend.get()`.

A backend is a module (cpu.py, cuda.py). Every backend provides `Backend`; a backend whose
`capabilities` names an optional feature also provides that feature's protocol, and callers
check `"name" in B.capabilities` before using it (never `getattr`/`hasattr` probes):

- "fused_conv_relu": Conv2D + ReLU forward in one kernel, ReLU + MaxPool2D backward in one
  pass (same numbers as layer by layer) -- `FusedConvReLU`;
- "fused_mlp": whole training steps and large eval batches of plain MLPs in one kernel --
  `FusedMLP` (planning: nnviz.engine.fused_mlp, nnviz.train.fused_mlp).

Arrays are the backend's own (numpy on the CPU, device arrays on CUDA); `asarray` and
`to_host` convert. `cache` arguments are per-layer dicts a backend may keep scratch in.
`conforms(module)` lists what a module lacks, for the tests.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

Array = Any        # numpy.ndarray or a backend's device array
Cache = dict

CAPABILITIES = frozenset({"fused_conv_relu", "fused_mlp"})


class Backend(Protocol):
    name: str
    capabilities: frozenset[str]

    def device_name(self) -> str: ...
    # arrays
    def asarray(self, x: Any, dtype: Any = ...) -> Array: ...
    def to_host(self, x: Array) -> Any: ...
    def zeros(self, shape: Sequence[int], dtype: Any = ...) -> Array: ...
    # layers: forward returns the output, backward the input gradient (and parameter grads)
    def dense_forward(self, x: Array, w: Array, b: Array) -> Array: ...
    def dense_backward(self, x: Array, w: Array, gy: Array, need_gx: bool = ...) -> tuple: ...
    def conv2d_forward(self, x: Array, w: Array, b: Array, stride: tuple, pad: tuple,
                       cache: Cache) -> Array: ...
    def conv2d_backward(self, x: Array, w: Array, gy: Array, stride: tuple, pad: tuple,
                        cache: Cache, need_gx: bool = ...) -> tuple: ...
    def conv_transpose2d_forward(self, x: Array, w: Array, b: Array, stride: tuple, pad: tuple,
                                 out_hw: tuple, cache: Cache) -> Array: ...
    def conv_transpose2d_backward(self, x: Array, w: Array, gy: Array, stride: tuple, pad: tuple,
                                  cache: Cache, need_gx: bool = ...) -> tuple: ...
    def maxpool_forward(self, x: Array, k: tuple, s: tuple, cache: Cache) -> Array: ...
    def maxpool_backward(self, gy: Array, x_shape: tuple, k: tuple, s: tuple, cache: Cache) -> Array: ...
    def avgpool_forward(self, x: Array, k: tuple, s: tuple, cache: Cache) -> Array: ...
    def avgpool_backward(self, gy: Array, x_shape: tuple, k: tuple, s: tuple, cache: Cache) -> Array: ...
    def relu_forward(self, x: Array) -> Array: ...
    def relu_backward(self, x: Array, y: Array, gy: Array) -> Array: ...
    def leaky_relu_forward(self, x: Array, alpha: float) -> Array: ...
    def leaky_relu_backward(self, x: Array, y: Array, gy: Array, alpha: float) -> Array: ...
    def sigmoid_forward(self, x: Array) -> Array: ...
    def sigmoid_backward(self, x: Array, y: Array, gy: Array) -> Array: ...
    def tanh_forward(self, x: Array) -> Array: ...
    def tanh_backward(self, x: Array, y: Array, gy: Array) -> Array: ...
    def abs_forward(self, x: Array) -> Array: ...
    def abs_backward(self, x: Array, y: Array, gy: Array) -> Array: ...
    def dropout_mask(self, rng: Any, shape: Sequence[int], p: float, dtype: Any) -> Array: ...
    def mul(self, a: Array, b: Array) -> Array: ...
    def add(self, a: Array, b: Array) -> Array: ...
    def batchnorm_forward(self, x: Array, gamma: Array, beta: Array, mean: Array, var: Array,
                          momentum: float, eps: float, train: bool, cache: Cache) -> Array: ...
    def batchnorm_backward(self, gy: Array, gamma: Array, train: bool, cache: Cache) -> tuple: ...
    # losses: (mean loss as a float, gradient of the loss w.r.t. the input)
    def softmax_xent(self, logits: Array, labels: Any) -> tuple: ...
    def mse(self, pred: Array, target: Array) -> tuple: ...
    def bce_with_logits(self, z: Array, t: Array) -> tuple: ...
    # optimisers, in place
    def sgd_update(self, p: Array, g: Array, v: Array, lr: float, momentum: float, nesterov: bool,
                   weight_decay: float, l1: float, first: bool) -> None: ...
    def adam_update(self, p: Array, g: Array, m: Array, v: Array, lr: float, b1: float, b2: float,
                    eps: float, weight_decay: float, l1: float, t: int) -> None: ...
    # checks
    def all_finite(self, arrays: Iterable[Array]) -> bool: ...
    def sq_norm(self, a: Array) -> float: ...


class FusedConvReLU(Protocol):
    def conv2d_forward(self, x: Array, w: Array, b: Array, stride: tuple, pad: tuple,
                       cache: Cache, relu: bool = ...) -> Array: ...
    def maxpool_relu_backward(self, gy: Array, pooled: Array, x_shape: tuple, k: tuple, s: tuple,
                              cache: Cache) -> Array: ...


class FusedMLP(Protocol):
    MLP_ACT_CODES: dict[str, int]   # activation layer type -> kernel code (0: none)

    def mlp_step(self, *args: Any) -> int: ...      # see backend/cpu_mlp.py
    def mlp_forward(self, X: Array, P: Array, lay: Array, acts: Array, maxd: int,
                    fast_tanh: bool, Y: Array) -> None: ...


CAPABILITY_PROTOCOLS: dict[str, type] = {"fused_conv_relu": FusedConvReLU, "fused_mlp": FusedMLP}


def _members(proto: type) -> dict[str, Callable | None]:
    """name -> the protocol's function (None for a data member)."""
    out: dict[str, Callable | None] = {n: None for n in getattr(proto, "__annotations__", {})}
    out.update({n: f for n, f in vars(proto).items() if inspect.isfunction(f)})
    return out


def conforms(mod: Any) -> list[str]:
    """What `mod` lacks for the contract and its declared capabilities ([] when it conforms):
    missing names, and functions whose parameters do not start with the protocol's."""
    problems = []
    caps = getattr(mod, "capabilities", None)
    if not isinstance(caps, frozenset):
        return ["capabilities is not a frozenset"]
    problems += [f"unknown capability {c!r}" for c in sorted(caps - CAPABILITIES)]
    for proto in [Backend] + [CAPABILITY_PROTOCOLS[c] for c in sorted(caps & CAPABILITIES)]:
        for n, f in _members(proto).items():
            if not hasattr(mod, n):
                problems.append(f"{proto.__name__}.{n} is missing")
                continue
            if f is None or n == "mlp_step":
                continue
            want = list(inspect.signature(f).parameters)[1:]     # without self
            try:
                have = list(inspect.signature(getattr(mod, n)).parameters)
            except (TypeError, ValueError):   # a compiled kernel: no Python signature
                continue
            if have[:len(want)] != want or any(
                    inspect.signature(getattr(mod, n)).parameters[p].default is inspect.Parameter.empty
                    for p in have[len(want):]):
                problems.append(f"{proto.__name__}.{n}{tuple(want)} but the module has {tuple(have)}")
    return problems
