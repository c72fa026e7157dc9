"""Typed snapshots: made in the worker (copies), shown by the views as given."""
import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from nnviz.gui.curves import CurvesWidget, _round_up, smooth
from nnviz.gui.playground.session import contour_segments, diverging
from nnviz.gui.snapshots import (
    HistoryCopier,
    HistoryCopy,
    InspectorSnapshot,
    PlaygroundSnapshot,
    RunSnapshot,
    Snapshot,
    Status,
)
from nnviz.gui.worker import TrainingController
from nnviz.train.history import History


# ---- worker-side pieces (no Qt) --------------------------------------------------------
def _full(h):
    return ({k: np.asarray(v, float) for k, v in h.steps.items()},
            {k: np.asarray(v, float) for k, v in h.epochs.items()})


def test_history_copier_is_incremental_and_exact():
    h, c = History(max_points=64), HistoryCopier()
    seen = []
    for i in range(1, 300):
        h.add_step(i, 1.0 / i, i % 7 / 7)
        if i % 23 == 0:
            h.add_epoch(epoch=i // 23, step=i, train_loss=1.0 / i, test_accuracy=0.5)
        if i % 5 == 0:                       # copies while it grows and halves (stride 1 -> 8)
            cp = c.copy(h)
            steps, epochs = _full(h)
            for k in steps:
                np.testing.assert_array_equal(cp.steps[k], steps[k])
            for k in epochs:
                np.testing.assert_array_equal(cp.epochs[k], epochs[k])
            seen.append(cp)
    assert h.stride > 1
    # an earlier copy is not changed by later ones (copies, not views of the buffers)
    assert len(seen[0].steps["step"]) == 5 and seen[0].steps["step"][-1] == 5
    assert seen[-1].last_test_accuracy() == 0.5
    fresh = History()                         # a new, shorter history: starts over
    fresh.add_step(1, 2.0, 0.0)
    np.testing.assert_array_equal(c.copy(fresh).steps["loss"], [2.0])


def test_contour_of_a_plane_is_a_straight_line():
    # f = x on a 5x5 grid over [-1, 1]^2: the 0.25 level is the line x = 0.25
    xs = np.linspace(-1, 1, 5)
    field = np.tile(xs, (5, 1))
    seg = contour_segments(field, 0.25, (-1, 1, -1, 1))
    assert seg.shape == (4, 2, 2)              # one segment per row of cells
    np.testing.assert_allclose(seg[:, :, 0], 0.25, atol=1e-6)
    ys = np.sort(seg[:, :, 1].ravel())
    np.testing.assert_allclose(ys, [-1, -0.5, -0.5, 0, 0, 0.5, 0.5, 1], atol=1e-6)
    assert contour_segments(field, 5.0, (-1, 1, -1, 1)).shape == (0, 2, 2)


def test_diverging_colours_ends_and_middle():
    rgb = diverging(np.array([[-2.0, 0.0, 2.0]]), 2.0)[0]
    np.testing.assert_array_equal(rgb[0], [245, 147, 34])     # orange: negative
    np.testing.assert_array_equal(rgb[2], [8, 119, 189])      # blue: positive
    assert rgb[1].min() >= 250                                # white: zero


def test_round_up():
    assert [_round_up(v) for v in (0.7, 1, 1.2, 3, 5, 5.01, 1234, 20000)] == \
        [1, 1, 2, 5, 5, 10, 2000, 20000]


# ---- the worker hands typed snapshots to the UI thread --------------------------------------
class _Counter:
    """A stand-in trainer: each step adds one."""

    def __init__(self):
        self.steps = 0
        self.epoch = 0

    def step(self):
        self.steps += 1
        if self.steps % 50 == 0:
            self.epoch += 1


class _Snap(Snapshot):
    def __init__(self, steps):
        super().__init__()
        self.made_at = steps


def test_worker_snapshots_carry_status(qtbot):
    c = TrainingController(max_fps=50)
    got = []
    c.snapshot.connect(got.append)
    tr = _Counter()
    c.set_trainer(tr, lambda t: _Snap(t.steps))
    try:
        c.start()
        qtbot.waitUntil(lambda: len(got) >= 3 and tr.steps > 100, timeout=20000)
        c.pause()
        qtbot.waitUntil(lambda: not got[-1].status.running, timeout=20000)
    finally:
        c.stop()
    for s in got:
        assert isinstance(s, _Snap) and isinstance(s.status, Status)
        assert s.status.steps == s.made_at           # status and contents from one moment
        assert s.status.epoch == s.made_at // 50
    assert any(s.status.running for s in got)
    last = got[-1]
    assert last.status.steps == tr.steps and last.status.steps_per_s == 0.0


# ---- views show what they are given -----------------------------------------------------------
def _history(n=40):
    steps = np.arange(1, n + 1, dtype=float)
    return HistoryCopy(steps={"step": steps, "loss": 1 / steps, "accuracy": steps / n},
                       epochs={"epoch": np.array([1.0, 2.0]), "step": np.array([20.0, 40.0]),
                               "train_loss": np.array([0.5, 0.3]),
                               "train_accuracy": np.array([0.6, 0.8]),
                               "test_loss": np.array([0.6, 0.4]),
                               "test_accuracy": np.array([0.55, 0.75])})


def test_curves_show_the_history(qtbot):
    w = CurvesWidget()
    qtbot.addWidget(w)
    h = _history(1234)
    w.update_history(h)
    x, y = w.curve_data("loss", "train")
    np.testing.assert_array_equal(x, h.steps["step"])
    np.testing.assert_allclose(y, smooth(h.steps["loss"]))
    np.testing.assert_array_equal(w.curve_data("accuracy", "test")[1], [0.55, 0.75])
    right = w.loss_plot.getViewBox().viewRange()[0][1]
    assert 2000 <= right <= 2000 * 1.03                       # a round end ahead of the data


def _run_snapshot(seed=0, label="2 hidden"):
    rng = np.random.default_rng(seed)
    return RunSnapshot(label=label, steps=321, epoch=4,
                       rgb=rng.integers(0, 255, (200, 200, 3), dtype=np.uint8),
                       probs=np.full((200, 200, 2), 0.5, np.float32),
                       contour=np.zeros((0, 2, 2), np.float32), history=_history(),
                       train_loss=0.123, train_acc=0.9, test_loss=0.456, test_acc=0.875,
                       neuron_rgb=[rng.integers(0, 255, (8, 48, 48, 3), dtype=np.uint8)] * 2,
                       output_rgb=rng.integers(0, 255, (48, 48, 3), dtype=np.uint8),
                       weights=[rng.normal(size=(8, 2)), rng.normal(size=(8, 8)),
                                rng.normal(size=(2, 8))])


def test_playground_shows_the_snapshot_it_was_given(qtbot):
    from nnviz.gui.playground.workspace import PlaygroundWorkspace
    ws = PlaygroundWorkspace()
    qtbot.addWidget(ws)
    try:
        rs = _run_snapshot()
        snap = PlaygroundSnapshot(run=rs, status=Status(steps=1234, epoch=5, steps_per_s=987.0,
                                                        elapsed=3.0, running=False))
        ws._on_snapshot(snap)
        np.testing.assert_array_equal(ws.boundary.image_array(), rs.rgb)
        first, second = ws.boundary.metrics          # the plot's title
        assert "0.456" in first and "87.5%" in first and "0.123" in second
        assert ws.step_label.text() == "Step 1,234" and ws.epoch_label.text() == "Epoch 5"
        assert ws.speed_label.text() == "paused"        # the snapshot says: not running
        ws._on_snapshot(PlaygroundSnapshot(run=rs, status=Status(steps=1300, steps_per_s=987.0,
                                                                 running=True)))
        assert ws.speed_label.text() == "987 steps/s"
        for i in range(8):
            np.testing.assert_array_equal(ws.network.node_rgb(0, i), rs.neuron_rgb[0][i])
        np.testing.assert_array_equal(ws.network.node_rgb(2, 0), rs.output_rgb)
        np.testing.assert_array_equal(ws.curves.curve_data("loss", "test")[1], [0.6, 0.4])
    finally:
        ws.shutdown()


def test_inspector_shows_the_snapshot_it_was_given(qtbot):
    from nnviz.gui.inspector.compute import SnapshotMaker, synthetic_dataset
    from nnviz.gui.inspector.workspace import InspectorWorkspace
    ds = synthetic_dataset(n_train=64, n_test=40)
    ws = InspectorWorkspace(dataset=ds)
    qtbot.addWidget(ws)
    try:
        maker = SnapshotMaker(ds, lambda: ws._inspect)
        snap = ws.controller.run_locked(lambda tr: maker(tr, with_confusion=True))
        assert isinstance(snap, InspectorSnapshot)
        snap.status = Status(steps=snap.step, epoch=snap.epoch, steps_per_s=42.0)
        snap.history = _history()
        ws._apply(snap)
        assert ws.status_label.text() == (f"epoch {snap.epoch:,} · step {snap.step:,} · paused · "
                                          "test accuracy 75.0% (all 40 test images, epoch 2)")
        snap.status.running = True
        ws._apply(snap)
        assert " · 42 steps/s · " in ws.status_label.text()
        np.testing.assert_array_equal(ws.confusion.matrix, snap.confusion.matrix)
        assert snap.confusion.matrix.sum() == 40
        np.testing.assert_allclose(ws.prediction.probs, snap.inspect.probs)
        name, w = ws.filters.current()
        assert name == snap.filters[0][0]
        np.testing.assert_array_equal(w, snap.filters[0][1])
        assert [n for n, _, _ in ws.features.layers()] == [n for n, _ in snap.inspect.maps]
        assert ws.gradflow.series_names() == list(snap.grad_norms)
    finally:
        ws.shutdown()
