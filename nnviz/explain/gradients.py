"""Saliency (|d logit_c / d x|, gradient x input) and Grad-CAM from one forward and one
backward pass of the engine: the backward starts from a one-hot logit gradient and keeps
the input gradient and the gradient at the chosen convolution's maps."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnviz.engine import Sequential

from .core import (
    as_batch,
    block_end,
    check_layer,
    class_targets,
    default_cam_layer,
    one_hot_logit_grad,
    require_image_model,
    softmax,
    walk_backward,
    walk_forward,
)


@dataclass
class Explanation:
    """Per input n of a batch; maps are (N, H, W) at the input's resolution."""
    target: np.ndarray           # (N,) the class explained
    logits: np.ndarray           # (N, K)
    probs: np.ndarray            # (N, classes)
    gradient: np.ndarray         # (N, C, H, W) d logit_target / d input
    saliency: np.ndarray         # (N, H, W) max over channels of |gradient|
    grad_x_input: np.ndarray     # (N, H, W) sum over channels of gradient * input
    cam_layer: int | None = None     # the Conv2D layer of the Grad-CAM
    cam_maps: np.ndarray | None = None       # (N, K, h, w) the maps used (after the activation)
    cam_weights: np.ndarray | None = None    # (N, K) mean gradient per map
    cam_small: np.ndarray | None = None      # (N, h, w) ReLU(sum_k weight_k * map_k)
    grad_cam: np.ndarray | None = None       # (N, H, W) cam_small, bilinear to the input size


def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) bilinear interpolation weights, half-pixel centres (PyTorch's
    `interpolate(mode="bilinear", align_corners=False)`)."""
    m = np.zeros((n_out, n_in), np.float64)
    src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = src - i0
    rows = np.arange(n_out)
    np.add.at(m, (rows, i0), 1 - w1)
    np.add.at(m, (rows, i1), w1)
    return m


def upsample(maps: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """(..., h, w) -> (..., H, W), bilinear."""
    h, w = maps.shape[-2:]
    rh, rw = resize_matrix(h, hw[0]), resize_matrix(w, hw[1])
    return (rh @ maps.astype(np.float64) @ rw.T).astype(np.float32)   # matmul: einsum took 60x longer


def explain(model: Sequential, x: np.ndarray, target=None, cam_layer: int | None = -1,
            baseline=0.0) -> Explanation:
    """Saliency, gradient x input and (for image models with a convolution) Grad-CAM.

    x: one input (C, H, W) or a batch; target: None (the predicted class), a class index or
    one per input; cam_layer: a top-level Conv2D index, -1 for the default (the last
    convolution with maps larger than 1x1), None for no Grad-CAM; baseline: gradient x
    input uses (x - baseline), e.g. a black image in normalised units (-mean / std), so
    that black pixels contribute nothing (a number, one per channel, or an input).
    Overwrites the model's layer caches and `grads` (use clone_model on a training model).
    """
    xb = as_batch(model, x)
    if cam_layer is not None:
        require_image_model(model, "Grad-CAM")
        cam_layer = default_cam_layer(model) if cam_layer == -1 else check_layer(
            model, cam_layer, "Grad-CAM")
    keep: tuple[int, ...] = () if cam_layer is None else (block_end(model, cam_layer),)
    out, maps = walk_forward(model, xb, keep=keep)
    logits = np.array(model.B.to_host(out), np.float32).reshape(len(xb), -1)
    t = class_targets(model, logits, target)
    gx, grads = walk_backward(model, one_hot_logit_grad(logits, t), keep=keep)
    gx = gx.reshape(xb.shape)
    sal = np.abs(gx).max(axis=1) if gx.ndim == 4 else np.abs(gx)
    base = np.asarray(baseline, np.float32)
    if base.ndim == 1 and gx.ndim == 4:          # one value per channel
        base = base.reshape(-1, 1, 1)
    gxi = gx * (xb - base)
    gxi = gxi.sum(axis=1) if gx.ndim == 4 else gxi
    res = Explanation(target=t, logits=logits, probs=softmax(logits), gradient=gx,
                      saliency=sal, grad_x_input=gxi)
    if cam_layer is not None:
        a, g = maps[keep[0]], grads[keep[0]]
        wts = g.mean(axis=(2, 3))
        small = np.maximum(np.einsum("nk,nkhw->nhw", wts, a), 0)
        res.cam_layer, res.cam_maps, res.cam_weights, res.cam_small = cam_layer, a, wts, small
        res.grad_cam = upsample(small, xb.shape[2:])
    return res


def saliency(model: Sequential, x: np.ndarray, target=None) -> Explanation:
    """|d logit_target / d x| (and gradient x input), no Grad-CAM."""
    return explain(model, x, target, cam_layer=None)


def grad_cam(model: Sequential, x: np.ndarray, target=None, layer: int = -1) -> np.ndarray:
    """Grad-CAM heat maps (N, H, W) for a Conv2D layer (-1: the default layer)."""
    cam = explain(model, x, target, cam_layer=layer).grad_cam
    assert cam is not None          # a layer was asked for
    return cam
