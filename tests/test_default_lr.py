"""A data set's own default learning rate: used by `nnviz train` and the inspector when the
user gives none, never over one the user gave."""
import pytest

import nnviz.train
from nnviz.cli import main
from nnviz.data import default_lr, load_dataset


def test_default_lr_per_set():
    assert default_lr("color-shapes", 0.05) == 0.02
    assert default_lr("shapes", 0.05) == 0.05
    assert default_lr(None, 0.01) == 0.01


@pytest.mark.parametrize("argv, lr", [([], 0.02), (["--lr", "0.003"], 0.003)])
def test_cli_trains_color_shapes_at_its_default_lr(monkeypatch, capsys, argv, lr):
    seen = []

    class Recording(nnviz.train.Trainer):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            seen.append(self.lr)
    monkeypatch.setattr(nnviz.train, "Trainer", Recording)
    rc = main(["train", "--data", "color-shapes", "--model", "mlp0", "--limit", "64",
               "--epochs", "1", "--json", *argv])
    capsys.readouterr()
    assert rc == 0 and seen == [pytest.approx(lr)]


def test_inspector_takes_the_sets_lr_unless_the_user_chose_one(qtbot):
    pytest.importorskip("pytestqt")
    from nnviz.gui.inspector import InspectorWorkspace
    shapes, colour = load_dataset("shapes").subset(n_train=64), load_dataset("color-shapes")
    ws = InspectorWorkspace(dataset=shapes)
    qtbot.addWidget(ws)
    try:
        assert ws.lr_spin.value() == 0.05
        ws.set_dataset(colour.subset(n_train=64))
        assert ws.lr_spin.value() == 0.02
        assert ws.controller.run_locked(lambda tr: tr.lr) == pytest.approx(0.02)
        ws.set_dataset(shapes)
        assert ws.lr_spin.value() == 0.05
        ws.lr_spin.setValue(0.07)                 # the user's choice stays
        ws.set_dataset(colour.subset(n_train=64))
        assert ws.lr_spin.value() == 0.07
    finally:
        ws.shutdown()
