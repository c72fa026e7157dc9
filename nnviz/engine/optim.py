"""SGD (momentum, Nesterov) and Adam with PyTorch's update rules.

Weight decay (L2) and L1 are added to the gradient, for every parameter, as
torch.optim does with weight_decay; `l1` adds l1 * sign(p).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from . import backend as _backend


class OptimizerError(ValueError):
    pass


def _check(name, value, lo=0.0, strict=False):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise OptimizerError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v) or v < lo or (strict and v == lo):
        op = ">" if strict else ">="
        raise OptimizerError(f"{name} must be a finite number {op} {lo}, got {value!r}")
    return v


class Optimizer(ABC):
    def __init__(self, params: list, lr: float, weight_decay: float = 0.0, l1: float = 0.0,
                 backend: Any = None) -> None:
        # the backend the parameters live on (the model's), not whichever is active now
        self.B = backend or _backend.get()
        self.params = list(params)
        self.lr = lr
        self.weight_decay = _check("weight_decay", weight_decay)
        self.l1 = _check("l1", l1)
        self.t = 0

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = _check("learning rate", value, strict=True)

    def config(self) -> dict:
        return {"type": type(self).__name__, "lr": self.lr, "weight_decay": self.weight_decay,
                "l1": self.l1}

    @abstractmethod
    def _slots(self) -> dict[str, list]:
        """name -> one array per parameter (SGD: velocity; Adam: m, v)."""

    @abstractmethod
    def _update(self, grads: list) -> None:
        """Apply one step of already-regularised gradients to self.params in place."""

    def step(self, grads: list) -> None:
        grads = list(grads)
        if len(grads) != len(self.params):
            raise OptimizerError(f"{len(grads)} gradients for {len(self.params)} parameters")
        self.t += 1
        self._update(grads)

    # state: the step counter and one or two arrays per parameter
    def state_dict(self) -> dict:
        B = self.B
        return {"config": self.config(), "t": self.t,
                "slots": {k: [B.to_host(a).copy() for a in v] for k, v in self._slots().items()}}

    def load_state_dict(self, state: dict) -> None:
        B = self.B
        self.t = int(state["t"])
        for k, arrays in state["slots"].items():
            mine = self._slots()[k]
            if len(arrays) != len(mine):
                raise OptimizerError(f"optimizer state {k!r} has {len(arrays)} arrays, "
                                     f"model has {len(mine)} parameters")
            for i, a in enumerate(arrays):
                if tuple(a.shape) != tuple(mine[i].shape):
                    raise OptimizerError(f"optimizer state {k}[{i}] has shape {a.shape}, "
                                         f"parameter has {mine[i].shape}")
                mine[i][...] = B.asarray(a, mine[i].dtype)


class SGD(Optimizer):
    def __init__(self, params: list, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, l1: float = 0.0, backend: Any = None) -> None:
        super().__init__(params, lr, weight_decay, l1, backend)
        self.momentum = _check("momentum", momentum)
        if self.momentum >= 1:
            raise OptimizerError(f"momentum must be < 1, got {momentum!r}")
        self.nesterov = bool(nesterov)
        B = self.B
        self.velocity = [B.zeros(p.shape, p.dtype) for p in self.params]

    def config(self) -> dict:
        return {**super().config(), "momentum": self.momentum, "nesterov": self.nesterov}

    def _slots(self):
        return {"velocity": self.velocity}

    def _update(self, grads):
        B = self.B
        for p, g, v in zip(self.params, grads, self.velocity):
            B.sgd_update(p, g, v, self.lr, self.momentum, self.nesterov, self.weight_decay,
                         self.l1, self.t == 1)


class Adam(Optimizer):
    def __init__(self, params: list, lr: float = 0.001, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, l1: float = 0.0, backend: Any = None) -> None:
        super().__init__(params, lr, weight_decay, l1, backend)
        self.betas = (_check("beta1", betas[0]), _check("beta2", betas[1]))
        self.eps = _check("eps", eps, strict=True)
        B = self.B
        self.m = [B.zeros(p.shape, p.dtype) for p in self.params]
        self.v = [B.zeros(p.shape, p.dtype) for p in self.params]

    def config(self) -> dict:
        return {**super().config(), "betas": list(self.betas), "eps": self.eps}

    def _slots(self):
        return {"m": self.m, "v": self.v}

    def _update(self, grads):
        B = self.B
        b1, b2 = self.betas
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            B.adam_update(p, g, m, v, self.lr, b1, b2, self.eps, self.weight_decay, self.l1, self.t)


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def make_optimizer(name: str, params: list, **kw: Any) -> Optimizer:
    cls = OPTIMIZERS.get(str(name).lower())
    if cls is None:
        raise OptimizerError(f"unknown optimizer {name!r}: expected sgd or adam")
    if cls is Adam:
        kw.pop("momentum", None)
        kw.pop("nesterov", None)
    return cls(params, **kw)


def optimizer_from_config(config: dict, params: list, backend: Any = None) -> Optimizer:
    config = dict(config)
    config["backend"] = backend
    kind = config.pop("type", "SGD").lower()
    if "betas" in config:
        config["betas"] = tuple(config["betas"])
    return make_optimizer(kind, params, **config)
