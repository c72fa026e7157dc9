"""The backprop lab's numbers: the classic worked example, PyTorch autograd, finite differences."""
import re

import numpy as np
import pytest

from nnviz.backprop import (
    LabError,
    LabNet,
    batch_table,
    chain_gradients,
    gradient_check,
    record,
    sgd_update,
    tutorial_net,
    update_lines,
)
from nnviz.backprop.names import MINUS, fmt
from nnviz.engine import SGD

NUM = re.compile(r"[\u2212-]?\d+(?:\.\d+)?(?:e[\u2212-]?\d+)?")


def _numbers(text):
    return [float(s.replace(MINUS, "-")) for s in NUM.findall(text)]


def _step(rec, title):
    return next(s for s in rec.steps if s.title == title)


# ---- the 2-2-2 sigmoid network of the classic backprop tutorial -----------------------------
def test_tutorial_numbers_in_the_chain_rule_text():
    net, x, t = tutorial_net()
    rec = record(net, x, t)
    z_h1 = _step(rec, "z_h₁").text
    assert "= 0.15·0.05 + 0.2·0.1 + 0.35 = 0.3775" in z_h1
    loss = _step(rec, "L").text
    assert round(_numbers(loss)[-1], 4) == round(0.298371109, 4)
    w5 = _step(rec, "∂L/∂w₅").text
    assert w5.startswith("∂L/∂w₅ = ∂L/∂o₁·∂o₁/∂z_o₁·∂z_o₁/∂w₅ = ")
    f = _numbers(w5.split(" = ", 2)[2])     # the factors, then the product
    assert [round(v, 4) for v in f[:4]] == [0.7414, 0.1868, 0.5933, 0.0822]
    assert abs(f[3] - 0.082167041) < 1e-6
    w1 = _step(rec, "∂L/∂w₁").text
    f = _numbers(w1.split(" = ", 2)[2])
    assert [round(v, 4) for v in f[:3]] == [0.0364, 0.2413, 0.05]
    assert abs(f[3] - 0.000438568) < 1e-9
    h1 = _step(rec, "∂L/∂h₁").text        # where two paths join: the sum written out
    assert "∂L/∂z_o₁·w₅ + ∂L/∂z_o₂·w₇" in h1
    assert abs(_numbers(h1)[-1] - 0.036350306) < 1e-8
    up = sgd_update(net, [x], [t], lr=0.5)
    names = [rec.nodes[k].label for k in rec.param_keys]
    line = next(s for s in update_lines(names, up, 1) if s.startswith("w₅ ←"))
    assert line.endswith("= 0.4 − 0.5·0.082167 = 0.358916")
    assert abs(up.after[names.index("w₅")] - 0.35891648) < 1e-8
    assert abs(up.loss_before - 0.298371109) < 1e-9


def test_every_step_text_ends_with_the_engine_value():
    net, x, t = tutorial_net()
    rec = record(net, x, t, digits=8)
    for s in rec.steps:
        n = rec.nodes[s.keys[-1]]
        v = n.value if s.phase == "forward" else n.grad
        assert fmt(v, 8) in s.text, s.text


# ---- random nets against PyTorch autograd and finite differences -----------------------------
CONFIGS = [((2, 2, 1), "tanh", "linear", "mse"), ((3, 4, 4, 3), "sigmoid", "sigmoid", "mse"),
           ((2, 3, 3), "relu", "linear", "xent"), ((3, 4, 2, 2), "tanh", "linear", "xent"),
           ((1, 2, 2, 1), "relu", "tanh", "mse")]


def _random_net(cfg, seed):
    sizes, hidden, output, loss = cfg
    net = LabNet(sizes, hidden, output, loss, seed=seed)
    rng = np.random.default_rng(seed)
    for p in net.parameters():
        p[...] = rng.normal(0, 0.8, p.shape)
    n = 5
    x = rng.normal(0, 1, (n, sizes[0]))
    t = rng.integers(0, sizes[-1], n) if loss == "xent" else rng.normal(0, 1, (n, sizes[-1]))
    return net, x, t


def _torch_graph(torch, net, x, t):
    """z, a, loss and every gradient by PyTorch autograd in float64."""
    F = torch.nn.functional
    acts = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
            "linear": lambda v: v, "softmax": lambda v: v}
    params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in net.parameters()]
    h = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    xs, zs, as_ = h, [], []
    for l in range(net.n_layers):
        z = h @ params[2 * l].T + params[2 * l + 1]
        z.retain_grad()
        a = acts[net.act_name(l)](z)
        if a is not z:
            a.retain_grad()
        zs.append(z)
        as_.append(a)
        h = a
    if net.loss_name == "xent":
        loss = F.cross_entropy(h, torch.tensor(t, dtype=torch.long))
    else:
        loss = F.mse_loss(h, torch.tensor(t, dtype=torch.float64))
    loss.backward()
    dact = []
    for l in range(net.n_layers):
        z = zs[l].detach().clone().requires_grad_(True)
        a = acts[net.act_name(l)](z)
        dact.append(torch.autograd.grad(a.sum(), z)[0].numpy() if a is not z else np.ones(z.shape))
    return {"loss": loss.item(), "z": [z.detach().numpy() for z in zs],
            "a": [a.detach().numpy() for a in as_], "gz": [z.grad.numpy() for z in zs],
            "ga": [a.grad.numpy() if a.grad is not None else None for a in as_],
            "gp": [p.grad.numpy() for p in params], "gx": xs.grad.numpy(), "dact": dact}


