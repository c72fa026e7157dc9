#!/usr/bin/env python
"""Generate the bundled teaching datasets ``datasets/shapes.h5`` and ``datasets/color-shapes.h5``.

Deterministic: a fixed seed, fully vectorised numpy rendering (signed-distance
functions evaluated over a coordinate grid for all images of a class at once),
and HDF5 written with ``track_times=False``, fixed chunks, shuffle + gzip 9, so
running the script twice produces byte-identical files.

    python scripts/make_datasets.py                 # both sets into datasets/
    python scripts/make_datasets.py --out /tmp/x --n 100 --only shapes

File layout (see docs/datasets.md): ``x_train`` (N, C, H, W) uint8, ``y_train``
(N,) uint8, ``x_test``, ``y_test``, ``class_names`` (fixed-length bytes), root
attributes ``description``, ``generator`` and ``seed``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import h5py
import numpy as np

SEED = 20240607
N_TRAIN_PER_CLASS = 1000
N_TEST_PER_CLASS = 200

SHAPES_CLASSES = ["horizontal", "vertical", "diagonal /", "diagonal \\", "plus", "cross x",
                  "circle", "triangle", "square", "angle L"]
COLOR_SHAPES = ["circle", "square", "triangle", "plus", "diamond"]
COLOR_FAMILIES = ["red", "blue"]
COLOR_CLASSES = [f"{c} {s}" for c in COLOR_FAMILIES for s in COLOR_SHAPES]


# ----------------------------------------------------------------- geometry
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates, x to the right, y downwards, shape (1, H, W)."""
    c = np.arange(size, dtype=np.float32) + 0.5
    yy, xx = np.meshgrid(c, c, indexing="ij")
    return xx[None], yy[None]


def _seg_dist(px, py, ax, ay, bx, by):
    """Distance from grid points (1,H,W) to segments given as (N,S) arrays -> (N,H,W) min."""
    ax, ay, bx, by = (v[:, :, None, None] for v in (ax, ay, bx, by))
    dx, dy = bx - ax, by - ay
    qx, qy = px[:, None] - ax, py[:, None] - ay
    den = np.maximum(dx * dx + dy * dy, 1e-6)
    t = np.clip((qx * dx + qy * dy) / den, 0.0, 1.0)
    ex, ey = qx - t * dx, qy - t * dy
    return np.sqrt(ex * ex + ey * ey).min(axis=1)


def _rot(pts, ang):
    """Rotate (N,S,2) template points by per-image angles (N,)."""
    c, s = np.cos(ang)[:, None], np.sin(ang)[:, None]
    x, y = pts[..., 0], pts[..., 1]
    return np.stack([c * x - s * y, s * x + c * y], axis=-1)


def _stroke(d, thick):
    """Anti-aliased stroke coverage in [0, 1] from a distance field."""
    return np.clip(thick[:, None, None] / 2 + 0.5 - d, 0.0, 1.0)


# Stroke templates in unit coordinates (segments as pairs of points), y down.
def _poly(points, closed=True):
    pts = np.asarray(points, dtype=np.float32)
    nxt = np.roll(pts, -1, axis=0) if closed else pts[1:]
    a = pts if closed else pts[:-1]
    return np.stack([a, nxt], axis=1)  # (S, 2, 2)


_TRI = [(np.sin(a), -np.cos(a)) for a in np.deg2rad([0, 120, 240])]
_CIRCLE = [(np.cos(a), np.sin(a)) for a in np.linspace(0, 2 * np.pi, 24, endpoint=False)]
STROKE_TEMPLATES = {
    "horizontal": _poly([(-1, 0), (1, 0)], closed=False),
    "vertical": _poly([(0, -1), (0, 1)], closed=False),
    "diagonal /": _poly([(-0.75, 0.75), (0.75, -0.75)], closed=False),
    "diagonal \\": _poly([(-0.75, -0.75), (0.75, 0.75)], closed=False),
    "plus": np.concatenate([_poly([(-1, 0), (1, 0)], False), _poly([(0, -1), (0, 1)], False)]),
    "cross x": np.concatenate([_poly([(-0.75, -0.75), (0.75, 0.75)], False),
                               _poly([(-0.75, 0.75), (0.75, -0.75)], False)]),
    "circle": _poly(_CIRCLE) * 0.85,
    "triangle": _poly(_TRI) * 1.05 + np.float32([0, 0.2]),
    "square": _poly([(-0.8, -0.8), (0.8, -0.8), (0.8, 0.8), (-0.8, 0.8)]),
    "angle L": _poly([(-0.6, -0.9), (-0.6, 0.7), (0.8, 0.7)], closed=False),
}
LINE_LIKE = {"horizontal", "vertical", "diagonal /", "diagonal \\", "plus", "cross x"}


