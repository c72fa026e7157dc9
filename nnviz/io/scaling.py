"""The input scaling a model carries (engine InputScaling as its first layer): parsing the
choices users give (`--input-scaling`, the app's Open model dialog) and swapping it on a model."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..engine.layers.scaling import bind_normalization

# what a model expects of [0, 1] pixels, as (mean, std)
PRESETS = {
    "mnist": ([0.1307], [0.3081]),
    "minus1to1": ([0.5], [0.5]),
    "unit": ([0.0], [1.0]),
}
CHOICES = ("mnist", "minus1to1", "unit", "none", "MEAN,STD")
HELP = ("the input an imported model expects, from [0, 1] pixels: mnist ((x-0.1307)/0.3081), "
        "minus1to1 ([-1, 1]), unit ([0, 1]), none (nnviz's standardised data as is), or "
        "MEAN,STD (one pair for all channels) or M1,M2,M3,S1,S2,S3 (per channel)")


class ScalingError(ValueError):
    pass


def parse_scaling(text: str) -> tuple[list[float], list[float]] | None:
    """'mnist' | 'minus1to1' | 'unit' | 'none' | 'MEAN,STD' | 'M1,..,Mc,S1,..,Sc' -> (mean, std);
    None for 'none' (no scaling layer)."""
    t = str(text).strip().lower()
    if t == "none":
        return None
    if t in PRESETS:
        m, s = PRESETS[t]
        return list(m), list(s)
    try:
        vals = [float(v) for v in t.split(",")]
    except ValueError:
        vals = []
    if len(vals) < 2 or len(vals) % 2 or not all(math.isfinite(v) for v in vals):
        raise ScalingError(f"input scaling {text!r}: expected one of {', '.join(CHOICES)}")
    half = len(vals) // 2
    mean, std = vals[:half], vals[half:]
    if min(std) <= 0:
        raise ScalingError(f"input scaling {text!r}: std must be > 0")
    return mean, std


def get_input_scaling(model: Any) -> Any:
    """The model's InputScaling layer (its first layer) or None."""
    first = model.layers[0]
    return first if first.type == "InputScaling" else None


def describe_scaling(model) -> str:
    s = get_input_scaling(model)
    if s is None:
        return "none (nnviz's standardised inputs)"
    for name, (m, sd) in PRESETS.items():
        if np.allclose(s.mean, m) and np.allclose(s.std, sd):
            return f"{name} (mean {s.mean}, std {s.std})"
    return f"mean {s.mean}, std {s.std}"


def _shift(key: str, by: int) -> str:
    head, rest = key.split(".", 1)
    return f"{int(head) + by}.{rest}"


def set_input_scaling(model: Any, scaling: Any) -> Any:
    """A new model computing `model` after the given scaling (replacing any it had).

    `scaling`: a parse_scaling() string, a (mean, std) pair, or None / "none" to remove it.
    Weights are copied; the data normalization a current scaling layer is bound to is kept.
    """
    from ..engine import model_from_spec
    if isinstance(scaling, str):
        scaling = parse_scaling(scaling)
    spec = model.to_spec()
    old = get_input_scaling(model)
    layers = spec["layers"][1:] if old is not None else spec["layers"]
    if scaling is not None:
        mean, std = scaling
        layer = {"type": "InputScaling", "mean": [float(v) for v in mean],
                 "std": [float(v) for v in std]}
        if old is not None and (old.data_mean != [0.0] or old.data_std != [1.0]):
            layer.update(data_mean=old.data_mean, data_std=old.data_std)
        layers = [layer, *layers]
    by = (scaling is not None) - (old is not None)
    new = model_from_spec(dict(spec, layers=layers), seed=model.seed, dtype=model.dtype)
    state = {_shift(k, by): v for k, v in model.state().items()
             if old is None or not k.startswith("0.")}
    new.load_state(state)
    return new


def bind_dataset(model, dataset) -> None:
    """Tell the model's scaling how `dataset` standardised its inputs (no-op without one)."""
    if dataset is not None:
        bind_normalization(model, getattr(dataset, "normalization", None))