@pytest.mark.parametrize("cfg", CONFIGS)
def test_every_displayed_value_matches_torch(cfg):
    torch = pytest.importorskip("torch")
    net, X, T = _random_net(cfg, seed=len(cfg[0]) * 7 + CONFIGS.index(cfg))
    for e in range(2):
        x, t = X[e:e + 1], T[e:e + 1]
        rec = record(net, x[0], t[0])
        ref = _torch_graph(torch, net, x, t)
        N, tol = rec.nodes, 1e-6
        assert abs(N["L"].value - ref["loss"]) < tol
        for l in range(net.n_layers):
            W = net.weight(l)
            a_in = x[0] if l == 0 else ref["a"][l - 1][0]
            for j in range(W.shape[0]):
                assert abs(N[f"z{l},{j}"].value - ref["z"][l][0, j]) < tol
                assert abs(N[f"z{l},{j}"].grad - ref["gz"][l][0, j]) < tol
                assert abs(N[f"b{l},{j}"].grad - ref["gp"][2 * l + 1][j]) < tol
                if net.act_name(l) != "softmax":
                    assert abs(N[f"a{l},{j}"].value - ref["a"][l][0, j]) < tol
                    assert abs(N[f"a{l},{j}"].grad - ref["ga"][l][0, j]) < tol
                for i in range(W.shape[1]):
                    assert abs(N[f"m{l},{j},{i}"].value - W[j, i] * a_in[i]) < tol
                    assert abs(N[f"w{l},{j},{i}"].grad - ref["gp"][2 * l][j, i]) < tol
        for i in range(net.sizes[0]):
            assert abs(N[f"x{i}"].grad - ref["gx"][0, i]) < tol
        # every edge's local derivative
        for edge in rec.edges:
            if edge.local is None:
                continue
            src, dst = N[edge.src], N[edge.dst]
            if dst.kind == "act":
                want = ref["dact"][dst.layer][0, dst.unit]
            elif dst.kind == "mul":
                want = (a_in_of(net, x, ref, dst.layer)[dst.src] if src.kind == "weight"
                        else net.weight(dst.layer)[dst.unit, dst.src])
            elif dst.kind == "sum":
                want = 1.0
            else:     # the loss: ∂L/∂(its input)
                last = ref["ga"][-1] if net.loss_name == "mse" else ref["gz"][-1]
                want = last[0, src.unit]
            assert abs(edge.local - want) < tol, (edge.src, edge.dst)


def a_in_of(net, x, ref, l):
    return x[0] if l == 0 else ref["a"][l - 1][0]


