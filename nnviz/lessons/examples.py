"""The numbers a lesson states, computed by the engine (Qt-free).

A lesson step may carry ``expect``: the numbers its caption states (output row one of the
edge-detection example, a layer's parameter count, ...). ``evaluate(step)`` computes the
same keys from the step's state with the engine's own layers -- the same calls the
workspaces make -- so a test can hold every built-in lesson to its words.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from nnviz.engine import convmath as cm
from nnviz.engine import model_from_spec, read_spec
from nnviz.engine.layers import ConvTranspose2D
from nnviz.engine.model import Sequential

from .lesson import LessonError, LessonStep


def grid_of(value: Any, where: str) -> np.ndarray:
    """A lesson's grid: "worked" (the 6x6 example), "pool" (the 4x4 one) or a list of rows."""
    if isinstance(value, str):
        named = {"worked": cm.WORKED_INPUT, "pool": cm.POOL_INPUT}
        if value not in named:
            raise LessonError(f"{where}: expected 'worked', 'pool' or a list of rows, got {value!r}")
        return named[value].copy()
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise LessonError(f"{where}: expected a list of equal-length rows of numbers") from None
    if a.ndim != 2 or a.size == 0 or a.shape[0] > 64 or a.shape[1] > 64:
        raise LessonError(f"{where}: expected a 2-D grid of at most 64x64 numbers, got shape {a.shape}")
    return a


def kernel_of(value: Any, where: str) -> np.ndarray:
    if isinstance(value, str):
        if value not in cm.KERNEL_PRESETS:
            raise LessonError(f"{where}: unknown kernel {value!r}; known: {', '.join(cm.KERNEL_PRESETS)}")
        return np.asarray(cm.KERNEL_PRESETS[value], dtype=np.float64)
    return grid_of(value, where)


def dense_params(n_in: int, n_out: int) -> int:
    """Weights plus biases of a fully connected layer: n_in * n_out + n_out."""
    return int(n_in) * int(n_out) + int(n_out)


def conv_size(n: int, f: int, p: int, s: int) -> int:
    """Output size of a convolution as the engine builds it (it floors)."""
    return int(cm.output_size(n, f, p, s)[1])


def transposed_output(n: int, f: int, p: int, s: int) -> int:
    """Output size of a transposed convolution, from an engine ConvTranspose2D layer."""
    m = Sequential([ConvTranspose2D(1, int(f), stride=int(s), padding=int(p))],
                   input_shape=(1, int(n), int(n)), name="lesson")
    return int(m.output_shape[1])


