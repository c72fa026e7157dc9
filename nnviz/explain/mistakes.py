"""Every test image the model gets wrong, most confident first."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnviz.engine import Sequential

from .core import ExplainError


@dataclass
class Mistakes:
    index: np.ndarray        # (M,) positions in the test set
    true: np.ndarray         # (M,) true class
    pred: np.ndarray         # (M,) predicted class
    confidence: np.ndarray   # (M,) probability of the predicted class
    true_prob: np.ndarray    # (M,) probability of the true class
    n_total: int             # test images looked at

    @property
    def accuracy(self) -> float:
        return 1.0 - len(self.index) / self.n_total if self.n_total else 0.0

    def __len__(self) -> int:
        return len(self.index)


def mistakes(model: Sequential, x: np.ndarray, y: np.ndarray, batch_size: int = 512) -> Mistakes:
    """Wrong predictions on (x, y), ordered by confidence (highest first; ties by index)."""
    y = np.asarray(y).astype(np.int64).reshape(-1)
    if len(x) != len(y):
        raise ExplainError(f"mistakes: {len(x)} images but {len(y)} labels")
    probs = model.predict_proba(x, batch_size=batch_size)
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != y)
    conf = probs[wrong, pred[wrong]]
    order = np.lexsort((wrong, -conf))
    wrong = wrong[order]
    return Mistakes(index=wrong, true=y[wrong], pred=pred[wrong], confidence=conf[order],
                    true_prob=probs[wrong, y[wrong]], n_total=len(y))
