"""2-D toy sets in the style of TensorFlow Playground (points roughly in [-6, 6]^2).

The spiral has interleaved arms of 1.75 turns (like the Playground) that start
at radius 0.6, so a 2-hidden-layer MLP learns it from 200 points (>= 95 %).

``noise`` follows the Playground's 0..0.5 slider meaning (0.1 = 10 %).
"""

from __future__ import annotations

import numpy as np

from .dataset import Dataset, DatasetError

TOY_NAMES = ("circle", "xor", "gauss", "spiral", "moons")
_MULTICLASS = {"circle", "gauss", "spiral"}
_RADIUS = 5.0


def _circle(rng, n, noise, k):
    # class j lives in ring j (class 0 is the inner disc), like the Playground for k=2
    y = np.arange(n) % k
    width = _RADIUS / (k + 0.4 * (k - 1))
    inner = y * width * 1.4
    r = inner + rng.uniform(0.0, width, n)
    t = rng.uniform(0.0, 2 * np.pi, n)
    x = np.stack([r * np.sin(t), r * np.cos(t)], axis=1)
    x += rng.uniform(-_RADIUS, _RADIUS, (n, 2)) * noise
    return x, y


def _xor(rng, n, noise, k):
    x = rng.uniform(-5.0, 5.0, (n, 2))
    pad = 0.3
    x += np.where(x > 0, pad, -pad)
    y = (x[:, 0] * x[:, 1] >= 0).astype(np.int64)
    x = x + rng.uniform(-5.0, 5.0, (n, 2)) * noise
    return x, y


def _gauss(rng, n, noise, k):
    y = np.arange(n) % k
    var = 0.5 + (4.0 - 0.5) * min(noise / 0.5, 1.0)
    if k == 2:
        centers = np.array([[2.0, 2.0], [-2.0, -2.0]])
    else:
        a = 2 * np.pi * np.arange(k) / k
        centers = 3.5 * np.stack([np.cos(a), np.sin(a)], axis=1)
    x = centers[y] + rng.normal(0.0, np.sqrt(var) * (0.5 if k > 2 else 1.0), (n, 2))
    return x, 1 - y if k == 2 else y


def _spiral(rng, n, noise, k):
    y = np.arange(n) % k
    i = np.arange(n) // k
    per = int(np.ceil(n / k))
    frac = i / per
    r = 0.6 + frac * (_RADIUS - 0.6)  # skip the tangled centre: learnable from 200 points
    t = 1.75 * frac * 2 * np.pi + 2 * np.pi * y / k
    x = np.stack([r * np.sin(t), r * np.cos(t)], axis=1)
    x += rng.uniform(-1.0, 1.0, (n, 2)) * noise
    return x, y


def _moons(rng, n, noise, k):
    y = np.arange(n) % 2
    t = rng.uniform(0.0, np.pi, n)
    outer = np.stack([np.cos(t), np.sin(t)], axis=1)
    inner = np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1)
    x = np.where(y[:, None] == 0, outer, inner)
    x = (x - [0.5, 0.25]) * 3.5
    x += rng.normal(0.0, 1.0, (n, 2)) * noise * 3.5
    return x, y


_MAKERS = {"circle": _circle, "xor": _xor, "gauss": _gauss, "spiral": _spiral, "moons": _moons}


def make_toy(name: str, n: int = 400, noise: float = 0.1, seed: int = 0,
             test_fraction: float = 0.5, classes: int = 2) -> Dataset:
    """Generate toy set ``name`` (one of TOY_NAMES), shuffled and split train/test."""
    if name not in _MAKERS:
        raise DatasetError(f"toy set name: {name!r} is not one of {', '.join(TOY_NAMES)}")
    try:
        n, classes, seed = int(n), int(classes), int(seed)
        noise, test_fraction = float(noise), float(test_fraction)
    except (TypeError, ValueError) as e:
        raise DatasetError(f"{name}: bad parameter value ({e})") from None
    if classes < 2:
        raise DatasetError(f"{name}: parameter 'classes' must be >= 2, got {classes}")
    if classes > 2 and name not in _MULTICLASS:
        raise DatasetError(f"{name}: parameter 'classes' must be 2 for this set (only "
                           f"{', '.join(sorted(_MULTICLASS))} allow more), got {classes}")
    if classes > 10:
        raise DatasetError(f"{name}: parameter 'classes' must be <= 10, got {classes}")
    if n < 2 * classes:
        raise DatasetError(f"{name}: parameter 'n' must be >= {2 * classes}, got {n}")
    if not (0.0 <= noise <= 1.0) or not np.isfinite(noise):
        raise DatasetError(f"{name}: parameter 'noise' must lie in [0, 1], got {noise}")
    if not (0.0 <= test_fraction < 1.0):
        raise DatasetError(f"{name}: parameter 'test_fraction' must lie in [0, 1), got {test_fraction}")
    rng = np.random.default_rng([seed, TOY_NAMES.index(name)])
    x, y = _MAKERS[name](rng, n, noise, classes)
    perm = rng.permutation(n)
    x, y = x[perm].astype(np.float32), y[perm].astype(np.int64)
    n_test = int(round(n * test_fraction))
    n_train = n - n_test
    return Dataset(
        name=name,
        x_train=x[:n_train], y_train=y[:n_train], x_test=x[n_train:], y_test=y[n_train:],
        class_names=[f"class {i}" for i in range(classes)],
        normalization={"mean": [0.0, 0.0], "std": [1.0, 1.0]},
        source="generated",
    )
