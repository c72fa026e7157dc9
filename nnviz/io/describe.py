"""`nnviz info`: a saved model or a preset as a table plus the same facts as JSON."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelFormatError
from .formats import available, load_model


def _clean(v):
    """JSON-safe: NaN/inf -> None, numpy -> Python."""
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, np.ndarray):
        return _clean(v.tolist())
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _last(seq):
    try:
        if seq is not None and len(seq):
            return float(np.asarray(seq)[-1])
    except (TypeError, ValueError):
        pass
    return None


def _is_file_like(s):
    p = Path(s)
    suffixes = {e for m in available() for e in m.EXTENSIONS}
    return p.is_file() and p.suffix.lower() != ".json" or p.suffix.lower() in suffixes


def describe_model(path_or_preset: str | os.PathLike, input_scaling: Any = None) -> dict:
    """{"text": table, "kind": "file"|"spec", "layers": [...], "training": {...}|None, ...}."""
    src = os.fspath(path_or_preset) if isinstance(path_or_preset, os.PathLike) else str(path_or_preset)
    meta = None
    if _is_file_like(src):
        loaded = load_model(src, input_scaling=input_scaling)
        model, meta, kind = loaded.model, loaded.meta, "file"
    else:
        from ..engine import model_from_spec, read_spec
        spec = read_spec(src)
        model, kind = model_from_spec(spec), "spec"
        if input_scaling is not None:
            from .scaling import set_input_scaling
            model = set_input_scaling(model, input_scaling)
    rows = model.summary()
    info = {"source": src, "kind": kind, "name": model.name,
            "input_shape": list(model.input_shape), "output_shape": list(model.output_shape),
            "param_count": int(model.param_count()), "layers": rows,
            "spec": model.to_spec(), "training": None, "dataset": None}
    if meta is not None:
        info.update(format=meta.get("format"), source_format=meta.get("source_format"),
                    notes=list(meta.get("notes") or []),
                    format_version=meta.get("format_version"),
                    nnviz_version=meta.get("nnviz_version"), created=meta.get("created"),
                    backend=meta.get("backend"), seed=meta.get("seed"),
                    file_size=Path(src).expanduser().stat().st_size)
        ds = meta.get("dataset") or {}
        info["dataset"] = ds if any(v is not None for v in ds.values()) else None
        info["training"] = _training_summary(meta)
    info = _clean(info)
    info["text"] = _text(model, info)
    return info


def _training_summary(meta):
    st = meta.get("training")
    if not st:
        return None
    cfg = st.get("config") or {}
    hist = meta.get("history") or st.get("history") or {}
    ep = hist.get("epochs") or {}
    steps = hist.get("steps") or {}
    return {"epochs": st.get("epoch"), "steps": st.get("steps"), "samples": st.get("samples"),
            "seconds": st.get("seconds"), "loss": cfg.get("loss"),
            "batch_size": cfg.get("batch_size"), "seed": cfg.get("seed"),
            "optimizer": cfg.get("optimizer"),
            "last_step_loss": _last(steps.get("loss")),
            "last_step_accuracy": _last(steps.get("accuracy")),
            "train_loss": _last(ep.get("train_loss")),
            "train_accuracy": _last(ep.get("train_accuracy")),
            "test_loss": _last(ep.get("test_loss")),
            "test_accuracy": _last(ep.get("test_accuracy"))}


def _fmt(v, spec=".4f"):
    return "-" if v is None else format(v, spec)


def _text(model, info):
    lines = [model.summary_text()]
    if info["kind"] == "file" and info.get("format_version") is not None:
        lines.append(f"file: {info['source']} ({info['file_size']:,} bytes), format "
                     f"{info['format_version']}, nnviz {info['nnviz_version']}, saved "
                     f"{info['created']} on backend {info['backend']}")
    elif info["kind"] == "file":
        lines.append(f"file: {info['source']} ({info['file_size']:,} bytes), "
                     f"{info.get('source_format') or info.get('format')}")
    from .scaling import describe_scaling
    lines.append(f"input scaling: {describe_scaling(model)}")
    lines.extend(f"note: {n}" for n in info.get("notes") or [])
    ds = info.get("dataset")
    if ds:
        classes = ds.get("class_names") or []
        shown = ", ".join(map(str, classes[:10])) + (", ..." if len(classes) > 10 else "")
        lines.append(f"dataset: {ds.get('name')} inputs {tuple(ds.get('input_shape') or ())}, "
                     f"{len(classes)} classes ({shown})")
    tr = info.get("training")
    if tr:
        opt = tr.get("optimizer") or {}
        lines.append(f"training: {tr['epochs']} epochs, {tr['steps']:,} steps, "
                     f"{_fmt(tr['seconds'], '.1f')} s; loss {tr['loss']}, batch {tr['batch_size']}, "
                     f"{opt.get('type')} lr {opt.get('lr')}")
        lines.append(f"last: train loss {_fmt(tr['train_loss'])} acc {_fmt(tr['train_accuracy'])}"
                     f" | test loss {_fmt(tr['test_loss'])} acc {_fmt(tr['test_accuracy'])}"
                     f" | last step loss {_fmt(tr['last_step_loss'])}")
    elif info["kind"] == "file":
        lines.append("training: none saved")
    return "\n".join(lines)


__all__ = ["describe_model", "ModelFormatError"]
