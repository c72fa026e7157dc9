"""Models as JSON: {"name", "input_shape", "layers": [{"type": ClassName, **kwargs}]}."""
from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..files import FileRefused, read_regular
from .layers import LAYER_TYPES, Layer, LayerError
from .model import Sequential

MAX_SPEC_BYTES = 16 << 20
MAX_LAYERS = 10_000    # presets have a dozen; a hostile spec of 3,000,000 took minutes to refuse
MAX_DEPTH = 50         # Residual blocks inside Residual blocks


class SpecError(LayerError):
    """A model description is malformed; the message names the file/layer."""


def resources_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "resources"


def presets_dir() -> Path:
    return resources_dir() / "presets"


def preset_names() -> list[str]:
    return sorted(p.stem for p in presets_dir().glob("*.json"))


def layer_from_config(cfg: dict, where: str) -> Layer:
    if not isinstance(cfg, dict) or "type" not in cfg:
        raise SpecError(f"{where}: each layer must be an object with a 'type', got {cfg!r}")
    kind = cfg["type"]
    cls = LAYER_TYPES.get(kind)
    if cls is None:
        raise SpecError(f"{where}: unknown layer type {kind!r}; known: {', '.join(LAYER_TYPES)}")
    kwargs = {k: v for k, v in cfg.items() if k != "type"}
    if kind == "Residual":
        inner = kwargs.get("layers")
        if not isinstance(inner, list):
            raise SpecError(f"{where} (Residual): needs a 'layers' list")
        kwargs["layers"] = [layer_from_config(c, f"{where}.{i}") for i, c in enumerate(inner)]
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self"}
    extra = set(kwargs) - allowed
    if extra:
        raise SpecError(f"{where} ({kind}): unknown parameter(s) {sorted(extra)}; "
                        f"allowed: {sorted(allowed)}")
    try:
        return cls(**kwargs)
    except LayerError as e:
        raise SpecError(f"{where}: {e}") from None
    except (TypeError, ValueError) as e:  # e.g. float("x") for a string Dropout p
        raise SpecError(f"{where} ({kind}): {e}") from None


def model_from_spec(spec: dict, seed: int = 0, **kw: Any) -> Sequential:
    if not isinstance(spec, dict):
        raise SpecError(f"a model spec must be a JSON object, got {type(spec).__name__}")
    for key in ("input_shape", "layers"):
        if key not in spec:
            raise SpecError(f"model spec {spec.get('name', '')!r} has no {key!r}")
    if not isinstance(spec["layers"], list) or not spec["layers"]:
        raise SpecError("model spec: 'layers' must be a non-empty list")
    if count_layers(spec["layers"]) > MAX_LAYERS:
        raise SpecError(f"model spec has more than {MAX_LAYERS:,} layers")
    layers = [layer_from_config(c, f"layer {i}") for i, c in enumerate(spec["layers"])]
    return Sequential(layers, spec["input_shape"], seed=seed, name=spec.get("name", "model"), **kw)


def count_layers(layers: list, depth: int = 0) -> int:
    """Layers in a spec's list, Residual contents included; stops counting past MAX_LAYERS."""
    if depth > MAX_DEPTH:
        raise SpecError(f"model spec nests Residual blocks more than {MAX_DEPTH} deep")
    n = 0
    for cfg in layers:
        n += 1
        inner = cfg.get("layers") if isinstance(cfg, dict) else None
        if isinstance(inner, list):
            n += count_layers(inner, depth + 1)
        if n > MAX_LAYERS:
            break
    return n


def read_spec(name_or_path: str | Path) -> dict:
    """A preset name (resources/presets/NAME.json) or a path to a JSON file."""
    p = Path(name_or_path)
    if p.suffix.lower() != ".json" or not p.exists():
        cand = presets_dir() / f"{name_or_path}.json"
        if cand.exists():
            p = cand
        elif p.suffix.lower() == ".json":
            raise SpecError(f"{name_or_path}: no such model file")
        else:
            raise SpecError(f"unknown preset {name_or_path!r}; presets: {', '.join(preset_names())}")
    try:     # a regular file only (a FIFO would block), of a size a model description has
        spec = json.loads(read_regular(p, MAX_SPEC_BYTES).decode("utf-8"))
    except FileRefused as e:
        raise SpecError(f"{p}: {e}") from None
    except (OSError, UnicodeDecodeError, RecursionError) as e:
        raise SpecError(f"{p}: cannot read: {type(e).__name__}: {str(e)[:200]}") from None
    except json.JSONDecodeError as e:
        raise SpecError(f"{p}: malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    if not isinstance(spec, dict):
        raise SpecError(f"{p}: a model spec must be a JSON object")
    spec.setdefault("name", p.stem)
    return spec


def adapt_spec(spec: dict, input_shape: Sequence[int] | None = None,
               num_classes: int | None = None) -> dict:
    """Fit a spec to a dataset: its input shape, and the last Dense to its classes."""
    spec = copy.deepcopy(spec)
    if input_shape is not None:
        spec["input_shape"] = list(input_shape)
        # an MLP preset on images: flatten the pixels first (mlp0 = a linear model on pixels)
        if len(input_shape) > 1 and spec["layers"] and spec["layers"][0].get("type") == "Dense":
            spec["layers"].insert(0, {"type": "Flatten"})
    if num_classes is not None:
        for cfg in reversed(spec["layers"]):
            if cfg.get("type") == "Dense":
                if cfg.get("out_features") != 1:  # keep single-logit binary models
                    cfg["out_features"] = int(num_classes)
                break
    return spec


def load_preset(name: str, seed: int = 0, input_shape: Sequence[int] | None = None,
                num_classes: int | None = None, **kw: Any) -> Sequential:
    return model_from_spec(adapt_spec(read_spec(name), input_shape, num_classes), seed=seed, **kw)
