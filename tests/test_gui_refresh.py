"""One refresh of the live views: spread over event-loop turns, curves drawn at about one
point per pixel, the boundary image is the model's prediction on the grid."""
import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from nnviz.gui.snapshots import PlaygroundSnapshot, Snapshot, Status
from nnviz.gui.worker import TrainingController


class _Idle:
    """A trainer that is never stepped (the worker thread just waits)."""
    steps = 0
    epoch = 0

    def step(self):
        self.steps += 1


def _controller(qtbot):
    c = TrainingController()
    c.set_trainer(_Idle(), lambda tr: Snapshot())
    qtbot.waitUntil(lambda: c.thread.isRunning(), timeout=5000)
    return c


def test_deferred_parts_run_after_the_slot_in_order_and_release_the_worker_last(qtbot):
    c = _controller(qtbot)
    w = c.worker
    log = []

    def slot(snap):
        log.append("slot")
        c.defer(lambda: log.append(("a", w._inflight)))
        c.defer(lambda: log.append(("b", w._inflight)))
        log.append("slot done")
    c.snapshot.connect(slot)
    try:
        w._inflight = 1                        # as the worker does when it emits
        c._deliver(w, Snapshot())
        assert log == ["slot", "slot done"]    # the parts wait for later turns
        assert w._inflight == 1                # and the worker waits for them
        qtbot.waitUntil(lambda: w._inflight == 0, timeout=5000)
        # each part ran once, in order, while the worker still waited
        assert log == ["slot", "slot done", ("a", 1), ("b", 1)]
    finally:
        c.stop()


def test_a_failing_part_still_releases_the_worker(qtbot):
    c = _controller(qtbot)
    w = c.worker
    ran = []

    def boom():
        raise RuntimeError("view failed")
    c.snapshot.connect(lambda snap: (c.defer(boom), c.defer(lambda: ran.append(1))))
    try:
        w._inflight = 1
        c._deliver(w, Snapshot())
        qtbot.waitUntil(lambda: w._inflight == 0, timeout=5000)
        assert ran == []                       # the rest of that refresh is dropped
    finally:
        c.stop()


def test_defer_outside_a_delivery_runs_at_once():
    c = TrainingController()
    got = []
    c.defer(lambda: got.append(1))
    assert got == [1]


def test_playground_draws_the_boundary_first_then_neurons_and_curves(qtbot):
    from test_gui_snapshots import _run_snapshot

    from nnviz.gui.playground.workspace import PlaygroundWorkspace
    ws = PlaygroundWorkspace()
    qtbot.addWidget(ws)
    try:
        qtbot.waitUntil(lambda: ws.single.thread is not None and ws.single.thread.isRunning(),
                        timeout=5000)
        qtbot.waitUntil(lambda: ws.single.worker._inflight == 0, timeout=10000)
        rs = _run_snapshot(seed=3)
        w = ws.single.worker
        # the worker's own snapshots (a late start-up refresh on a busy machine) must not
        # overwrite the injected one: disconnect them, and count the release ourselves
        w.snapshot.disconnect()
        qtbot.wait(100)                        # ... those already posted arrive now
        qtbot.waitUntil(lambda: not ws.single._batches, timeout=5000)
        released = []
        w.consumed = lambda: released.append(1)
        ws._slow_t = float("-inf")     # a start-up snapshot just before must not throttle this one
        ws.single._deliver(w, PlaygroundSnapshot(run=rs, status=Status(steps=7, running=True)))
        np.testing.assert_array_equal(ws.boundary.image_array(), rs.rgb)
        assert ws.step_label.text() == "Step 7"
        assert not np.array_equal(ws.network.node_rgb(0, 0), rs.neuron_rgb[0][0])   # not yet
        assert not released                    # the worker waits for the last part
        qtbot.waitUntil(lambda: released == [1], timeout=5000)
        np.testing.assert_array_equal(ws.network.node_rgb(0, 0), rs.neuron_rgb[0][0])
        np.testing.assert_array_equal(ws.curves.curve_data("loss", "test")[1], [0.6, 0.4])
    finally:
        ws.shutdown()


