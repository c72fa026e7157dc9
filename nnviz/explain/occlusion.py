"""Occlusion sensitivity: slide a grey patch over the input and record how much the
class probability drops.  Forward passes only, all patch positions in one batch."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnviz.engine import Sequential

from .core import ExplainError, as_batch, class_targets, require_image_model


@dataclass
class Occlusion:
    target: int                  # the class whose probability is watched
    prob: float                  # its probability on the whole input
    rows: np.ndarray             # (R,) top row of each patch position
    cols: np.ndarray             # (S,) left column of each patch position
    drop: np.ndarray             # (R, S) prob - prob with the patch at (rows[r], cols[s])
    heatmap: np.ndarray          # (H, W) mean drop of the patches covering each pixel
    size: int
    stride: int


def positions(n: int, size: int, stride: int) -> np.ndarray:
    """Patch starts 0, stride, ... and always one flush with the far edge."""
    p = np.arange(0, n - size + 1, stride)
    return p if p[-1] == n - size else np.append(p, n - size)


def _check(name: str, v, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
        raise ExplainError(f"occlusion: {name} must be an integer in {lo}..{hi}, got {v!r}")
    return int(v)


def occlusion(model: Sequential, x: np.ndarray, target=None, size: int = 4, stride: int = 2,
              fill=0.0, batch_size: int = 512) -> Occlusion:
    """x: one input (C, H, W).  fill: the patch value, one number or one per channel, in the
    model's input units (for normalised data, (0.5 - mean) / std is a mid-grey)."""
    require_image_model(model, "occlusion")
    xb = as_batch(model, x)
    if len(xb) != 1:
        raise ExplainError(f"occlusion explains one input at a time, got a batch of {len(xb)}")
    c, h, w = xb.shape[1:]
    size = _check("size", size, 1, min(h, w))
    stride = _check("stride", stride, 1, max(h, w))
    fill = np.broadcast_to(np.asarray(fill, np.float32).reshape(-1), (c,))
    rows, cols = positions(h, size, stride), positions(w, size, stride)
    # masks (P, H, W): patch p covers rows[r]..+size, cols[s]..+size
    rin = (np.arange(h)[None] >= rows[:, None]) & (np.arange(h)[None] < rows[:, None] + size)
    cin = (np.arange(w)[None] >= cols[:, None]) & (np.arange(w)[None] < cols[:, None] + size)
    masks = (rin[:, None, :, None] & cin[None, :, None, :]).reshape(-1, h, w)
    batch = np.where(masks[:, None], fill[None, :, None, None], xb)
    batch = np.concatenate([xb, batch])               # item 0: the unoccluded input
    probs = model.predict_proba(batch, batch_size=batch_size)
    t = int(class_targets(model, probs[:1], target)[0])   # probs: same argmax as the logits
    p0 = float(probs[0, t])
    drop = (p0 - probs[1:, t]).astype(np.float32)
    cover = masks.sum(axis=0)
    heat = np.tensordot(drop, masks.astype(np.float32), axes=1) / np.maximum(cover, 1)
    return Occlusion(target=t, prob=p0, rows=rows, cols=cols,
                     drop=drop.reshape(len(rows), len(cols)), heatmap=heat.astype(np.float32),
                     size=size, stride=stride)
