"""Dropout in the Playground: inverted masks drawn at each training step, evaluation without
them, the greyed units equal to the last step's mask, and the with / without comparison."""
import dataclasses
import types

import numpy as np
import pytest

from nnviz.engine import Dropout, Sequential, model_from_spec
from nnviz.gui.playground.dropout import playground_layout, with_dropout
from nnviz.gui.playground.session import GroupTrainer, Run, RunSnapshotter, Settings, dropout_runs, fast_proba
from nnviz.gui.playground.toydata import make_toy


def test_mask_statistics_inverted_scaling():
    p = 0.3
    model = Sequential([Dropout(p)], (1000,), seed=0)
    x = np.ones((50, 1000), np.float32)
    y = model.forward(x, train=True)
    # kept units are scaled by 1 / (1 - p), so the expected output equals the input
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / (1 - p)], rtol=1e-6)
    dropped = float((y == 0).mean())
    assert abs(dropped - p) < 4 * np.sqrt(p * (1 - p) / y.size)       # 4 sigma of a binomial
    assert abs(float(y.mean()) - 1.0) < 0.02
    np.testing.assert_array_equal(model.forward(x, train=False), x)   # evaluation: no dropout


def test_scaling_is_pytorchs():
    torch = pytest.importorskip("torch")
    p = 0.3
    t = torch.nn.functional.dropout(torch.ones(20000), p, training=True).numpy()
    ours = Sequential([Dropout(p)], (20000,), seed=0).forward(np.ones((1, 20000), np.float32), train=True)
    np.testing.assert_allclose(np.unique(ours), np.unique(t), rtol=1e-6)
    assert torch.nn.functional.dropout(torch.ones(5), p, training=False).tolist() == [1.0] * 5


def test_evaluating_a_dropout_mlp_takes_the_fused_forward():
    from nnviz.engine import fused_mlp
    spec = with_dropout({"input_shape": [2], "layers": [{"type": "Dense", "out_features": 8}, {"type": "ReLU"},
                                                        {"type": "Dense", "out_features": 2}]}, 0.5)
    model = model_from_spec(spec, seed=0)
    x = np.random.default_rng(0).standard_normal((fused_mlp.FORWARD_MIN_ROWS + 5, 2)).astype(np.float32)
    big = model.forward(x)                          # one kernel for the whole batch
    if "fused_mlp" in model.B.capabilities:
        assert isinstance(model.__dict__.get("_mlp_fwd"), fused_mlp._ForwardPlan)
    layers = np.concatenate([model.forward(x[i:i + 1000]) for i in range(0, len(x), 1000)])   # layer by layer
    np.testing.assert_allclose(big, layers, rtol=1e-5, atol=1e-6)


def _settings(**kw):
    base = dict(dataset="gauss", noise=0.5, n_points=100, hidden=[16, 16], activation="ReLU", lr=0.01)
    base.update(kw)
    return Settings(**base)


def _raw(s):
    return make_toy(s.dataset, n=s.n_points, noise=s.noise, seed=s.seed, test_fraction=s.test_fraction,
                    classes=2)


def test_spec_places_dropout_after_each_hidden_layer():
    spec = {"input_shape": [2], "layers": [{"type": "Dense"}, {"type": "ReLU"}, {"type": "Dense"},
                                           {"type": "Dense"}]}
    assert [c["type"] for c in with_dropout(spec, 0.5)["layers"]] == [
        "Dense", "ReLU", "Dropout", "Dense", "Dropout", "Dense"]
    assert with_dropout(spec, 0.0) is spec
    assert playground_layout(["Dense", "Tanh", "Dropout", "Dense"], [0.2])
    assert not playground_layout(["Dense", "Dropout", "Tanh", "Dense"], [0.2])
    assert not playground_layout(["Dense", "Tanh", "Dropout", "Dense", "Tanh", "Dropout", "Dense"], [0.2, 0.3])