def render_shapes(cls: str, n: int, rng: np.random.Generator, size: int = 28) -> np.ndarray:
    """(n, 1, size, size) uint8 greyscale stroke figures of class ``cls``."""
    px, py = _grid(size)
    tmpl = STROKE_TEMPLATES[cls]
    max_rot = 12.0 if cls in LINE_LIKE or cls == "square" else 20.0
    ang = np.deg2rad(rng.uniform(-max_rot, max_rot, n)).astype(np.float32)
    lo = 5.0 if cls in LINE_LIKE else 6.5
    scale = rng.uniform(lo, 10.0, n).astype(np.float32)
    sx = (scale * rng.uniform(0.8, 1.2, n)).astype(np.float32)
    cx = rng.uniform(size * 0.5 - 5, size * 0.5 + 5, n).astype(np.float32)
    cy = rng.uniform(size * 0.5 - 5, size * 0.5 + 5, n).astype(np.float32)
    thick = rng.uniform(1.0, 2.6, n).astype(np.float32)
    pts = np.broadcast_to(tmpl.reshape(1, -1, 2), (n, tmpl.shape[0] * 2, 2)).copy()
    pts[..., 0] *= sx[:, None]
    pts[..., 1] *= scale[:, None]
    pts = _rot(pts, ang)
    pts[..., 0] += cx[:, None]
    pts[..., 1] += cy[:, None]
    pts = pts.reshape(n, -1, 2, 2)
    d = _seg_dist(px, py, pts[:, :, 0, 0], pts[:, :, 0, 1], pts[:, :, 1, 0], pts[:, :, 1, 1])
    ink = _stroke(d, thick)
    # clutter: a few random short strokes (distractors) in some images
    nclut = 2
    a = rng.uniform(0, size, (n, nclut, 2)).astype(np.float32)
    ca = rng.uniform(0, 2 * np.pi, (n, nclut)).astype(np.float32)
    ln = rng.uniform(1.0, 3.5, (n, nclut)).astype(np.float32)
    b = a + np.stack([np.cos(ca) * ln, np.sin(ca) * ln], axis=-1)
    dc = _seg_dist(px, py, a[..., 0], a[..., 1], b[..., 0], b[..., 1])
    on = (rng.random(n) < 0.5).astype(np.float32)[:, None, None]
    clut = _stroke(dc, np.full(n, 1.0, np.float32)) * on * rng.uniform(0.3, 0.7, n).astype(np.float32)[:, None, None]
    amp = rng.uniform(0.65, 1.0, n).astype(np.float32)[:, None, None]
    bg = rng.uniform(0.0, 0.2, n).astype(np.float32)[:, None, None]
    img = bg + (amp - bg) * np.maximum(ink, clut)
    img = _speckle(img, rng, 0.03)
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)[:, None]


def _speckle(img, rng, frac):
    """Replace a fraction of the pixels by uniform noise (sparse, so it compresses)."""
    mask = rng.random(img.shape, dtype=np.float32) < frac
    noise = rng.random(img.shape, dtype=np.float32)
    return np.where(mask, noise, img)


# ------------------------------------------------------------ colour shapes
def _box(x, y, hx, hy):
    dx, dy = np.abs(x) - hx, np.abs(y) - hy
    out = np.sqrt(np.maximum(dx, 0) ** 2 + np.maximum(dy, 0) ** 2)
    return out + np.minimum(np.maximum(dx, dy), 0)


def _tri(x, y):
    """Signed distance to an equilateral triangle of circumradius ~1 (pointing up, y down)."""
    k = np.float32(np.sqrt(3.0))
    y = -y - 0.25
    x = np.abs(x) - 0.85
    y = y + 0.85 / k
    cond = x + k * y > 0
    x2 = np.where(cond, (x - k * y) / 2, x)
    y2 = np.where(cond, (-k * x - y) / 2, y)
    x2 = x2 - np.clip(x2, -1.7, 0.0)
    return -np.sqrt(x2 * x2 + y2 * y2) * np.sign(y2)


def _sdf(shape: str, x, y):
    if shape == "circle":
        return np.sqrt(x * x + y * y) - 0.85
    if shape == "square":
        return _box(x, y, 0.75, 0.75)
    if shape == "triangle":
        return _tri(x, y) * 1.1
    if shape == "plus":
        return np.minimum(_box(x, y, 0.95, 0.3), _box(x, y, 0.3, 0.95))
    if shape == "diamond":
        r = np.float32(np.sqrt(0.5))
        return _box((x + y) * r, (x - y) * r, 0.68, 0.68)
    raise ValueError(shape)