def _shown(qtbot, widget, w, h):
    qtbot.addWidget(widget)
    widget.resize(w, h)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def test_curves_draw_about_one_point_per_pixel_and_keep_the_peaks(qtbot):
    from nnviz.gui.curves import CurvesWidget
    w = _shown(qtbot, CurvesWidget(), 800, 300)
    n = 20000
    x = np.arange(1, n + 1, dtype=float)
    y = np.linspace(1.0, 0.1, n)
    y[12345] = 3.0                            # one spike: peak downsampling keeps it
    item = w.set_curve("loss", "train", x, y)
    qtbot.wait(50)
    xd, yd = item.curve.getData()             # what is drawn
    width = w.loss_plot.getViewBox().width()
    assert 50 < len(xd) <= width + 4            # "peak" mode: 2 points a bin
    assert yd.max() == 3.0 and yd.min() < 0.11    # (a last partial bin is left out)
    np.testing.assert_array_equal(w.curve_data("loss", "train")[0], x)   # all data kept


def test_boundary_image_is_the_models_prediction_on_the_grid(qtbot):
    from PySide6.QtCore import QPointF

    from nnviz.gui.playground.boundary import BoundaryPlot
    from nnviz.gui.playground.session import Run, RunSnapshotter, Settings, probability_rgb
    from nnviz.gui.playground.toydata import make_toy
    s = Settings(hidden=[5], activation="Tanh", n_points=100)
    raw = make_toy("circle", n=100, noise=0.1, seed=1, test_fraction=0.5, classes=2)
    run = Run(raw, s, s.hidden, seed=2, res=40)
    for _ in range(30):
        run.trainer.step()
    snap = RunSnapshotter(run, {})(neurons=False)
    # the oracle: the dense-tanh-dense net written out in numpy, on the grid's plane points
    x0, x1, y0, y1 = run.extent
    gx, gy = np.meshgrid(np.linspace(x0, x1, 40), np.linspace(y0, y1, 40))   # row = y
    pts = np.stack([gx.ravel(), gy.ravel()], 1)
    p = {name: np.asarray(run.model.B.to_host(v), float) for name, v in run.model.named_parameters()}
    (w1, b1), (w2, b2) = [(p[k], p[k.replace("weight", "bias")])
                          for k in sorted(k for k in p if k.endswith("weight"))]
    logits = np.tanh(pts @ w1.T + b1) @ w2.T + b2
    e = np.exp(logits - logits.max(1, keepdims=True))
    oracle = (e / e.sum(1, keepdims=True)).reshape(40, 40, 2)
    np.testing.assert_allclose(snap.probs, oracle, atol=2e-6)
    np.testing.assert_array_equal(snap.rgb, probability_rgb(oracle.astype(np.float32)))

    bp = BoundaryPlot()
    qtbot.addWidget(bp)
    bp.set_points(raw, run.extent)
    bp.set_snapshot(snap)
    img = bp.image.image                      # (x, y, 3): pyqtgraph's column-major image
    np.testing.assert_array_equal(img.transpose(1, 0, 2), snap.rgb)
    # each image pixel sits on its grid cell: pixel (i, j) covers plane point (x_i, y_j)
    for i, j in [(0, 0), (39, 0), (7, 31), (39, 39)]:
        c = bp.image.mapToParent(QPointF(i + 0.5, j + 0.5))
        gxij, gyij = gx[j, i], gy[j, i]
        cell = (x1 - x0) / 40
        assert abs(c.x() - gxij) <= cell and abs(c.y() - gyij) <= cell


