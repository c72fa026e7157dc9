"""The engine against PyTorch: forward, backward, BatchNorm statistics, optimisers, LeNet-5.

Weights are copied from nnviz into torch modules (identical layouts); every
comparison is float32 at rtol 1e-4 with an absolute floor scaled to the
reference's magnitude.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from nnviz.engine import (  # noqa: E402
    MSE,
    SGD,
    Abs,
    Adam,
    AvgPool2D,
    BatchNorm,
    BCEWithLogits,
    Conv2D,
    ConvTranspose2D,
    Dense,
    Flatten,
    GlobalAvgPool2D,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Sequential,
    Sigmoid,
    SoftmaxCrossEntropy,
    Tanh,
    load_preset,
)

N_CONFIGS = 10


def close(actual, expected, what="", rtol=1e-4, atol=1e-5):
    expected = expected.detach().cpu().numpy() if isinstance(expected, torch.Tensor) else \
        np.asarray(expected)
    actual = np.asarray(actual)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale, err_msg=what)


def t(a, grad=False):
    return torch.tensor(np.array(a), dtype=torch.float32, requires_grad=grad)


def copy_params(model_layers, torch_modules):
    """nnviz params -> torch modules with .weight/.bias (same layouts)."""
    with torch.no_grad():
        for layer, mod in zip(model_layers, torch_modules):
            mod.weight.copy_(torch.from_numpy(np.array(layer.params["weight"])))
            if "bias" in layer.params:
                mod.bias.copy_(torch.from_numpy(np.array(layer.params["bias"])))


def compare_layer(layer, module, input_shape, batch, rng, x=None, train=False):
    """Forward and backward of a one-layer nnviz model against a torch module."""
    model = Sequential([layer], input_shape, seed=int(rng.integers(1 << 30)))
    if layer.params:
        copy_params([layer], [module])
        # non-zero biases, so that a wrong bias path shows
        if "bias" in layer.params:
            layer.params["bias"][...] = rng.standard_normal(layer.params["bias"].shape)
            with torch.no_grad():
                module.bias.copy_(torch.from_numpy(np.array(layer.params["bias"])))
    if x is None:
        x = rng.standard_normal((batch,) + tuple(input_shape)).astype(np.float32)
    module.train(train)
    y = model.forward(x, train=train)
    assert y.dtype == np.float32
    xt = t(x, grad=True)
    yt = module(xt)
    close(y, yt, f"{layer!r} forward")
    gy = rng.standard_normal(y.shape).astype(np.float32)
    gx = model.backward(gy.copy())
    yt.backward(t(gy))
    close(gx, xt.grad, f"{layer!r} input gradient")
    for (name, _), g in zip(model.named_parameters(), model.gradients()):
        key = name.split(".")[-1]
        close(g, getattr(module, key).grad, f"{layer!r} {key} gradient")
    return model


def conv_configs(seed, transpose=False):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < N_CONFIGS:
        n, c, o = rng.integers(1, 6), rng.integers(1, 5), rng.integers(1, 5)
        h, w = rng.integers(5, 13, size=2)
        kh, kw = rng.integers(1, 6, size=2)
        sh, sw = rng.integers(1, 4, size=2)
        ph, pw = rng.integers(0, 3, size=2)
        if rng.random() < 0.5:              # half of them square
            kw, sw, pw, w = kh, sh, ph, h
        if transpose:
            h, w = h // 2, w // 2           # keep transposed outputs small
            oh, ow = (h - 1) * sh - 2 * ph + kh, (w - 1) * sw - 2 * pw + kw
        else:
            oh, ow = (h - kh + 2 * ph) // sh + 1, (w - kw + 2 * pw) // sw + 1
            if kh > h + 2 * ph or kw > w + 2 * pw:
                continue
        if oh <= 0 or ow <= 0:
            continue
        out.append(tuple(int(v) for v in (n, c, o, h, w, kh, kw, sh, sw, ph, pw)))
    return out


@pytest.mark.parametrize("cfg", conv_configs(1))
def test_conv2d(cfg):
    n, c, o, h, w, kh, kw, sh, sw, ph, pw = cfg
    rng = np.random.default_rng(sum(cfg))
    layer = Conv2D(o, (kh, kw), stride=(sh, sw), padding=(ph, pw))
    module = nn.Conv2d(c, o, (kh, kw), stride=(sh, sw), padding=(ph, pw))
    model = compare_layer(layer, module, (c, h, w), n, rng)
    assert model.output_shape == (o, (h - kh + 2 * ph) // sh + 1, (w - kw + 2 * pw) // sw + 1)


@pytest.mark.parametrize("cfg", conv_configs(2, transpose=True))
def test_conv_transpose2d(cfg):
    n, c, o, h, w, kh, kw, sh, sw, ph, pw = cfg
    rng = np.random.default_rng(sum(cfg))
    layer = ConvTranspose2D(o, (kh, kw), stride=(sh, sw), padding=(ph, pw))
    module = nn.ConvTranspose2d(c, o, (kh, kw), stride=(sh, sw), padding=(ph, pw))
    compare_layer(layer, module, (c, h, w), n, rng)


def test_conv2d_without_bias():
    rng = np.random.default_rng(0)
    compare_layer(Conv2D(3, 3, padding=1, bias=False),
                  nn.Conv2d(2, 3, 3, padding=1, bias=False), (2, 6, 6), 2, rng)


def pool_configs(seed):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < N_CONFIGS:
        n, c = rng.integers(1, 6), rng.integers(1, 5)
        h, w = rng.integers(5, 13, size=2)
        kh, kw = rng.integers(1, 6, size=2)
        sh, sw = rng.integers(1, 4, size=2)
        if kh > h or kw > w:
            continue
        out.append(tuple(int(v) for v in (n, c, h, w, kh, kw, sh, sw)))
    return out


@pytest.mark.parametrize("cfg", pool_configs(3))
def test_maxpool2d(cfg):
    n, c, h, w, kh, kw, sh, sw = cfg
    rng = np.random.default_rng(sum(cfg))
    # distinct values: ties would let the engines pick different argmaxes
    x = (rng.permutation(n * c * h * w).reshape(n, c, h, w) / 10.0).astype(np.float32)
    compare_layer(MaxPool2D((kh, kw), (sh, sw)), nn.MaxPool2d((kh, kw), (sh, sw)), (c, h, w), n,
                  rng, x=x)


@pytest.mark.parametrize("hw", [(6, 6), (5, 7), (7, 4)])
def test_maxpool2x2_fast_path_odd_sizes(hw):
    # the 2x2 / stride-2 kernels write each input pixel once; odd rows/columns are in no window
    n, c = 3, 2
    rng = np.random.default_rng(hw[0] * 10 + hw[1])
    x = (rng.permutation(n * c * hw[0] * hw[1]).reshape(n, c, *hw) / 10.0).astype(np.float32)
    compare_layer(MaxPool2D(2), nn.MaxPool2d(2), (c,) + hw, n, rng, x=x)


@pytest.mark.parametrize("cfg", pool_configs(4))
def test_avgpool2d(cfg):
    n, c, h, w, kh, kw, sh, sw = cfg
    rng = np.random.default_rng(sum(cfg))
    compare_layer(AvgPool2D((kh, kw), (sh, sw)), nn.AvgPool2d((kh, kw), (sh, sw)), (c, h, w), n,
                  rng)


@pytest.mark.parametrize("shape,batch", [((3, 7, 5), 4), ((8, 1, 1), 2), ((2, 32, 32), 3)])
def test_global_avgpool2d(shape, batch):
    rng = np.random.default_rng(shape[1])
    model = compare_layer(GlobalAvgPool2D(), nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
                          shape, batch, rng)
    assert model.output_shape == shape[:1]


@pytest.mark.parametrize("seed", range(N_CONFIGS))
def test_dense(seed):
    rng = np.random.default_rng(seed)
    n, i, o = (int(v) for v in rng.integers(1, 20, size=3))
    compare_layer(Dense(o), nn.Linear(i, o), (i,), n, rng)


@pytest.mark.parametrize("make,module", [
    (ReLU, nn.ReLU()), (lambda: LeakyReLU(0.2), nn.LeakyReLU(0.2)),
    (LeakyReLU, nn.LeakyReLU(0.01)), (Sigmoid, nn.Sigmoid()), (Tanh, nn.Tanh()),
    (Abs, torch.abs),
], ids=["ReLU", "LeakyReLU0.2", "LeakyReLU", "Sigmoid", "Tanh", "Abs"])
@pytest.mark.parametrize("shape", [(9,), (3, 5, 4)])
def test_activation(make, module, shape):
    rng = np.random.default_rng(len(shape))
    x = (4 * rng.standard_normal((5,) + shape)).astype(np.float32)
    x[np.abs(x) < 1e-3] = 0.5                       # keep away from the kinks
    if not isinstance(module, nn.Module):
        fn = module

        class Wrap(nn.Module):
            def forward(self, v):
                return fn(v)
        module = Wrap()
    compare_layer(make(), module, shape, 5, rng, x=x)


def test_flatten():
    rng = np.random.default_rng(0)
    model = compare_layer(Flatten(), nn.Flatten(), (3, 5, 4), 2, rng)
    assert model.output_shape == (60,)


# ---- batch norm -----------------------------------------------------------------
@pytest.mark.parametrize("shape,batch", [((6,), 8), ((6,), 2), ((3, 5, 4), 4), ((2, 3, 3), 1)])
def test_batchnorm_train_eval_and_running_stats(shape, batch):
    rng = np.random.default_rng(batch)
    layer = BatchNorm()
    module = nn.BatchNorm1d(shape[0], momentum=0.1, eps=1e-5) if len(shape) == 1 else \
        nn.BatchNorm2d(shape[0], momentum=0.1, eps=1e-5)
    model = Sequential([layer], shape)
    layer.params["weight"][...] = 1 + 0.3 * rng.standard_normal(shape[0])
    layer.params["bias"][...] = rng.standard_normal(shape[0])
    copy_params([layer], [module])
    for step in range(3):   # running statistics accumulate over steps
        x = (2 + 3 * rng.standard_normal((batch,) + shape)).astype(np.float32)
        module.train()
        y = model.forward(x, train=True)
        xt = t(x, grad=True)
        yt = module(xt)
        close(y, yt, "train forward")
        gy = rng.standard_normal(y.shape).astype(np.float32)
        gx = model.backward(gy.copy())
        yt.backward(t(gy))
        close(gx, xt.grad, "train input gradient", atol=1e-4)
        close(model.gradients()[0], module.weight.grad, "gamma gradient")
        close(model.gradients()[1], module.bias.grad, "beta gradient")
        module.weight.grad = module.bias.grad = None
        close(layer.buffers["running_mean"], module.running_mean, f"running mean, step {step}")
        close(layer.buffers["running_var"], module.running_var, f"running var, step {step}")
    module.eval()
    x = (2 + 3 * rng.standard_normal((batch,) + shape)).astype(np.float32)
    xt = t(x, grad=True)
    yt = module(xt)
    y = model.forward(x, train=False)
    close(y, yt, "eval forward")
    gy = rng.standard_normal(y.shape).astype(np.float32)
    yt.backward(t(gy))
    close(model.backward(gy.copy()), xt.grad, "eval input gradient")
    # eval mode leaves the running statistics alone
    close(layer.buffers["running_mean"], module.running_mean, "running mean after eval")


# ---- losses -----------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_softmax_cross_entropy(seed):
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(1, 9)), int(rng.integers(2, 11))
    z = (3 * rng.standard_normal((n, k))).astype(np.float32)
    labels = rng.integers(0, k, size=n)
    loss = SoftmaxCrossEntropy()
    v = loss.forward(z, labels)
    zt = t(z, grad=True)
    ref = F.cross_entropy(zt, torch.from_numpy(labels))
    ref.backward()
    assert v == pytest.approx(ref.item(), rel=1e-5, abs=1e-6)
    close(loss.backward(), zt.grad, "cross-entropy gradient")


@pytest.mark.parametrize("seed", range(5))
def test_mse(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(1, 7, size=2))
    z = rng.standard_normal(shape).astype(np.float32)
    target = rng.standard_normal(shape).astype(np.float32)
    loss = MSE()
    v = loss.forward(z, target)
    zt = t(z, grad=True)
    ref = F.mse_loss(zt, t(target))
    ref.backward()
    assert v == pytest.approx(ref.item(), rel=1e-5, abs=1e-7)
    close(loss.backward(), zt.grad, "mse gradient")


@pytest.mark.parametrize("seed", range(5))
def test_bce_with_logits(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 9)), int(rng.integers(1, 4)))
    z = (5 * rng.standard_normal(shape)).astype(np.float32)
    target = rng.random(shape).astype(np.float32)
    if seed % 2:
        target = (target > 0.5).astype(np.float32)
    loss = BCEWithLogits()
    v = loss.forward(z, target)
    zt = t(z, grad=True)
    ref = F.binary_cross_entropy_with_logits(zt, t(target))
    ref.backward()
    assert v == pytest.approx(ref.item(), rel=1e-5, abs=1e-6)
    close(loss.backward(), zt.grad, "bce gradient")


# ---- optimisers ---------------------------------------------------------------------
def _mlp_pair(seed=0):
    model = Sequential([Dense(8), Tanh(), Dense(6), ReLU(), Dense(3)], (4,), seed=seed)
    tm = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
    dense = [l for l in model.layers if isinstance(l, Dense)]
    copy_params(dense, [m for m in tm if isinstance(m, nn.Linear)])
    return model, tm


def _run_both(make_ours, make_theirs, steps=5):
    model, tm = _mlp_pair()
    opt = make_ours(model.parameters())
    topt = make_theirs(tm.parameters())
    rng = np.random.default_rng(1)
    loss = SoftmaxCrossEntropy()
    for _ in range(steps):
        x = rng.standard_normal((16, 4)).astype(np.float32)
        y = rng.integers(0, 3, size=16)
        v = loss.forward(model.forward(x, train=True), y)
        model.backward(loss.backward())
        opt.step(model.gradients())
        topt.zero_grad()
        ref = F.cross_entropy(tm(t(x)), torch.from_numpy(y))
        ref.backward()
        topt.step()
        assert v == pytest.approx(ref.item(), rel=1e-5)
    before = _mlp_pair()[0].parameters()
    for (name, p), q, p0 in zip(model.named_parameters(), tm.parameters(), before):
        assert not np.array_equal(p, p0), f"{name} did not move"
        close(p, q, name, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_weight_decay(nesterov):
    _run_both(lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=1e-3),
              lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=nesterov,
                                         weight_decay=1e-3))


def test_sgd_plain():
    _run_both(lambda ps: SGD(ps, lr=0.05),
              lambda ps: torch.optim.SGD(ps, lr=0.05))


def test_adam_weight_decay():
    _run_both(lambda ps: Adam(ps, lr=0.01, weight_decay=1e-3),
              lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=1e-3))


def test_adam_betas():
    _run_both(lambda ps: Adam(ps, lr=0.003, betas=(0.8, 0.99), eps=1e-6),
              lambda ps: torch.optim.Adam(ps, lr=0.003, betas=(0.8, 0.99), eps=1e-6))


# ---- LeNet-5 ---------------------------------------------------------------------------
def test_lenet5_preset_matches_torch():
    model = load_preset("lenet5", seed=3)
    tm = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(16, 120, 5), nn.Tanh(), nn.Flatten(),
        nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10))
    ours = [l for l in model.layers if l.params]
    theirs = [m for m in tm if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(ours) == len(theirs) == 5
    rng = np.random.default_rng(0)
    for layer in ours:   # non-zero biases
        layer.params["bias"][...] = 0.1 * rng.standard_normal(layer.params["bias"].shape)
    copy_params(ours, theirs)
    assert model.param_count() == sum(p.numel() for p in tm.parameters()) == 61706
    x = rng.standard_normal((4, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, size=4)
    loss = SoftmaxCrossEntropy()
    logits = model.forward(x, train=True)
    v = loss.forward(logits, labels)
    gx = model.backward(loss.backward())
    xt = t(x, grad=True)
    zt = tm(xt)
    ref = F.cross_entropy(zt, torch.from_numpy(labels))
    ref.backward()
    close(logits, zt, "logits")
    assert v == pytest.approx(ref.item(), rel=1e-5)
    close(gx, xt.grad, "input gradient")
    names = [n for n, _ in model.named_parameters()]
    for name, g, q in zip(names, model.gradients(), tm.parameters()):
        close(g, q.grad, name)
