"""The activation page's numbers: f and f' from the engine's layers equal PyTorch's functions and
autograd and finite differences; saturated and dead regions; the chain product; bad fields."""
import math

import numpy as np
import pytest

from nnviz.backprop import LabError
from nnviz.backprop import activations as act

X = np.r_[np.linspace(-6, 6, 241), 0.0, 1e-3, -1e-3]


def _torch_fn(torch, name, slope):
    return {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "abs": torch.abs,
            "leaky_relu": lambda t: torch.nn.functional.leaky_relu(t, slope)}[name]


@pytest.mark.parametrize("name", list(act.FUNCTIONS))
def test_values_and_derivatives_equal_torch_autograd(name):
    torch = pytest.importorskip("torch")
    slope = 0.2
    f, df = act.evaluate(name, X, slope)
    t = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    y = _torch_fn(torch, name, slope)(t)
    y.sum().backward()
    # the kinks included: ReLU'(0) = 0, leaky'(0) = alpha and |x|'(0) = 0 in both
    np.testing.assert_allclose(f, y.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(df, t.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", list(act.FUNCTIONS))
def test_derivative_equals_finite_differences_of_the_forward(name):
    x = X[np.abs(X) > 1e-2]          # away from the kinks at 0
    h = 1e-6
    fp, _ = act.evaluate(name, x + h, 0.1)
    fm, _ = act.evaluate(name, x - h, 0.1)
    _, df = act.evaluate(name, x, 0.1)
    np.testing.assert_allclose(df, (fp - fm) / (2 * h), atol=1e-8)


def test_saturated_and_dead_regions():
    xs = act.grid()
    # sigmoid: sigma' = 0.05 * 0.25 where sigma = (1 +- sqrt(1 - 4 * 0.0125)) / 2
    s = (1 + math.sqrt(1 - 4 * 0.0125)) / 2
    edge = math.log(s / (1 - s))
    got = act.regions(xs, act.evaluate("sigmoid", xs)[1])
    assert [r.kind for r in got] == ["saturated", "saturated"]
    assert got[0].lo == -6 and got[1].hi == 6
    assert abs(got[1].lo - edge) <= 0.01 and abs(got[0].hi + edge) <= 0.01     # the grid's step
    edge = math.atanh(math.sqrt(0.95))                                          # tanh' = 0.05
    got = act.regions(xs, act.evaluate("tanh", xs)[1])
    assert abs(got[1].lo - edge) <= 0.01 and abs(got[0].hi + edge) <= 0.01
    got = act.regions(xs, act.evaluate("relu", xs)[1])
    assert [(r.lo, r.hi, r.kind) for r in got] == [(-6.0, 0.0, "dead")]
    got = act.regions(xs, act.evaluate("leaky_relu", xs, 0.01)[1])
    assert [(r.lo, r.hi, r.kind) for r in got] == [(-6.0, 0.0, "small slope")]      # leaky'(0) = alpha
    assert act.regions(xs, act.evaluate("leaky_relu", xs, 0.2)[1]) == []      # 0.2 >= 5 % of 1
    assert act.regions(xs, act.evaluate("abs", xs)[1]) == []                  # a kink, not a region


@pytest.mark.parametrize("name, x", [("sigmoid", 0.0), ("sigmoid", -1.3), ("tanh", 0.7), ("relu", 0.4),
                                     ("relu", -0.4), ("leaky_relu", -0.4), ("abs", -0.4)])
def test_chain_derivative_equals_torch_through_n_layers(name, x):
    torch = pytest.importorskip("torch")
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    h = t
    for _ in range(10):
        h = _torch_fn(torch, name, 0.1)(h)
    h.backward()
    assert act.chain_derivative(name, x, 10, 0.1) == pytest.approx(float(t.grad), rel=1e-12, abs=1e-300)
    if name == "sigmoid":
        assert act.chain_derivative(name, x, 10) <= 0.25 ** 10


@pytest.mark.parametrize("state, field", [({"function": "swish"}, "state.function"),
                                          ({"function": "leaky_relu", "slope": 1.5}, "state.slope"),
                                          ({"x": 7}, "state.x"), ({"x": "0"}, "state.x"),
                                          ({"chain": 0}, "state.chain"), ({"chain": True}, "state.chain")])
def test_bad_fields_are_named(state, field):
    with pytest.raises(LabError, match=field):
        act.state_numbers(state)
