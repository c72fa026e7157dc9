"""Training history, bounded in memory: per-step series are decimated when long."""
from __future__ import annotations

from typing import Any

import numpy as np

STEP_KEYS = ("step", "loss", "accuracy")
EPOCH_KEYS = ("epoch", "step", "train_loss", "train_accuracy", "test_loss", "test_accuracy",
              "seconds")


class History:
    def __init__(self, max_points: int = 20000) -> None:
        self.max_points = int(max_points)
        self.stride = 1          # each stored step point averages `stride` steps
        self._acc: dict[str, list] = {k: [] for k in STEP_KEYS}
        self.steps: dict[str, list] = {k: [] for k in STEP_KEYS}
        self.epochs: dict[str, list] = {k: [] for k in EPOCH_KEYS}

    def add_step(self, step: int, loss: float, accuracy: float) -> None:
        if self.stride == 1:   # the common case, kept cheap: it runs every training step
            st = self.steps
            st["step"].append(step)
            st["loss"].append(float(loss))
            st["accuracy"].append(float(accuracy))
            if len(st["step"]) > self.max_points:
                self._halve()
            return
        a = self._acc
        a["step"].append(step)
        a["loss"].append(loss)
        a["accuracy"].append(accuracy)
        if len(a["step"]) >= self.stride:
            self.steps["step"].append(a["step"][-1])
            self.steps["loss"].append(float(np.mean(a["loss"])))
            self.steps["accuracy"].append(float(np.mean(a["accuracy"])))
            for v in a.values():
                v.clear()
            if len(self.steps["step"]) > self.max_points:
                self._halve()

    def _halve(self):
        # average neighbouring points: memory stays bounded, the curve's shape stays
        n = len(self.steps["step"]) // 2 * 2
        for k in STEP_KEYS:
            v = np.asarray(self.steps[k][:n], dtype=float)
            tail = self.steps[k][n:]
            if k == "step":
                merged = v[1::2]
            else:
                merged = (v[0::2] + v[1::2]) / 2
            self.steps[k] = [int(x) if k == "step" else float(x) for x in merged] + tail
        self.stride *= 2

    def add_epoch(self, **row: Any) -> None:
        for k in EPOCH_KEYS:
            self.epochs[k].append(row.get(k, float("nan")))

    def truncate(self, step: int) -> None:
        """Forget every point after training step `step` (going back to an earlier state)."""
        for series in (self.steps, self.epochs):
            keep = sum(1 for s in series["step"] if s <= step)
            for v in series.values():
                del v[keep:]
        for v in self._acc.values():
            v.clear()

    def to_arrays(self, dtype=None) -> dict:
        """{"steps": {key: array}, "epochs": {key: array}}, new arrays (safe to hand to another
        thread); dtype None: int64 step and epoch numbers, float64 values; else all `dtype`."""
        def conv(table):
            return {k: np.asarray(v, dtype=dtype or (np.int64 if k in ("epoch", "step") else np.float64))
                    for k, v in table.items()}
        return {"steps": conv(self.steps), "epochs": conv(self.epochs)}

    def to_dict(self) -> dict:
        return {"max_points": self.max_points, "stride": self.stride, **self.to_arrays()}

    @classmethod
    def from_dict(cls, d: dict) -> History:
        h = cls(int(d.get("max_points", 20000)))
        h.stride = int(d.get("stride", 1))
        for k in STEP_KEYS:
            h.steps[k] = np.asarray(d["steps"][k]).tolist()
        for k in EPOCH_KEYS:
            h.epochs[k] = np.asarray(d["epochs"].get(k, [])).tolist()
        return h

    def copy(self) -> History:
        return History.from_dict(self.to_dict())