def _convlab(state: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "kernel" in state:
        x = grid_of(state.get("input", "worked"), "state.input")
        k = kernel_of(state["kernel"], "state.kernel")
        y = cm.conv2d(x, k, stride=state.get("stride", 1), padding=state.get("padding", 0),
                      flip=bool(state.get("flip", False)))
        out["conv_output"] = y.tolist()
        out["conv_output_row0"] = y[0].tolist()
    if "pool_mode" in state:
        x = grid_of(state.get("pool_input", "pool"), "state.pool_input")
        k = int(state.get("pool_k", 2))
        out["pool_output"] = cm.pool2d(x, k, int(state.get("pool_stride", k)), state["pool_mode"]).tolist()
    if "size" in state:
        n, f, p, s = (int(v) for v in state["size"])
        value, floor, fits, unused = cm.output_size(n, f, p, s)
        out["output_size"] = floor if fits else None
        out["fits"] = fits
    if "param" in state:
        in_ch, out_ch, k, stride, padding, hw = (int(v) for v in state["param"])
        summary = cm.conv_layer_summary(in_ch, out_ch, k, stride, padding, hw, hw)
        out["params"] = summary["params"]
        out["output_shape"] = list(summary["output_shape"])
    if "tconv_input" in state:
        out.update(_transposed(state))
    if "conn_n" in state:
        inputs, field = int(state["conn_n"]), int(state.get("conn_k", 3))
        for kind in cm.CONNECTIVITY_KINDS:
            out[f"conn_{kind}"] = cm.connectivity_count(inputs, field, kind)
    return out


def _transposed(state: dict[str, Any]) -> dict[str, Any]:
    """Lesson 6: the transposed convolution's output (engine), its size, the running sum
    after step ``tconv_step`` (1-based, written out) and the size of the mirrored convolution."""
    x = grid_of(state["tconv_input"], "state.tconv_input")
    k = grid_of(state.get("tconv_kernel", cm.TRANSPOSED_KERNEL.tolist()), "state.tconv_kernel")
    s, p = int(state.get("tconv_stride", 1)), int(state.get("tconv_padding", 0))
    y = cm.conv_transpose2d(x, k, stride=s, padding=p)
    steps = cm.transposed_steps(x, k, stride=s, padding=p)
    return {"tconv_output": y.tolist(), "tconv_size": cm.transposed_size(len(x), len(k), p, s),
            "tconv_running": steps[int(state.get("tconv_step", len(steps))) - 1].running.tolist(),
            "mirror_size": int(cm.output_size(len(y), len(k), p, s)[1])}


def _inspector(state: dict[str, Any]) -> dict[str, Any]:
    spec = read_spec(state.get("model", "lenet5"))
    if "input_shape" in state:
        spec["input_shape"] = list(state["input_shape"])
    model = model_from_spec(spec, seed=int(state.get("seed", 0)))
    shapes = [list(model.input_shape)] + [list(l.output_shape) for l in model.layers
                                          if l.type not in ("ReLU", "Tanh", "Sigmoid", "LeakyReLU", "Abs")]
    out = {"shapes": shapes, "param_count": int(model.param_count())}
    n = int(state.get("train_steps", 0))
    if n:
        out.update(trained_numbers(model, state, n))
    return out


def trained_numbers(model: Sequential, state: dict[str, Any], n: int) -> dict[str, Any]:
    """Test accuracy and loss after n steps, trained as the CNN inspector trains (SGD with
    momentum 0.9 or Adam, the inspector's seed 0): the numbers a lesson's caption states."""
    from nnviz.data import load_dataset
    from nnviz.train import Trainer
    ds = load_dataset(str(state.get("dataset", "shapes")))
    opt = str(state.get("optimizer", "sgd"))
    tr = Trainer(model, ds, loss="softmax_xent", optimizer=opt, lr=float(state.get("lr", 0.05)),
                 momentum=0.9, batch_size=min(int(state.get("batch_size", 64)), len(ds.y_train)),
                 seed=0)
    for _ in range(n):
        tr.step()
    loss, acc = tr.evaluate("test")
    return {"test_accuracy": round(float(acc), 4), "test_loss": round(float(loss), 3)}


_FORMULAS = {"dense_params": dense_params, "conv_params": cm.param_count, "conv_size": conv_size,
             "transposed_output": transposed_output}


def evaluate(step: LessonStep) -> dict[str, Any]:
    """The engine's values for the keys of ``step.expect`` (and any others it can compute)."""
    state = step.state
    if step.workspace == "convlab":
        got = _convlab(state)
    elif step.workspace == "inspector":
        got = _inspector(state)
    elif step.workspace == "backprop":
        from nnviz.backprop.net import LabError
        from nnviz.backprop.scene import evaluate_scene
        try:
            got = evaluate_scene(state)
        except LabError as e:
            raise LessonError(str(e)) from None
    elif step.workspace == "experiments":
        from nnviz.experiments import ExperimentError, evaluate_state
        try:
            got = evaluate_state(state)
        except ExperimentError as e:
            raise LessonError(f"state.{e}") from None
    else:
        got = {}
    for key, args in (state.get("formulas") or {}).items():
        fn = _FORMULAS.get(args[0]) if isinstance(args, list) and args and isinstance(args[0], str) else None
        if fn is None:
            raise LessonError(f"state.formulas.{key}: expected [name, numbers...] with name one of "
                              "dense_params, conv_params, conv_size, transposed_output")
        got[key] = fn(*args[1:])
    return got
