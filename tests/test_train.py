"""Trainer behaviour: what depth does on spiral, determinism, divergence, bounded history."""
import numpy as np
import pytest

from nnviz.data import make_toy
from nnviz.engine import load_preset, model_from_spec
from nnviz.train import History, Trainer, TrainerError, TrainingDiverged


def _train(preset, data, epochs, seed=0, **kw):
    model = load_preset(preset, seed=seed, input_shape=data.input_shape,
                        num_classes=data.num_classes)
    hp = dict(optimizer="adam", lr=0.01, batch_size=16, seed=seed)
    hp.update(kw)
    tr = Trainer(model, data, **hp)
    tr.fit(epochs)
    return tr


@pytest.fixture(scope="module")
def spiral():
    return make_toy("spiral", n=1000, noise=0.1, seed=0, test_fraction=0.5)


def test_depth_matters_on_spiral(spiral):
    deep = _train("mlp2", spiral, 200, batch_size=32)
    linear = _train("mlp0", spiral, 200, batch_size=32)
    _, deep_acc = deep.evaluate("test")
    _, lin_acc = linear.evaluate("test")
    assert deep_acc >= 0.95, deep_acc
    assert lin_acc < 0.70, lin_acc           # near chance: a line cannot separate two spirals


def test_mlp0_boundary_is_a_straight_line(spiral):
    tr = _train("mlp0", spiral, 20)
    # with no hidden layer the decision function is affine: logit difference is linear in x
    g = np.random.default_rng(1).uniform(-6, 6, (50, 2)).astype(np.float32)
    z = tr.model.predict_logits(g)
    d = (z[:, 1] - z[:, 0]).astype(np.float64)
    A = np.c_[g, np.ones(len(g))].astype(np.float64)
    coef, res, *_ = np.linalg.lstsq(A, d, rcond=None)
    assert np.abs(A @ coef - d).max() < 1e-4 * max(1.0, np.abs(d).max())


def test_same_seed_bit_identical_and_different_seed_differs(spiral):
    a = _train("mlp2", spiral, 3, seed=7).model.parameters()
    b = _train("mlp2", spiral, 3, seed=7).model.parameters()
    c = _train("mlp2", spiral, 3, seed=8).model.parameters()
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_epoch_visits_every_sample_once(spiral):
    model = load_preset("mlp1", input_shape=(2,), num_classes=2)
    tr = Trainer(model, spiral, batch_size=64, seed=3, fused="off")   # batches drawn in Python
    seen = []
    orig = tr._next_batch

    def spy():
        x, y = orig()
        seen.append(x.copy())
        return x, y
    tr._next_batch = spy
    tr.run_epoch()
    xs = np.concatenate(seen)
    assert len(xs) == len(spiral.y_train)
    assert tr.steps == -(-len(spiral.y_train) // 64) and tr.epoch == 1
    key = lambda a: np.lexsort(a.T)
    np.testing.assert_array_equal(xs[key(xs)], spiral.x_train[key(spiral.x_train)])


def test_divergence_is_detected_and_last_good_weights_restored(spiral):
    # MSE's gradient grows with the error: at learning rate 10 every step overshoots further
    model = load_preset("mlp2", input_shape=(2,), num_classes=2)
    tr = Trainer(model, spiral, optimizer="sgd", lr=10, batch_size=16, loss="mse")
    before = model.state()
    with pytest.raises(TrainingDiverged) as info, np.errstate(over="ignore", invalid="ignore"):
        for _ in range(200):
            tr.step()
    assert "learning rate" in str(info.value) and "step" in str(info.value)
    step = tr.restore_last_good()
    restored = model.state()
    assert all(np.isfinite(v).all() for v in restored.values())
    if step == 0:
        assert all(np.array_equal(before[k], restored[k]) for k in before)


def test_bad_hyperparameters_are_named(spiral):
    model = load_preset("mlp1", input_shape=(2,), num_classes=2)
    with pytest.raises(TrainerError, match="batch size 100000 is larger than the 500"):
        Trainer(model, spiral, batch_size=100000)
    with pytest.raises(ValueError, match="learning rate must be a finite number > 0"):
        Trainer(model, spiral, lr=0)
    with pytest.raises(ValueError, match="learning rate"):
        Trainer(model, spiral, lr=-1)
    with pytest.raises(TrainerError, match=r"expects \(3,\)"):
        Trainer(model_from_spec({"input_shape": [3], "layers": [{"type": "Dense", "out_features": 2}]}),
                spiral)


def test_hyperparameter_change_applies_next_step(spiral):
    model = load_preset("mlp1", input_shape=(2,), num_classes=2)
    tr = Trainer(model, spiral, optimizer="sgd", lr=0.1, batch_size=8)
    tr.step()
    tr.lr = 0.5
    w = model.parameters()[0].copy()
    tr.step()
    g = tr.model.gradients()[0]
    np.testing.assert_allclose(model.parameters()[0], w - 0.5 * g, rtol=1e-6, atol=1e-7)


def test_history_stays_bounded_and_keeps_shape():
    h = History(max_points=100)
    for i in range(1, 10001):
        h.add_step(i, 1.0 / i, 0.5)
    assert len(h.steps["step"]) <= 100
    assert h.steps["step"][-1] <= 10000 and h.stride > 1
    assert np.all(np.diff(h.steps["loss"]) <= 0)      # still decreasing
    h2 = History.from_dict(h.to_dict())
    assert h2.steps == h.steps and h2.stride == h.stride


def test_init_schemes_have_their_variance():
    from nnviz.engine import Dense, Sequential
    fan_in = 400
    for init, var in (("he", 2 / fan_in), ("xavier", 2 / (fan_in + 300)), ("uniform", 1 / (3 * fan_in))):
        w = Sequential([Dense(300, init=init)], input_shape=(fan_in,), seed=0).parameters()[0]
        assert abs(w.var() / var - 1) < 0.02, (init, w.var(), var)
    w = Sequential([Dense(300, init="uniform")], input_shape=(fan_in,)).parameters()[0]
    assert abs(w).max() <= 1 / np.sqrt(fan_in)
