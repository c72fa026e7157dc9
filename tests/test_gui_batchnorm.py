"""The CNN inspector's Batch norm view (pytest-qt, offscreen): statistics computed in the
worker's snapshots only while the view shows, updated as training runs, and training
unchanged by looking."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from nnviz.engine import model_from_spec, read_spec
from nnviz.explain.batchnorm import batchnorm_stats
from nnviz.gui.inspector import InspectorWorkspace
from nnviz.gui.inspector.batchnorm_view import NO_LAYER
from nnviz.gui.inspector.compute import synthetic_dataset
from nnviz.train import Trainer


@pytest.fixture(scope="module")
def grey_ds():
    return synthetic_dataset("shapes", (1, 28, 28), 10, n_train=128, n_test=40, seed=1)


@pytest.fixture
def ws(qtbot, grey_ds):
    w = InspectorWorkspace(dataset=grey_ds)
    qtbot.addWidget(w)
    w.resize(1000, 700)
    w.show()
    w.batch_spin.setValue(16)
    w.select_model("lenet5-bn")
    yield w
    assert w.shutdown()


def same_stats(a, b):
    keys = ("mean", "var", "running_mean", "running_var", "running_mean_next", "gamma", "beta")
    return a.layer == b.layer and all(np.array_equal(getattr(a, k), getattr(b, k)) for k in keys) \
        and np.array_equal(a.hist_in.counts, b.hist_in.counts)


def test_view_computes_only_while_shown_and_matches_the_engine(ws, qtbot):
    view = ws.bn_view
    assert view.layer_indices() == [1, 5, 9]
    assert ws.maker.bn_layer is None and view.stats is None        # another tab is shown
    ws.refresh_all()
    assert ws._last_snapshot.batchnorm is None
    ws.live_tabs.setCurrentWidget(view)
    assert ws.maker.bn_layer == 1
    tr = ws.trainer
    want = batchnorm_stats(tr.model, tr.next_batch()[0], 1)
    assert view.stats is not None and same_stats(view.stats, want)
    assert view.stats.batch == 16 and view.stats.per_channel == 16 * 28 * 28
    ws.train_sync(4)                                                  # the snapshot after it
    assert ws._last_snapshot.batchnorm is view.stats
    got = view.stats
    assert same_stats(got, batchnorm_stats(tr.model, tr.next_batch()[0], 1))
    assert np.array_equal(got.running_mean, tr.model.layers[1].buffers["running_mean"])
    assert not np.array_equal(got.running_mean, want.running_mean)
    # the channel's numbers in words, and another layer
    view.channel.setValue(2)
    assert "this batch (16×28×28 = 12,544 values): mean" in view.info.text()
    assert view.hist_pi.titleLabel.text == "Channel 2"
    assert "channel 2 of 6" in view.info.toolTip() and "as in PyTorch" in view.info.toolTip()
    assert view.select_layer(5) and view.stats.layer == 5 and view.stats.channels == 16
    assert ws.maker.bn_layer == 5
    ws.live_tabs.setCurrentIndex(0)
    assert ws.maker.bn_layer is None
    ws.train_sync(1)
    assert ws._last_snapshot.batchnorm is None


def test_looking_does_not_change_training(ws, grey_ds):
    ws.live_tabs.setCurrentWidget(ws.bn_view)
    for i in (5, 9, 1):
        ws.bn_view.select_layer(i)
    ws.train_sync(6)
    spec = read_spec("lenet5-bn")
    spec.pop("description")
    ref = Trainer(model_from_spec(spec, seed=0), grey_ds, loss="softmax_xent", optimizer="sgd",
                  lr=ws.lr_spin.value(), momentum=0.9, batch_size=16, seed=0)
    for _ in range(6):
        ref.step()
    got, want = ws.trainer.model.state(), ref.model.state()
    assert all(np.array_equal(got[k], want[k]) for k in want)


def test_view_follows_live_training(ws, qtbot):
    view = ws.bn_view
    ws.live_tabs.setCurrentWidget(view)
    first = view.stats.running_mean.copy()
    ws.start_pause()
    try:
        qtbot.waitUntil(lambda: ws.trainer.steps >= 3 and view.stats is not None
                        and not np.array_equal(view.stats.running_mean, first), timeout=60000)
    finally:
        ws.controller.pause()
    assert ws.maker.bn_layer == 1
    tr = ws.trainer                  # paused: the view shows the step it stopped at
    qtbot.waitUntil(lambda: same_stats(view.stats, batchnorm_stats(tr.model, tr.next_batch()[0], 1)),
                    timeout=10000)


def test_live_snapshots_are_throttled_but_a_single_step_is_not(ws):
    maker, tr = ws.maker, ws.trainer
    first = maker.batchnorm(tr, 1, min_interval=100)
    assert maker.batchnorm(tr, 1, min_interval=100) is first
    tr.step()
    after_one = maker.batchnorm(tr, 1, min_interval=100)          # a Step: computed
    assert after_one is not first and same_stats(after_one[0],
                                                 batchnorm_stats(tr.model, tr.next_batch()[0], 1))
    tr.step()
    tr.step()
    assert maker.batchnorm(tr, 1, min_interval=100) is after_one  # training runs: kept a while
    assert maker.batchnorm(tr, 1, min_interval=0) is not after_one
    assert maker.batchnorm(tr, 5, min_interval=100)[0].layer == 5  # another layer: at once


def test_a_model_without_batchnorm_says_so(ws):
    ws.live_tabs.setCurrentWidget(ws.bn_view)
    ws.select_model("lenet5")
    assert ws.bn_view.layer_indices() == [] and not ws.bn_view.layer.isEnabled()
    assert ws.maker.bn_layer is None and ws.bn_view.info.text() == NO_LAYER
    ws.refresh_all()
    assert ws._last_snapshot.batchnorm is None


def test_batchnorm_after_a_dense_layer_and_a_batch_of_one(ws, qtbot):
    ws.set_spec({"input_shape": [1, 28, 28], "layers": [
        {"type": "Flatten"}, {"type": "Dense", "out_features": 8}, {"type": "BatchNorm"},
        {"type": "ReLU"}, {"type": "Dense", "out_features": 10}]})
    ws.live_tabs.setCurrentWidget(ws.bn_view)
    view = ws.bn_view
    assert view.layer_indices() == [2] and view.stats.channels == 8 and view.stats.per_channel == 16
    assert "this batch (16 values): mean" in view.info.text()
    ws.batch_spin.setValue(1)             # one value per feature: nothing to normalise with
    qtbot.waitUntil(lambda: ws.trainer.batch_size == 1, timeout=5000)
    ws._on_bn_wanted()
    assert view.stats is None and "needs more than one value per channel" in view.info.text()


def test_clicking_a_channel_bar_shows_that_channel(ws, qtbot):
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtTest import QTest
    ws.live_tabs.setCurrentWidget(ws.bn_view)
    view = ws.bn_view
    view.select_layer(5)                               # 16 channels
    qtbot.wait(50)
    pw = view.var_plot
    at = pw.mapFromScene(pw.getPlotItem().vb.mapViewToScene(QPointF(11.1, 0.01)))
    QTest.mouseClick(pw.viewport(), Qt.LeftButton, pos=at)
    qtbot.waitUntil(lambda: view.channel.value() == 11, timeout=3000)
    assert view.hist_pi.titleLabel.text == "Channel 11"
    assert view.bars[("variance", "selected")].getRegion() == (10.5, 11.5)
