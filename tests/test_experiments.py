"""Side-by-side experiments (Qt-free): the data, the two arms, the gradient probe against
PyTorch, and the outcomes the lessons state, computed by the engine at seed 0."""
import numpy as np
import pytest

from nnviz.engine import get_loss
from nnviz.experiments import ExperimentError, evaluate_state, make_experiment
from nnviz.experiments.base import Series
from nnviz.experiments.translation import midpoint_dataset, one_pixel_images, pure_cnn
from nnviz.experiments.vanishing import deep_net, dense_layers, layer_grad_norms, twin_nets


def test_plain_and_residual_nets_start_from_the_same_weights():
    plain, res = twin_nets(5, 8, "tanh")
    a, b = dense_layers(plain), dense_layers(res)
    assert len(a) == len(b) == 6
    for la, lb in zip(a, b):
        assert np.array_equal(la.params["weight"], lb.params["weight"])
        assert np.array_equal(la.params["bias"], lb.params["bias"])
    assert [l.type for l in res.layers][2:-1] == ["Residual"] * 4


def test_layer_grad_norms_equal_pytorch():
    torch = pytest.importorskip("torch")
    model = deep_net(3, 4, "tanh", residual=True, seed=3)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 2)).astype(np.float32)
    y = rng.integers(0, 2, 6)
    loss = get_loss("softmax_xent", model.B)
    loss.forward(model.forward(x, train=True), y)
    model.backward(loss.backward())
    got = layer_grad_norms(model)

    ws = [torch.tensor(np.array(l.params["weight"]), requires_grad=True) for l in dense_layers(model)]
    bs = [torch.tensor(np.array(l.params["bias"]), requires_grad=True) for l in dense_layers(model)]
    h = torch.tanh(torch.tensor(x) @ ws[0].T + bs[0])
    for w, b in zip(ws[1:-1], bs[1:-1]):
        h = h + torch.tanh(h @ w.T + b)
    out = h @ ws[-1].T + bs[-1]
    torch.nn.functional.cross_entropy(out, torch.tensor(y)).backward()
    want = np.array([float(w.grad.norm()) for w in ws])
    np.testing.assert_allclose(got, want, rtol=1e-4)


def test_deep_plain_net_vanishes_and_the_skip_connections_carry_the_gradient():
    run = make_experiment("vanishing").build()
    run.run(200)
    m = run.metrics()
    assert m["first_layer_grad_ratio"] >= 100
    assert m["plain_test_accuracy"] <= 0.6 and m["residual_test_accuracy"] >= 0.95
    g_plain = run.probes["plain"]["layer_grad_norms"]
    assert len(g_plain) == 21 and g_plain[0] < g_plain[-1] / 1e3     # shrinks on its way back
    s, v = run.series["residual"]["first_layer_grad_norm"].arrays()
    assert s[-1] == 200 and len(v) == 200
    # the same seed gives the same run
    again = make_experiment("vanishing").build()
    again.run(200)
    assert again.metrics() == m


def test_midpoint_data_is_balanced_one_pixel_images():
    ds = midpoint_dataset(9, 200, 100, seed=0)
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        assert x.shape[1:] == (1, 9, 9) and y.mean() == 0.5
        assert np.array_equal(x.reshape(len(x), -1).sum(1), np.ones(len(x)))
        lit = x.reshape(len(x), -1).argmax(1)
        assert np.array_equal(lit == 4 * 9 + 4, y == 1)
    with pytest.raises(ExperimentError, match="size: expected an odd number"):
        midpoint_dataset(8)


def _every_position(size):
    r, c = np.divmod(np.arange(size * size), size)
    return one_pixel_images(size, r, c)


def test_pure_cnn_with_full_padding_cannot_see_where_the_pixel_is():
    size = 9
    x = _every_position(size)
    cnn = pure_cnn(size, "full", seed=5)
    for l in cnn.layers:          # any weights, not only the initial ones
        if "weight" in l.params:
            l.params["weight"][...] = np.random.default_rng(2).normal(size=l.params["weight"].shape)
    out = cnn.predict_logits(x)
    np.testing.assert_allclose(out, np.broadcast_to(out[0], out.shape), rtol=1e-5, atol=1e-6)
    # with "same" padding and biases the border shows through: the answers differ
    leaky = pure_cnn(size, "same", seed=5).predict_logits(x)
    assert np.ptp(leaky[:, 0]) > 1e-3


def test_translation_mlp_learns_it_the_pure_cnn_stays_at_chance():
    m = evaluate_state({"experiment": "translation", "train_steps": 150})
    assert m["mlp_test_accuracy"] >= 0.95
    assert m["cnn_test_accuracy"] <= 0.6


def test_experiment_options_are_checked_by_name():
    with pytest.raises(ExperimentError, match="depth: expected a whole number from 1 to 60"):
        make_experiment("vanishing", depth=0)
    with pytest.raises(ExperimentError, match="cnn_padding: expected one of full, same"):
        make_experiment("translation", cnn_padding="valid")
    with pytest.raises(ExperimentError, match=r"unknown option\(s\) \['colour'\]"):
        make_experiment("vanishing", colour="red")
    with pytest.raises(ExperimentError, match="experiment: expected one of vanishing, translation"):
        make_experiment("dropout")
    with pytest.raises(ExperimentError, match="train_steps"):
        evaluate_state({"experiment": "vanishing", "train_steps": -1})
    # in a lesson file: the lesson's error, naming the field of the step's state
    from nnviz.lessons import LessonError, LessonStep
    from nnviz.lessons.examples import evaluate
    with pytest.raises(LessonError, match=r"state\.activation: expected one of tanh, sigmoid"):
        evaluate(LessonStep("experiments", state={"experiment": "vanishing", "activation": "relu"}))


def test_series_stays_bounded():
    s = Series(max_points=10)
    for i in range(1, 101):
        s.add(i, float(i))
    steps, values = s.arrays()
    assert len(steps) <= 10 and steps[-1] >= 90 and np.array_equal(steps, values)
    s.truncate(50)
    assert s.arrays()[0].max() <= 50


def test_after_a_divergence_both_arms_go_back_to_the_same_step(monkeypatch):
    from nnviz.train import TrainingDiverged
    run = make_experiment("vanishing", depth=3).build()
    run.run(30)
    before = [a.model.state() for a in run.arms]
    second = run.trainers[1]

    def boom():
        raise TrainingDiverged(second.steps + 1, "loss is nan", second.lr)
    monkeypatch.setattr(second, "step", boom)
    with pytest.raises(TrainingDiverged):
        run.step()                      # the first arm stepped, the second did not
    assert [t.steps for t in run.trainers] == [31, 30]
    assert run.restore_last_good() == 25
    assert [t.steps for t in run.trainers] == [25, 25]
    assert all(s.arrays()[0].max() <= 25 for s in run.series["plain"].values())
    assert not np.array_equal(before[0]["0.weight"], run.arms[0].model.state()["0.weight"])
