"""Long runs keep their history bounded in memory: the step series decimates itself."""
import numpy as np
import pytest

from nnviz.train import History


@pytest.mark.parametrize("max_points", [20000, 1000, 7])
def test_200k_steps_stay_within_max_points(max_points):
    h = History(max_points=max_points)
    n = 200_000
    losses = np.linspace(2.0, 0.1, n)
    peak = 0
    for i in range(n):
        h.add_step(i + 1, float(losses[i]), 0.5)
        if i % 997 == 0:
            peak = max(peak, len(h.steps["step"]))
    lens = {k: len(v) for k, v in h.steps.items()}
    assert len(set(lens.values())) == 1, lens           # the series stay aligned
    assert max(peak, lens["step"]) <= max_points, (peak, lens)
    assert lens["step"] >= max_points // 4              # still a useful curve
    steps = np.asarray(h.steps["step"])
    assert np.all(np.diff(steps) > 0) and steps[-1] > n - 2 * h.stride
    # the curve keeps its shape: decimated points average their steps
    loss = np.asarray(h.steps["loss"])
    assert loss[-1] < loss[0] and np.all(np.diff(loss) <= 1e-12)
    if max_points >= 1000:
        assert loss[0] > 1.9 and loss[-1] < 0.2


def test_history_round_trip_after_decimation():
    h = History(max_points=100)
    for i in range(10_000):
        h.add_step(i + 1, 1.0 / (i + 1), 0.0)
    h2 = History.from_dict(h.to_dict())
    assert h2.stride == h.stride and h2.steps == h.steps
    for i in range(10_000, 20_000):
        h2.add_step(i + 1, 0.0, 1.0)
    assert len(h2.steps["step"]) <= 100


def test_trainer_history_bounded_in_a_long_run():
    from nnviz.data.dataset import Dataset
    from nnviz.engine import model_from_spec
    from nnviz.train import Trainer
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    data = Dataset(name="d", x_train=x[:32], y_train=y[:32], x_test=x[32:], y_test=y[32:],
                   class_names=["a", "b"])
    tr = Trainer(model_from_spec({"input_shape": [2], "layers": [
        {"type": "Dense", "out_features": 4}, {"type": "Tanh"},
        {"type": "Dense", "out_features": 2}]}), data, batch_size=32, lr=0.1)
    tr.history = History(max_points=64)
    for _ in range(3000):
        tr.step()
        if getattr(tr, "epoch_done", False):
            tr.epoch_done = False
    assert len(tr.history.steps["loss"]) <= 64
    assert tr.history.steps["step"][-1] >= 3000 - tr.history.stride
