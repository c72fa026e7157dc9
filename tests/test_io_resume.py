"""Save mid-training, load, continue: the same weights as training straight through."""
import numpy as np
import pytest

from nnviz.data.dataset import Dataset
from nnviz.engine import model_from_spec
from nnviz.io import load_model, save_model
from nnviz.train import Trainer

IMAGE_SPEC = {"name": "tiny-cnn", "input_shape": [1, 8, 8], "layers": [
    {"type": "Conv2D", "out_channels": 4, "kernel_size": 3, "padding": 1},
    {"type": "BatchNorm"}, {"type": "ReLU"},
    {"type": "MaxPool2D", "kernel_size": 2},
    {"type": "Residual", "layers": [{"type": "Conv2D", "out_channels": 4, "kernel_size": 3,
                                     "padding": 1}, {"type": "Tanh"}]},
    {"type": "Flatten"}, {"type": "Dropout", "p": 0.3},
    {"type": "Dense", "out_features": 12}, {"type": "BatchNorm"}, {"type": "LeakyReLU"},
    {"type": "Dropout", "p": 0.2},
    {"type": "Dense", "out_features": 3}]}

POINT_SPEC = {"name": "tiny-mlp", "input_shape": [2], "layers": [
    {"type": "Dense", "out_features": 16}, {"type": "BatchNorm"}, {"type": "Tanh"},
    {"type": "Dropout", "p": 0.25}, {"type": "Dense", "out_features": 2}]}


def make_data(shape, n_train=70, n_test=20, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_train + n_test, *shape)).astype(np.float32)
    y = rng.integers(0, classes, n_train + n_test)
    return Dataset(name="toy", x_train=x[:n_train], y_train=y[:n_train], x_test=x[n_train:],
                   y_test=y[n_train:], class_names=[f"c{i}" for i in range(classes)],
                   normalization={"mean": [0.0], "std": [1.0]})


CASES = {
    "cnn-sgd-momentum": (IMAGE_SPEC, 3, dict(optimizer="sgd", lr=0.05, momentum=0.9,
                                               nesterov=True, weight_decay=1e-3)),
    "cnn-adam": (IMAGE_SPEC, 3, dict(optimizer="adam", lr=0.01, l1=1e-4)),
    "mlp-adam": (POINT_SPEC, 2, dict(optimizer="adam", lr=0.02)),
    "mlp-sgd": (POINT_SPEC, 2, dict(optimizer="sgd", lr=0.1, momentum=0.5)),
}


def snapshot(trainer):
    st = trainer.model.state()
    for k, arrays in trainer.optimizer.state_dict()["slots"].items():
        for i, a in enumerate(arrays):
            st[f"opt.{k}.{i}"] = a
    return st


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("n_first", [3, 5, 9])  # mid-epoch, one step before/after epoch ends
def test_resume_matches_straight_run(case, n_first, tmp_path):
    spec, classes, hp = CASES[case]
    data = make_data(tuple(spec["input_shape"]), classes=classes)
    total = 14                     # 70 samples / batch 16 -> 5 steps per epoch: crosses epochs
    straight = Trainer(model_from_spec(spec, seed=7), data, batch_size=16, seed=11, **hp)
    for _ in range(total):
        straight.step()

    first = Trainer(model_from_spec(spec, seed=7), data, batch_size=16, seed=11, **hp)
    for _ in range(n_first):
        first.step()
    path = save_model(tmp_path / "ckpt.h5", first.model, trainer=first)
    loaded = load_model(path)
    # a fresh trainer with other settings: everything must come from the file
    resumed = Trainer(loaded.model, data, optimizer="sgd", lr=0.5, batch_size=4, seed=99)
    resumed.load_state_dict(loaded.meta["training"])
    assert (resumed.epoch, resumed.pos, resumed.steps) == (first.epoch, first.pos, first.steps)
    for _ in range(total - n_first):
        resumed.step()

    a, b = snapshot(straight), snapshot(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert straight.optimizer.t == resumed.optimizer.t
    assert straight.model.rng.bit_generator.state == resumed.model.rng.bit_generator.state
    np.testing.assert_array_equal(straight.history.steps["loss"], resumed.history.steps["loss"])


def test_saved_training_state_round_trips(tmp_path):
    spec, classes, hp = CASES["cnn-adam"]
    data = make_data(tuple(spec["input_shape"]), classes=classes)
    tr = Trainer(model_from_spec(spec, seed=1), data, batch_size=16, seed=2, **hp)
    tr.fit(1)
    tr.step()
    want = tr.state_dict()
    got = load_model(save_model(tmp_path / "m.h5", tr.model, trainer=tr)).meta["training"]

    def same(x, y, where):
        if isinstance(x, dict):
            assert isinstance(y, dict) and x.keys() == y.keys(), where
            for k in x:
                same(x[k], y[k], f"{where}.{k}")
        elif isinstance(x, np.ndarray):
            assert isinstance(y, np.ndarray) and x.dtype == y.dtype, where
            np.testing.assert_array_equal(x, y, err_msg=where)
        elif isinstance(x, (list, tuple)) and any(isinstance(v, np.ndarray) for v in x):
            assert len(x) == len(y), where
            for i, (u, v) in enumerate(zip(x, y)):
                same(u, v, f"{where}[{i}]")
        else:
            assert type(x) is type(y) or isinstance(x, tuple), (where, x, y)
            assert list(x) == list(y) if isinstance(x, tuple) else x == y, where

    same(want, got, "state")
