"""The playground's toy 2-D data sets: names and the generator from nnviz.data."""
from nnviz.data import make_toy as _make_toy

TOY_NAMES = ["circle", "xor", "gauss", "spiral", "moons"]
MULTICLASS = {"gauss", "spiral"}   # data sets that support more than 2 classes


def make_toy(name, n=500, noise=0.1, seed=0, test_fraction=0.5, classes=2):
    return _make_toy(name, n=n, noise=noise, seed=seed, test_fraction=test_fraction,
                     classes=classes if name in MULTICLASS else 2)
