"""Open model: the input scaling an imported (Keras / ONNX) model expects, asked once."""
from PySide6.QtWidgets import QInputDialog

from nnviz.io.scaling import describe_scaling

#: (key for nnviz.io.scaling, what the user reads)
CHOICES = [
    ("keep", "as the file says: {current}"),
    ("mnist", "MNIST-style: (x − 0.1307) / 0.3081 of [0, 1] pixels"),
    ("minus1to1", "[−1, 1]: (x − 0.5) / 0.5"),
    ("unit", "[0, 1] pixels"),
    ("none", "none: nnviz's own standardised data"),
]


def scaling_choices(model):
    return [(k, text.format(current=describe_scaling(model))) for k, text in CHOICES]


def ask_input_scaling(parent, loaded):
    """'keep', a nnviz.io.scaling key, or None when cancelled."""
    items = scaling_choices(loaded.model)
    fmt = loaded.meta.get("source_format") or loaded.meta.get("format") or "an imported model"
    text, ok = QInputDialog.getItem(
        parent, "Input scaling",
        f"This is {fmt}: which inputs was it trained on?\nnviz feeds it its datasets "
        f"through this scaling (saved with the model).", [t for _, t in items], 0, False)
    if not ok:
        return None
    return next(k for k, t in items if t == text)
