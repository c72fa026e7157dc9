"""Losses: forward(pred, target) -> float, backward() -> d loss / d pred (mean reduction)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

from . import backend as _backend


class LossError(ValueError):
    pass


def softmax(z: np.ndarray) -> np.ndarray:
    """Class probabilities from logits along the last axis, on the host, in z's float dtype.

    One logit (a binary model) gives [1 - sigmoid(z), sigmoid(z)]; two logits use the same
    logistic form of their difference: one exp per row, ~20x faster than the general form
    on a decision-boundary grid, equal to it within float rounding.
    """
    z = np.asarray(z)
    k = z.shape[-1]
    if k <= 2:
        d = -z[..., 0] if k == 1 else z[..., 0] - z[..., 1]
        p = 1 / (1 + np.exp(np.clip(d, -60, 60)))     # clipped: no overflow warning
        return np.stack([1 - p, p], axis=-1)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class Loss(ABC):
    name = ""

    def __init__(self, backend: Any = None) -> None:
        self._grad = None
        self.B = backend  # None: the active backend

    @abstractmethod
    def forward(self, pred: Any, target: Any) -> float:
        """The mean loss; keeps d loss / d pred for backward()."""

    def backward(self) -> Any:
        return self._grad

    def config(self) -> dict:
        return {"type": type(self).__name__}


class SoftmaxCrossEntropy(Loss):
    """Cross-entropy of softmax(logits) against integer labels, stable via log-sum-exp."""
    name = "softmax_xent"

    def forward(self, logits: Any, labels: Any) -> float:
        labels = np.asarray(labels)
        if logits.ndim != 2:
            raise LossError(f"SoftmaxCrossEntropy: expects logits (batch, classes), got {logits.shape}")
        k = logits.shape[1]
        if labels.ndim != 1 or labels.shape[0] != logits.shape[0]:
            raise LossError(f"SoftmaxCrossEntropy: expects {logits.shape[0]} integer labels, "
                            f"got shape {labels.shape}")
        if labels.size and (labels.min() < 0 or labels.max() >= k):
            raise LossError(f"SoftmaxCrossEntropy: labels must be in [0, {k}), got "
                            f"[{labels.min()}, {labels.max()}]: the model's last layer has {k} "
                            f"outputs")
        value, self._grad = (self.B or _backend.get()).softmax_xent(logits, labels.astype(np.int64, copy=False))
        return value


def _float_targets(pred, target):
    target = np.asarray(target)
    if target.ndim == 1 and np.issubdtype(target.dtype, np.integer):
        if pred.ndim == 2 and pred.shape[1] > 1:   # class labels -> one-hot
            t = np.zeros(pred.shape, dtype=pred.dtype)
            t[np.arange(len(target)), target] = 1
            return t
        target = target.reshape(pred.shape)
    if target.shape != pred.shape:
        target = target.reshape(pred.shape)
    return target.astype(pred.dtype, copy=False)


class MSE(Loss):
    name = "mse"

    def forward(self, pred: Any, target: Any) -> float:
        value, self._grad = (self.B or _backend.get()).mse(pred, _float_targets(pred, target))
        return value


class BCEWithLogits(Loss):
    """Binary cross-entropy taking logits (sigmoid folded in for stability)."""
    name = "bce"

    def forward(self, logits: Any, target: Any) -> float:
        value, self._grad = (self.B or _backend.get()).bce_with_logits(logits, _float_targets(logits, target))
        return value


LOSSES: dict[str, Callable[[Any], Loss]] = {"softmax_xent": SoftmaxCrossEntropy, "cross_entropy": SoftmaxCrossEntropy,
          "SoftmaxCrossEntropy": SoftmaxCrossEntropy, "mse": MSE, "MSE": MSE,
          "bce": BCEWithLogits, "BCE": BCEWithLogits, "BCEWithLogits": BCEWithLogits}


def get_loss(name: str, backend: Any = None) -> Loss:
    try:
        return LOSSES[name](backend)
    except KeyError:
        raise LossError(f"unknown loss {name!r}: expected softmax_xent, mse or bce") from None
