"""Input features for the playground: 2-D points -> (N, F) float32, vectorised."""
import numpy as np

FEATURES = [  # (key, label)
    ("x1", "x₁"), ("x2", "x₂"), ("x1sq", "x₁²"), ("x2sq", "x₂²"), ("x1x2", "x₁x₂"),
    ("sin1", "sin x₁"), ("sin2", "sin x₂"),
]
LABELS = dict(FEATURES)
KEYS = [k for k, _ in FEATURES]


def feature_map(xy, keys):
    """Map points (N, 2) to the selected features, in FEATURES order."""
    xy = np.asarray(xy, dtype=np.float32)
    x1, x2 = xy[:, 0], xy[:, 1]
    cols = {"x1": lambda: x1, "x2": lambda: x2, "x1sq": lambda: x1 * x1,
            "x2sq": lambda: x2 * x2, "x1x2": lambda: x1 * x2,
            "sin1": lambda: np.sin(x1), "sin2": lambda: np.sin(x2)}
    chosen = [k for k in KEYS if k in set(keys)]
    if not chosen:
        raise ValueError("select at least one input feature")
    return np.ascontiguousarray(np.stack([cols[k]() for k in chosen], axis=1), dtype=np.float32)


def ordered(keys):
    s = set(keys)
    return [k for k in KEYS if k in s]