def test_dropout_trains_on_the_layer_path_and_evaluates_without_dropout():
    s = _settings(dropout=0.5)
    raw = _raw(s)
    run = Run(raw, s, s.hidden, seed=0, res=8)
    plain = Run(raw, dataclasses.replace(s, dropout=0.0), s.hidden, seed=0, res=8)
    assert [l.type for l in run.model.layers].count("Dropout") == 2
    # one starting point: the Dense layers start from the same weights with and without dropout
    for a, b in zip(run.model.parameters(), plain.model.parameters()):
        np.testing.assert_array_equal(a, b)
    for _ in range(30):
        run.trainer.step()
        plain.trainer.step()
    assert not run.trainer.uses_fused_step          # the fused kernel knows no dropout
    if "fused_mlp" in plain.model.B.capabilities:
        assert plain.trainer.uses_fused_step        # without dropout the Playground keeps it
    # evaluation = the same weights in a net without Dropout layers, not scaled, not random
    twin = model_from_spec({**run.spec, "layers": [c for c in run.spec["layers"] if c["type"] != "Dropout"]})
    dense = [l for l in run.model.layers if l.type == "Dense"]
    for dst, src in zip([l for l in twin.layers if l.type == "Dense"], dense):
        for k in src.params:
            dst.params[k] = src.params[k].copy()
    x = run.data.x_test
    np.testing.assert_allclose(fast_proba(run.model, x), fast_proba(twin, x), rtol=1e-6, atol=1e-7)
    assert run.trainer.evaluate("test") == run.trainer.evaluate("test")
    snap = RunSnapshotter(run, {})(neurons=False)
    np.testing.assert_allclose(snap.probs.reshape(-1, 2), fast_proba(twin, run.grid), rtol=1e-6, atol=1e-7)


def _masks_of_next_step(run):
    """The masks the next training step will draw: the model's generator, copied and run."""
    rng = np.random.default_rng()
    rng.bit_generator.state = run.model.rng.bit_generator.state
    tr = run.trainer
    b = min(tr.batch_size, len(tr.dataset.y_train) - tr.pos)
    return [rng.random((b, l.output_shape[0]), dtype=np.float32) >= l.p
            for l in run.model.layers if l.type == "Dropout"]


def test_snapshot_dropped_units_are_the_last_steps_mask():
    s = _settings(dropout=0.5, batch_size=8)
    run = Run(_raw(s), s, s.hidden, seed=0, res=8)
    snapper = RunSnapshotter(run, {})
    assert snapper(neurons=False).dropped == [None, None]       # no step yet: nothing greyed
    fractions = []
    for i in range(120):
        keep = _masks_of_next_step(run)
        ep = run.trainer.epoch
        run.trainer.step()
        if run.trainer.epoch != ep:
            run.trainer.record_epoch()          # an evaluation between step and snapshot
        if i % 3 == 0:
            snap = snapper(neurons=False)
            assert [d.tolist() for d in snap.dropped] == [(~k[0]).tolist() for k in keep]
            fractions.append(np.mean(np.concatenate(snap.dropped)))
    # 40 steps x 32 units greyed: the share is the rate (4 sigma of a binomial)
    assert abs(np.mean(fractions) - 0.5) < 4 * np.sqrt(0.25 / (40 * 32))


def test_dropout_runs_train_the_same_net_with_and_without_dropout():
    s = _settings(dropout=0.0, batch_size=16)
    runs = dropout_runs(_raw(s), s, 8)
    assert [r.label for r in runs] == ["no dropout", "dropout 0.5"]     # rate 0 in the settings: 0.5
    assert [r.dropout for r in runs] == [0.0, 0.5]
    for a, b in zip(runs[0].model.parameters(), runs[1].model.parameters()):
        np.testing.assert_array_equal(a, b)
    group = GroupTrainer(runs)
    for _ in range(20):
        group.step()
    assert [r.trainer.steps for r in runs] == [20, 20]
    assert not all(np.array_equal(a, b) for a, b in zip(runs[0].model.parameters(), runs[1].model.parameters()))


# ---- the Playground ---------------------------------------------------------------------------
def _playground(window):
    from nnviz.gui.playground.workspace import PlaygroundWorkspace
    pg = next(w for w in window.workspaces if isinstance(w, PlaygroundWorkspace))
    window.tabs.setCurrentWidget(pg)
    return pg