def test_network_lines_follow_the_weights_in_shared_quantised_pens(qtbot):
    from nnviz.gui.playground.network import NetworkView
    from nnviz.gui.style import CLASS_COLORS, px
    nv = NetworkView()
    qtbot.addWidget(nv)
    nv.setup(["x1", "x2"], [3], np.zeros((2, 8, 8), np.float32))
    w1 = np.array([[2.0, -1.0], [0.0, 0.5], [-2.0, 1.0]])        # (3 hidden, 2 inputs)
    w2 = np.array([[1.0, 0.0, -1.0], [0.0, 0.0, 1.0]])            # (2 classes, 3 hidden)
    nv.set_weights([w1, w2])
    lines = nv.lines[0]

    def look(line):
        p = line.pen()
        return p.widthF(), p.color().alpha(), p.color().getRgb()[:3]
    assert look(lines[0, 0]) == (px(6.5), 255, CLASS_COLORS[1])   # the largest |w|: blue
    assert look(lines[2, 0]) == (px(6.5), 255, CLASS_COLORS[0])   # negative: orange
    assert look(lines[1, 0])[:2] == (px(0.5), 60)                 # zero: thinnest, faint
    assert look(lines[0, 1]) == (px(0.5 + 3.0), int(60 + 97.5), CLASS_COLORS[0])   # -1
    # the output column shows class 1 minus class 0: [-1, 0, 2]
    assert [look(l)[2] for l in nv.lines[1][0]] == [CLASS_COLORS[0], CLASS_COLORS[1],
                                                  CLASS_COLORS[1]]
    before = lines[0, 1].pen()
    nv.set_weights([w1 * [[1, 1.001], [1, 1], [1, 1]], w2])       # within one level: kept
    assert lines[0, 1].pen() == before
    nv.set_weights([w1 * [[1, -1], [1, 1], [1, 1]], w2])          # the sign flips: blue
    assert look(lines[0, 1])[2] == CLASS_COLORS[1]


def test_network_thumbnails_are_drawn_one_to_one(qtbot):
    from nnviz.gui.playground.network import NetworkView
    nv = _shown(qtbot, NetworkView(), 500, 300)
    img = np.zeros((2, 8, 8), np.float32)
    img[0, :, 4:] = 1.0                                          # right half positive
    nv.setup(["x1", "x2"], [2], img)
    node = nv.nodes[0][0]
    pm = node.pixmap().toImage()
    assert node.scale() == 1.0 and pm.width() == pm.height() == nv.thumb
    assert node.pos().x() == int(node.pos().x())                 # on whole pixels
    # left half: the colour of zero (white), right half: of the largest value (blue)
    n, rgb = pm.width(), nv.node_rgb(-1, 0)
    assert rgb[0, 0].min() >= 250 and tuple(rgb[0, -1]) == (8, 119, 189)
    assert pm.pixelColor(1, n // 2).getRgb()[:3] == tuple(int(v) for v in rgb[0, 0])
    assert pm.pixelColor(n - 2, n // 2).getRgb()[:3] == tuple(int(v) for v in rgb[0, -1])
    nv.resize(700, 500)                                          # a new size: new pixmaps
    qtbot.wait(50)
    assert node.pixmap().width() == nv.thumb and node.scale() == 1.0


def test_boundary_title_numbers_follow_at_a_readable_pace_and_exactly_at_the_end(qtbot):
    from test_gui_snapshots import _run_snapshot

    from nnviz.gui.playground.boundary import BoundaryPlot
    bp = BoundaryPlot()
    qtbot.addWidget(bp)
    a, b = _run_snapshot(seed=1), _run_snapshot(seed=2)
    b.test_loss, b.test_acc = 0.25, 0.5
    bp.set_snapshot(a, final=False)
    assert "0.456" in bp.metrics[0]
    bp.set_snapshot(b, final=False)               # the image follows at once, the title not
    np.testing.assert_array_equal(bp.image_array(), b.rgb)
    assert "0.456" in bp.metrics[0]
    bp.set_snapshot(b, final=True)                # paused: the exact numbers
    assert "0.250" in bp.metrics[0] and "50.0%" in bp.metrics[0]
    bp._title_t -= BoundaryPlot.TITLE_EVERY_S      # a quarter of a second later
    bp.set_snapshot(a, final=False)
    assert "0.456" in bp.metrics[0]