def _family_rgb(family: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) shape colours: hue-jittered, varying brightness."""
    hi = rng.uniform(0.7, 1.0, n)
    lo1 = rng.uniform(0.0, 0.3, n)
    lo2 = rng.uniform(0.0, 0.45, n)
    if family == "red":
        rgb = np.stack([hi, lo2, lo1], axis=1)
    else:
        rgb = np.stack([lo1, lo2, hi], axis=1)
    return rgb.astype(np.float32)


def render_color_shapes(cls: str, n: int, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """(n, 3, size, size) uint8 colour shapes of class ``cls`` ('<colour> <shape>')."""
    family, shape = cls.split(" ", 1)
    px, py = _grid(size)
    ang = np.deg2rad(rng.uniform(-10, 10, n)).astype(np.float32)[:, None, None]
    s = rng.uniform(9.0, 13.0, n).astype(np.float32)[:, None, None]
    cx = rng.uniform(size / 2 - 5, size / 2 + 5, n).astype(np.float32)[:, None, None]
    cy = rng.uniform(size / 2 - 5, size / 2 + 5, n).astype(np.float32)[:, None, None]
    dx, dy = px - cx, py - cy
    c, sn = np.cos(ang), np.sin(ang)
    x = (c * dx + sn * dy) / s
    y = (-sn * dx + c * dy) / s
    d = _sdf(shape, x, y) * s  # pixels
    filled = rng.random(n) < 0.5
    thick = rng.uniform(2.0, 3.2, n).astype(np.float32)[:, None, None]
    cov_fill = np.clip(0.5 - d, 0, 1)
    cov_line = np.clip(thick / 2 + 0.5 - np.abs(d), 0, 1)
    cov = np.where(filled[:, None, None], cov_fill, cov_line)[:, None]  # (n,1,H,W)
    fg = _family_rgb(family, n, rng)[:, :, None, None]
    # background: muted random colour with a linear gradient and pixel noise
    bg0 = rng.uniform(0.05, 0.55, (n, 3)).astype(np.float32)
    grey = bg0.mean(axis=1, keepdims=True)
    bg0 = (grey + 0.25 * (bg0 - grey))[:, :, None, None]
    img = bg0 * (1 - cov) + fg * cov
    mask = rng.random((n, 1, size, size), dtype=np.float32) < 0.015
    img = np.where(mask, rng.random((n, 3, size, size), dtype=np.float32), img)
    # 32 grey levels per channel (0, 8.2, ..., 255): keeps the file small, looks the same
    levels = np.rint(np.clip(img, 0, 1) * 31) * np.float32(255 / 31)
    return np.rint(levels).astype(np.uint8)


# ----------------------------------------------------------------- assembly
def build(kind: str, n_train: int, n_test: int, seed: int = SEED):
    """Return x_train, y_train, x_test, y_test, class_names for 'shapes' or 'color-shapes'."""
    if kind == "shapes":
        names, render, sub = SHAPES_CLASSES, render_shapes, 1
    else:
        names, render, sub = COLOR_CLASSES, render_color_shapes, 2
    rng = np.random.default_rng([seed, sub])
    xs, ys = [], []
    for k, cls in enumerate(names):
        xs.append(render(cls, n_train + n_test, rng))
        ys.append(np.full(n_train + n_test, k, np.uint8))
    xtr = np.concatenate([x[:n_train] for x in xs])
    ytr = np.concatenate([y[:n_train] for y in ys])
    xte = np.concatenate([x[n_train:] for x in xs])
    yte = np.concatenate([y[n_train:] for y in ys])
    ptr, pte = rng.permutation(len(ytr)), rng.permutation(len(yte))
    return xtr[ptr], ytr[ptr], xte[pte], yte[pte], names


DESCRIPTIONS = {
    "shapes": "nnviz bundled set 'shapes': 1x28x28 greyscale anti-aliased stroke figures, 10 classes "
              "(lines by orientation, plus, x, circle, triangle, square, L) with random position, "
              "scale, rotation, thickness, clutter and noise.",
    "color-shapes": "nnviz bundled set 'color-shapes': 3x32x32 colour shapes, 10 classes = "
                    "{red, blue} x {circle, square, triangle, plus, diamond}, filled or outlined, "
                    "on muted coloured noisy gradient backgrounds.",
}


def write_h5(path: Path, kind: str, n_train: int, n_test: int, seed: int = SEED) -> None:
    xtr, ytr, xte, yte, names = build(kind, n_train, n_test, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with h5py.File(tmp, "w", libver="earliest", track_order=False) as f:
        for key, arr in (("x_train", xtr), ("y_train", ytr), ("x_test", xte), ("y_test", yte)):
            chunks = (min(256, max(1, arr.shape[0])),) + arr.shape[1:]
            f.create_dataset(key, data=arr, chunks=chunks, compression="gzip",
                             compression_opts=9, shuffle=True, track_times=False)
        f.create_dataset("class_names", data=np.array([n.encode() for n in names], dtype="S16"),
                         track_times=False)
        f.attrs["description"] = DESCRIPTIONS[kind]
        f.attrs["generator"] = "scripts/make_datasets.py"
        f.attrs["seed"] = np.int64(seed)
    tmp.replace(path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "datasets",
                   help="output folder (default: datasets/ in the repository)")
    p.add_argument("--n", type=int, default=N_TRAIN_PER_CLASS,
                   help=f"training images per class (default {N_TRAIN_PER_CLASS}); test = n/5")
    p.add_argument("--only", choices=["shapes", "color-shapes"], default=None)
    p.add_argument("--seed", type=int, default=SEED)
    a = p.parse_args(argv)
    if a.n < 1:
        p.error("--n must be >= 1")
    n_test = max(1, a.n // 5) if a.n != N_TRAIN_PER_CLASS else N_TEST_PER_CLASS
    for kind in (["shapes", "color-shapes"] if a.only is None else [a.only]):
        out = a.out / f"{kind}.h5"
        write_h5(out, kind, a.n, n_test, a.seed)
        print(f"wrote {out} ({out.stat().st_size} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