def test_network_greys_the_units_dropped_in_the_last_step(qtbot, window):
    pg = _playground(window)
    pg.dropout_combo.setCurrentText("0.5")
    assert pg.run.dropout == 0.5 and pg.settings.dropout == 0.5
    assert pg.dropout_hint.isVisibleTo(pg)
    for n in (1, 2, 3):
        pg.step()
        qtbot.waitUntil(lambda n=n: pg.last_snapshot is not None and pg.last_snapshot.steps == n,
                        timeout=10000)
        layers = [l for l in pg.run.model.layers if l.type == "Dropout"]
        want = [(np.asarray(l.last_mask)[0] == 0).tolist() for l in layers]
        assert any(map(any, want))
        qtbot.waitUntil(lambda want=want: pg.network.dropped_units() == want, timeout=3000)
        # the thinned net: a weight between the hidden layers is faint when either end is dropped
        faint = np.array([[line.opacity() < 1 for line in row] for row in pg.network.lines[1]])
        d1, d2 = np.array(want[0]), np.array(want[1])
        np.testing.assert_array_equal(faint, d2[:, None] | d1[None, :])
    pg.dropout_combo.setCurrentText("0")
    assert pg.run.dropout == 0 and not pg.dropout_hint.isVisibleTo(pg)
    pg.step()
    qtbot.waitUntil(lambda: pg.last_snapshot is not None and pg.last_snapshot.steps == 1, timeout=10000)
    qtbot.waitUntil(lambda: pg.network.dropped_units() == [[False] * 8] * 2, timeout=3000)


def test_compare_dropout_trains_both_and_goes_back(qtbot, window):
    pg = _playground(window)
    pg.dropout_button.click()
    assert pg.in_compare and pg.compare_variant == "dropout"
    assert pg.settings.dataset == "gauss" and pg.settings.hidden == [8, 8]    # the overfitting set-up
    assert not pg.compare_plots[2].isVisibleTo(pg) and not pg.dropout_button.isVisibleTo(pg)
    assert [bp.title for bp in pg.compare_plots[:2]] == ["no dropout", "dropout 0.5"]
    assert "Compare dropout" in pg.compare_info.text()
    qtbot.waitUntil(lambda: pg.group.steps > 40, timeout=15000)
    qtbot.waitUntil(lambda: {"no dropout", "dropout 0.5"} <= set(pg.compare_curves.curve_names("loss")),
                    timeout=5000)
    pg.pause()
    qtbot.waitUntil(lambda: not pg.compare.running, timeout=3000)
    a, b = pg.group.runs
    # paused between two group steps: both nets have made the same number of steps
    qtbot.waitUntil(lambda: a.trainer.steps == b.trainer.steps > 40, timeout=3000)
    assert [l.type for l in b.model.layers].count("Dropout") == 2 and a.dropout == 0
    pg.leave_compare()
    assert pg.dropout_button.isVisibleTo(pg)
    pg.start_compare(variant="depths")
    assert pg.compare_plots[2].isVisibleTo(pg) and pg.compare_plots[0].title == "0 hidden layers"
    pg.pause()


def test_a_saved_dropout_net_reopens_in_the_playground(window):
    pg = _playground(window)
    pg.dropout_combo.setCurrentText("0.3")
    model = pg.run.model
    pg.dropout_combo.setCurrentText("0")
    assert pg.open_loaded(types.SimpleNamespace(model=model, meta={}))
    assert pg.settings.dropout == pytest.approx(0.3) and pg.dropout_combo.currentText() == "0.3"
    assert pg.run.model is model


def test_compare_dropout_page_and_the_dropout_hint_fit_1024x768(window, qtbot):
    from test_gui_fit import SIZE, problems  # the same checks as every workspace's

    from nnviz.gui.style import apply_style
    apply_style()
    window.resize(*SIZE)
    pg = _playground(window)
    pg.dropout_combo.setCurrentText("0.5")
    pg.step()
    qtbot.waitUntil(lambda: pg.last_snapshot is not None and pg.last_snapshot.steps == 1, timeout=10000)
    qtbot.wait(200)
    assert (window.width(), window.height()) == SIZE and problems(window) == []
    pg.start_compare(variant="dropout")
    pg.pause()
    qtbot.wait(300)
    assert (window.width(), window.height()) == SIZE and problems(window) == []
