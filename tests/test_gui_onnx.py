"""The app opens ONNX files like its own (File > Open model goes through the format registry)."""
import numpy as np
import pytest

pytest.importorskip("onnx")


def test_open_onnx_model_in_the_app(window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from nnviz.engine import load_preset
    from nnviz.io import onnx_format as OF
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    model = load_preset("mlp2", seed=3)
    path = OF.write(model, tmp_path / "mlp2.onnx")
    assert window.open_model(str(path)), shown
    ws = window.current
    opened = ws.trainer.model if getattr(ws, "trainer", None) is not None else ws.run.model
    x = np.random.default_rng(0).standard_normal((5, 2)).astype(np.float32)
    assert np.array_equal(opened.predict_logits(x), model.predict_logits(x))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(path.read_bytes()[:100])
    assert not window.open_model(str(bad))
    assert shown and "bad.onnx" in shown[-1] and window.isVisible()
