"""Qt-free pictures for the explanation views: the input enlarged (crisp pixels) with a
heat map blended over it (smooth), colour bars, and a grid of activation-maximisation
images.  Everything is uint8 RGB numpy."""
from __future__ import annotations

import numpy as np

from nnviz.explain import upsample

from ..style import COLORMAPS, to_uint8

ZOOM = 8          # display pixels per input pixel: 28x28 -> 224x224


def base_rgb(display: np.ndarray, zoom: int = ZOOM) -> np.ndarray:
    """A display image (H, W) or (H, W, 3) uint8 -> (H*zoom, W*zoom, 3) float 0..255."""
    a = np.asarray(display, np.float32)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    return np.repeat(np.repeat(a, zoom, axis=0), zoom, axis=1)


def smooth(heat: np.ndarray, zoom: int = ZOOM) -> np.ndarray:
    """(H, W) -> (H*zoom, W*zoom), bilinear."""
    h, w = heat.shape
    return upsample(np.asarray(heat, np.float32), (h * zoom, w * zoom))


def scaled(heat: np.ndarray, signed: bool) -> tuple[np.ndarray, float]:
    """(heat / its largest magnitude, that magnitude): 0..1, or -1..1 when signed."""
    heat = np.nan_to_num(np.asarray(heat, np.float32))
    top = float(np.abs(heat).max()) if heat.size else 0.0
    if top <= 0:
        return np.zeros_like(heat), 0.0
    v = heat / top
    return (v if signed else np.clip(v, 0, 1)), top


def colour(v: np.ndarray, cmap: str, signed: bool) -> np.ndarray:
    lo = -1.0 if signed else 0.0
    return COLORMAPS[cmap][to_uint8(v, lo, 1.0)].astype(np.float32)


def overlay(display: np.ndarray, heat: np.ndarray, cmap: str = "inferno", signed: bool = False,
            opacity: float = 0.7, on_input: bool = True, zoom: int = ZOOM) -> np.ndarray:
    """The input with `heat` blended over it: each pixel's weight is opacity x |heat| (scaled
    to its largest magnitude), so only the strong parts tint the image.  on_input=False:
    the colour-mapped heat alone."""
    v, _ = scaled(heat, signed)
    big = smooth(v, zoom)
    col = colour(big, cmap, signed)
    if not on_input:
        return col.astype(np.uint8)
    base = base_rgb(display, zoom)
    a = (float(opacity) * np.clip(np.abs(big), 0, 1))[:, :, None]
    return np.clip(base * (1 - a) + col * a, 0, 255).astype(np.uint8)


def colorbar(cmap: str, signed: bool, width: int = 160, height: int = 12) -> np.ndarray:
    v = np.linspace(-1 if signed else 0, 1, width, dtype=np.float32)
    row = colour(v, cmap, signed).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(row[None], height, axis=0))


def image_tiles(images: np.ndarray, box=None, size: int = 112) -> list[np.ndarray]:
    """Activation-maximisation images (F, C, H, W) -> F uint8 tiles of about size x size:
    cropped to `box` (r0, r1, c0, c1: the receptive field), each stretched to its own
    1..99 % range (the raw range is arbitrary), enlarged with smooth interpolation."""
    out = []
    for im in np.asarray(images, np.float32):
        if box is not None:
            r0, r1, c0, c1 = box
            im = im[:, r0:r1, c0:c1]
        c, h, w = im.shape
        zoom = max(1, round(size / max(h, w)))
        if max(h, w) <= 12:      # a first-layer neuron's few pixels: show them crisp
            big = np.repeat(np.repeat(im, zoom, axis=1), zoom, axis=2)
        else:
            big = upsample(im, (h * zoom, w * zoom))
        u = to_uint8(big, float(np.percentile(big, 1)), float(np.percentile(big, 99)))
        out.append(u[0] if c == 1 else np.ascontiguousarray(u[:3].transpose(1, 2, 0)))
    return out