@pytest.mark.parametrize("cfg", CONFIGS)
def test_gradients_match_finite_differences(cfg):
    net, X, T = _random_net(cfg, seed=3)
    bp, fd = gradient_check(net, X[0], T[0])
    assert bp.shape == fd.shape == (sum(p.size for p in net.parameters()),)
    np.testing.assert_allclose(bp, fd, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("cfg", CONFIGS[:3])
def test_minibatch_table_and_update_equal_one_sgd_step(cfg):
    net, X, T = _random_net(cfg, seed=5)
    table = batch_table(net, X, T)
    assert table.per_example.shape == (sum(p.size for p in net.parameters()), len(X))
    np.testing.assert_allclose(table.per_example.mean(axis=1), table.average, rtol=1e-12, atol=1e-14)
    assert abs(table.losses.mean() - table.loss) < 1e-12
    for e in range(len(X)):     # each column is that example's gradient alone
        one = gradient_check(net, X[e], T[e])[0]
        np.testing.assert_allclose(table.per_example[:, e], one, rtol=1e-12, atol=1e-14)
    before = [p.copy() for p in net.parameters()]
    up = sgd_update(net, X, T, lr=0.3)
    for p, b in zip(net.parameters(), before):       # a preview leaves the net as it was
        np.testing.assert_array_equal(p, b)
    np.testing.assert_allclose(up.after, up.before - 0.3 * table.average, rtol=0, atol=1e-15)
    # the same as running the engine's SGD.step by hand
    ref = LabNet(*cfg)
    ref.load_state(before)
    tr = ref.trace(X, T)
    SGD(ref.parameters(), lr=0.3, backend=ref.B).step(ref.gradients(tr))
    np.testing.assert_array_equal(up.after, np.concatenate([p.ravel() for p in ref.parameters()]))
    assert up.loss_after == ref.forward_loss(X, T)
    sgd_update(net, X, T, lr=0.3, apply=True)
    np.testing.assert_array_equal(np.concatenate([p.ravel() for p in net.parameters()]), up.after)


def test_update_matches_torch_sgd():
    torch = pytest.importorskip("torch")
    net, X, T = _random_net(CONFIGS[1], seed=9)
    up = sgd_update(net, X, T, lr=0.7)
    params = [torch.tensor(p, requires_grad=True) for p in net.parameters()]
    opt = torch.optim.SGD(params, lr=0.7)
    h = torch.tensor(X)
    for l in range(net.n_layers):
        h = torch.sigmoid(h @ params[2 * l].T + params[2 * l + 1])
    torch.nn.functional.mse_loss(h, torch.tensor(T)).backward()
    opt.step()
    np.testing.assert_allclose(up.after, np.concatenate([p.detach().numpy().ravel() for p in params]),
                               rtol=0, atol=1e-12)


# ---- vanishing gradients ----------------------------------------------------------------------
def test_chain_gradients_match_torch_and_vanish_with_sigmoid():
    torch = pytest.importorskip("torch")
    from nnviz.backprop.net import DTYPE, _cpu
    from nnviz.engine import Dense, Sigmoid
    depth = 8
    g = chain_gradients("sigmoid", depth, width=8)
    assert g.shape == (depth,)
    # rebuild the same chain (same seeds) in torch
    B = _cpu()
    Ws, bs, shape = [], [], (8,)
    for l in range(depth):
        d = Dense(8, init="auto")
        shape = d.build(shape, np.random.default_rng([0, l]), DTYPE, B, hint=Sigmoid().type)
        Ws.append(torch.tensor(d.params["weight"], requires_grad=True))
        bs.append(torch.tensor(d.params["bias"]))
    head = Dense(1, init="auto")
    head.build(shape, np.random.default_rng([0, 1000]), DTYPE, B)
    rng = np.random.default_rng([0, 2000])
    h = torch.tensor(rng.standard_normal((32, 8)))
    target = torch.tensor(rng.standard_normal((32, 1)))
    for W, b in zip(Ws, bs):
        h = torch.sigmoid(h @ W.T + b)
    out = h @ torch.tensor(head.params["weight"]).T + torch.tensor(head.params["bias"])
    torch.nn.functional.mse_loss(out, target).backward()
    want = np.array([float(W.grad.norm()) for W in Ws])
    np.testing.assert_allclose(g, want, rtol=1e-9)
    assert g[0] < 1e-3 * g[-1]          # sigmoid: the first layer's gradient has vanished
    relu = chain_gradients("relu", depth, width=8)
    assert relu[0] > 1e-2 * relu[-1]    # ReLU with He init: it has not


def test_bad_settings_say_what_was_expected():
    with pytest.raises(LabError, match="1 to 4 units"):
        LabNet((2, 5, 1))
    with pytest.raises(LabError, match="at least 2 outputs"):
        LabNet((2, 2, 1), loss="xent")
    with pytest.raises(LabError, match="activation must be one of"):
        LabNet((2, 2, 1), hidden="swish")
    net = LabNet((2, 2, 2), loss="xent")
    with pytest.raises(LabError, match="one class in 0..1"):
        net.trace([[0.1, 0.2]], [2])
    with pytest.raises(LabError, match="mini-batch: 1 to 8"):
        batch_table(net, np.zeros((9, 2)), np.zeros(9, int))


@pytest.mark.parametrize("cfg", CONFIGS)
def test_values_equal_an_ordinary_engine_model(cfg):
    """The lab's numbers are those of a plain nnviz Sequential with the same weights."""
    from nnviz.engine import MSE, Dense, ReLU, Sequential, Sigmoid, SoftmaxCrossEntropy, Tanh
    net, X, T = _random_net(cfg, seed=11)
    acts = {"sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU}
    layers = []
    for l in range(net.n_layers):
        layers.append(Dense(net.sizes[l + 1]))
        if net.act_name(l) in acts:
            layers.append(acts[net.act_name(l)]())
    model = Sequential(layers, (net.sizes[0],), dtype=np.float64)
    dense = [layer for layer in model.layers if layer.type == "Dense"]
    for d, w, b in zip(dense, net.parameters()[::2], net.parameters()[1::2]):
        d.params["weight"][...] = w
        d.params["bias"][...] = b
    outs = []
    remove = model.add_forward_hook(lambda layer, y: outs.append(np.array(y)))
    y = model.forward(X[:1], train=True)
    remove()
    loss = SoftmaxCrossEntropy() if net.loss_name == "xent" else MSE()
    value = loss.forward(y, T[:1])
    model.backward(loss.backward())
    rec = record(net, X[0], T[0])
    assert rec.nodes["L"].value == value
    it = iter(outs)
    for l in range(net.n_layers):
        z = next(it)
        a = next(it) if net.act_name(l) in acts else z
        for j in range(net.sizes[l + 1]):
            assert rec.nodes[f"z{l},{j}"].value == z[0, j]
            if net.act_name(l) != "softmax":
                assert rec.nodes[f"a{l},{j}"].value == a[0, j]
    grads = np.concatenate([g.ravel() for g in model.gradients()])
    shown = np.array([rec.nodes[k].grad for k in rec.param_keys])
    np.testing.assert_allclose(shown, grads, rtol=1e-12, atol=1e-15)
