"""Toy 2-D data sets: nnviz.data.make_toy when present, else a local generator
with the same signature (so the playground works on its own)."""
import numpy as np

TOY_NAMES = ["circle", "xor", "gauss", "spiral", "moons"]
MULTICLASS = {"gauss", "spiral"}   # data sets that support more than 2 classes


def _local_make_toy(name, n=500, noise=0.1, seed=0, test_fraction=0.5, classes=2):
    from nnviz.data.dataset import Dataset
    rng = np.random.default_rng(seed)
    n = int(n)
    k = int(classes) if name in MULTICLASS else 2
    if name == "circle":
        r = np.concatenate([rng.uniform(0, 2.0, n // 2), rng.uniform(3.0, 5.0, n - n // 2)])
        a = rng.uniform(0, 2 * np.pi, n)
        x = np.stack([r * np.cos(a), r * np.sin(a)], 1)
        y = (np.arange(n) < n // 2).astype(int)
    elif name == "xor":
        x = rng.uniform(-5, 5, (n, 2))
        x += np.sign(x) * 0.3
        y = ((x[:, 0] * x[:, 1]) >= 0).astype(int)
    elif name == "gauss":
        angles = 2 * np.pi * np.arange(k) / k + np.pi / 4
        centres = 2.5 * np.stack([np.cos(angles), np.sin(angles)], 1)
        y = np.arange(n) % k
        x = centres[y] + rng.normal(0, 1.0, (n, 2))
    elif name == "spiral":
        y = np.arange(n) % k
        t = rng.uniform(0, 1, n)
        r = 5 * t
        a = 1.75 * t * 2 * np.pi + 2 * np.pi * y / k
        x = np.stack([r * np.sin(a), r * np.cos(a)], 1)
    elif name == "moons":
        y = np.arange(n) % 2
        a = rng.uniform(0, np.pi, n)
        x = np.where(y[:, None] == 0, np.stack([np.cos(a), np.sin(a)], 1),
                     np.stack([1 - np.cos(a), 0.5 - np.sin(a)], 1))
        x = (x - [0.5, 0.25]) * 3.0
    else:
        raise ValueError(f"unknown toy data set {name!r}; known: {', '.join(TOY_NAMES)}")
    x = x + rng.normal(0, 1, x.shape) * noise * 2.5
    perm = rng.permutation(n)
    x, y = x[perm].astype(np.float32), y[perm]
    nt = int(round(n * (1 - test_fraction)))
    return Dataset(name=name, x_train=x[:nt], y_train=y[:nt], x_test=x[nt:], y_test=y[nt:],
                   class_names=[str(i) for i in range(k)], source="nnviz playground")


def make_toy(name, n=500, noise=0.1, seed=0, test_fraction=0.5, classes=2):
    try:
        from nnviz.data import make_toy as real
    except ImportError:
        real = None
    if real is not None:
        return real(name, n=n, noise=noise, seed=seed, test_fraction=test_fraction,
                    classes=classes if name in MULTICLASS else 2)
    return _local_make_toy(name, n, noise, seed, test_fraction, classes)
