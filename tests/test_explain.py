"""nnviz.explain: saliency and Grad-CAM against PyTorch autograd on the same weights,
occlusion against a direct loop, activation maximisation, mistakes and histograms."""
import numpy as np
import pytest

from nnviz.engine import Conv2D, Dense, Flatten, ReLU, Sequential, load_preset
from nnviz.explain import (
    ExplainError,
    HistogramHistory,
    clone_model,
    default_cam_layer,
    explain,
    gradient_histograms,
    maximize,
    mistakes,
    occlusion,
    weight_histograms,
)
from nnviz.explain.core import block_end


def lenet(name, seed=0):
    m = load_preset(name, seed=seed)
    rng = np.random.default_rng(seed)
    for _, p in m.named_parameters():       # non-zero biases, so a wrong bias path shows
        if p.ndim == 1:
            p[...] = rng.normal(0, 0.1, p.shape)
    return m


def torch_copy(model, torch):
    """The same network as torch modules, weights copied."""
    nn = torch.nn
    mods = []
    for l in model.layers:
        c = l.config()
        kind = c["type"]
        if kind == "Conv2D":
            mod = nn.Conv2d(l.input_shape[0], c["out_channels"], c["kernel_size"],
                            padding=c.get("padding", 0))
        elif kind == "Dense":
            mod = nn.Linear(l.input_shape[0], c["out_features"])
        else:
            mod = {"Tanh": nn.Tanh(), "ReLU": nn.ReLU(), "Flatten": nn.Flatten(),
                   "AvgPool2D": nn.AvgPool2d(2), "MaxPool2D": nn.MaxPool2d(2)}[kind]
        if l.params:
            with torch.no_grad():
                mod.weight.copy_(torch.from_numpy(np.array(l.params["weight"])))
                mod.bias.copy_(torch.from_numpy(np.array(l.params["bias"])))
        mods.append(mod)
    return mods


def torch_reference(model, x, target, cam_layer):
    """Saliency, gradient x input and Grad-CAM by torch autograd."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    mods = torch_copy(model, torch)
    xt = torch.tensor(x, requires_grad=True)
    h, maps = xt, None
    for i, mod in enumerate(mods):
        h = mod(h)
        if i == block_end(model, cam_layer):
            maps = h
    logit = h[torch.arange(len(x)), torch.tensor(target)].sum()
    gx, ga = torch.autograd.grad(logit, (xt, maps))
    weights = ga.mean(dim=(2, 3))
    cam = torch.relu((weights[:, :, None, None] * maps).sum(1))
    up = F.interpolate(cam[:, None], size=x.shape[2:], mode="bilinear", align_corners=False)[:, 0]
    sal = gx.abs().amax(1)
    gxi = (gx * xt).sum(1)
    return [a.detach().numpy() for a in (gx, sal, gxi, cam, up)]


def close(actual, expected, what):
    scale = max(1e-6, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * scale, err_msg=what)


@pytest.mark.parametrize("preset", ["lenet5", "lenet5-relu"])
@pytest.mark.parametrize("layer", [-1, 0])
def test_saliency_and_grad_cam_match_torch(preset, layer):
    pytest.importorskip("torch")
    model = lenet(preset)
    x = np.random.default_rng(1).normal(0, 1, (3, 1, 28, 28)).astype(np.float32)
    target = [2, 7, 4]
    e = explain(model, x, target, cam_layer=layer)
    want_layer = 3 if layer == -1 else 0      # LeNet-5's last conv (layer 6) is 1x1
    assert e.cam_layer == want_layer
    gx, sal, gxi, cam, up = torch_reference(model, x, target, want_layer)
    close(e.gradient, gx, "d logit / d x")
    close(e.saliency, sal, "saliency")
    close(e.grad_x_input, gxi, "gradient x input")
    close(e.cam_small, cam, "Grad-CAM at the layer's resolution")
    close(e.grad_cam, up, "Grad-CAM upsampled")
    assert e.grad_cam.shape == (3, 28, 28) and np.abs(up).max() > 0
    assert list(e.target) == target


def test_default_class_is_the_prediction_and_fused_model_is_unchanged():
    model = lenet("lenet5-relu")
    x = np.random.default_rng(2).normal(0, 1, (4, 1, 28, 28)).astype(np.float32)
    before = model.predict_logits(x)
    e = explain(model, x)
    assert np.array_equal(e.target, before.argmax(1))
    np.testing.assert_allclose(e.logits, before, rtol=1e-5, atol=1e-5)
    # one input (C, H, W) gives a batch of one
    one = explain(model, x[1])
    np.testing.assert_allclose(one.saliency[0], e.saliency[1], rtol=1e-5, atol=1e-7)


def small_cnn(seed=0):
    return Sequential([Conv2D(3, 3), ReLU(), Flatten(), Dense(3)], (2, 9, 9), seed=seed)


def test_occlusion_matches_a_direct_loop():
    model = small_cnn()
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, (2, 9, 9)).astype(np.float32)
    fill = [0.25, -0.5]
    o = occlusion(model, x, target=1, size=3, stride=2, fill=fill)
    assert list(o.rows) == [0, 2, 4, 6] and list(o.cols) == [0, 2, 4, 6]
    p0 = model.predict_proba(x[None])[0, 1]
    assert o.prob == pytest.approx(p0, rel=1e-6)
    heat_sum, cover = np.zeros((9, 9)), np.zeros((9, 9))
    for i, r in enumerate(o.rows):
        for j, c in enumerate(o.cols):
            xo = x.copy()
            xo[0, r:r + 3, c:c + 3] = fill[0]
            xo[1, r:r + 3, c:c + 3] = fill[1]
            drop = p0 - model.predict_proba(xo[None])[0, 1]
            assert o.drop[i, j] == pytest.approx(drop, abs=1e-6)
            heat_sum[r:r + 3, c:c + 3] += drop
            cover[r:r + 3, c:c + 3] += 1
    np.testing.assert_allclose(o.heatmap, heat_sum / cover, atol=1e-6)
    # a stride that does not reach the edge still gets a patch flush with it
    o2 = occlusion(model, x, size=4, stride=3)
    assert list(o2.rows) == [0, 3, 5]
    assert o2.target == int(model.predict(x[None])[0])


@pytest.fixture
def one_thread():
    """Small batches run faster on one Numba thread (as in the app) on a busy machine."""
    import numba
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(before)


def test_maximize_raises_the_activation_and_is_seeded(one_thread):
    model = lenet("lenet5")
    for seed in range(3):
        # plain gradient ascent: the mean over the 16 filters rises at every step
        r = maximize(model, layer=3, steps=40, seed=seed, l2=0, blur_sigma=0, jitter=0)
        assert np.all(np.diff(r.trace.mean(axis=1)) > 0)
        # with L2 decay and a blur every 4 steps: it rises from window to window of 12 steps
        r = maximize(model, layer=3, steps=60, seed=seed, jitter=0)
        assert np.all(np.diff(r.trace.mean(axis=1).reshape(5, 12).mean(axis=1)) > 0)
        # the defaults add a random shift each step (the trace is then measured on shifted
        # images): every filter still ends far above where the noise started
        r = maximize(model, layer=3, steps=60, seed=seed)
        assert np.all(r.final > r.start + 0.5)
    assert r.images.shape == (16, 1, 28, 28) and r.trace.shape == (60, 16)
    assert r.box == (8, 22, 8, 22)        # the centre neuron of layer 3 sees 14x14 pixels
    again = maximize(model, layer=3, steps=60, seed=2)
    assert np.array_equal(again.images, r.images) and np.array_equal(again.trace, r.trace)
    other = maximize(model, layer=3, steps=60, seed=6)
    assert not np.allclose(other.images, r.images)
    # a class: its logit goes up
    c = maximize(model, units=[3, 8], steps=40, seed=0, bounds=(-1.0, 3.0))
    assert np.all(c.final > c.start) and c.images.min() >= -1 and c.images.max() <= 3
    assert c.layer is None and c.units == [3, 8]


def test_maximize_progress_and_cancel():
    model = small_cnn()
    seen = []

    def progress(step, total, images):
        seen.append((step, total, images.shape))

    r = maximize(model, layer=0, steps=50, progress=progress, cancel=lambda: len(seen) >= 7)
    assert r.cancelled and r.steps == 7 and len(r.trace) == 7
    assert seen[0] == (1, 50, (3, 2, 9, 9)) and seen[-1][0] == 7


def test_mistakes_are_every_wrong_image_most_confident_first():
    model = small_cnn(seed=4)
    rng = np.random.default_rng(4)
    x = rng.normal(0, 1, (300, 2, 9, 9)).astype(np.float32)
    y = rng.integers(0, 3, 300)
    m = mistakes(model, x, y, batch_size=64)
    probs = model.predict_proba(x)
    wrong = np.flatnonzero(probs.argmax(1) != y)
    assert sorted(m.index.tolist()) == wrong.tolist() and len(m) == len(wrong) > 0
    assert np.all(np.diff(m.confidence) <= 0)
    np.testing.assert_allclose(m.confidence, probs[m.index, m.pred])
    assert np.array_equal(m.true, y[m.index]) and np.all(m.pred != m.true)
    assert m.accuracy == pytest.approx(1 - len(wrong) / 300)


def test_histogram_counts_sum_to_the_parameter_count():
    model = lenet("lenet5")
    hw = weight_histograms(model, bins=17)
    assert sum(int(h.counts.sum()) for h in hw) == model.param_count() == 61706
    assert [h.layer for h in hw] == ["0 Conv2D", "3 Conv2D", "6 Conv2D", "9 Dense", "11 Dense"]
    assert all(len(h.counts) == 17 and len(h.edges) == 18 for h in hw)
    assert gradient_histograms(model) == []            # no backward yet
    x = np.random.default_rng(0).normal(0, 1, (2, 1, 28, 28)).astype(np.float32)
    explain(model, x)
    hg = gradient_histograms(model)
    assert sum(int(h.counts.sum()) for h in hg) == model.param_count()
    # the recorder: each layer's column is the fraction of its values, summing to 1
    hist = HistogramHistory(bins=20)
    hist.add_model(1, model)
    model.layers[0].params["weight"][...] *= 3
    hist.add_model(2, model)
    steps, edges, dens = hist.density("weights", "0 Conv2D", bins=30)
    assert list(steps) == [1, 2] and dens.shape == (2, 30) and len(edges) == 31
    np.testing.assert_allclose(dens.sum(axis=1), 1.0)
    _, e2, d2 = hist.density("weights", "0 Conv2D", bins=10, span=(0.0, 1.0))
    assert e2[0] == 0 and e2[-1] == 1 and np.all(d2.sum(axis=1) < 0.9)   # negatives left out
    _, q = hist.quantiles("weights", "0 Conv2D", (0.0, 1.0))
    assert q[1, 1] - q[1, 0] > 2.5 * (q[0, 1] - q[0, 0])   # weights x3: 3x the spread


def test_clear_errors():
    model = lenet("lenet5")
    x = np.zeros((1, 28, 28), np.float32)
    with pytest.raises(ExplainError, match=r"layer 5 is not a Conv2D.*\[0, 3, 6\]"):
        explain(model, x, cam_layer=5)
    with pytest.raises(ExplainError, match="class 12 is out of range"):
        explain(model, x, target=12)
    with pytest.raises(ExplainError, match="expected"):
        explain(model, np.zeros((1, 27, 28), np.float32))
    with pytest.raises(ExplainError, match="size must be an integer in 1..28"):
        occlusion(model, x, size=29)
    with pytest.raises(ExplainError, match="units .* out of range; layer 0 has 6 filters"):
        maximize(model, layer=0, units=[6])
    mlp = Sequential([Dense(3)], (4,))
    with pytest.raises(ExplainError, match="needs a Conv2D"):
        default_cam_layer(mlp)
    # saliency alone works on an MLP
    e = explain(mlp, np.ones(4, np.float32), target=1, cam_layer=None)
    np.testing.assert_allclose(e.gradient[0], np.array(mlp.layers[0].params["weight"])[1])


def test_clone_model_is_independent():
    model = lenet("lenet5")
    twin = clone_model(model)
    x = np.random.default_rng(0).normal(0, 1, (1, 1, 28, 28)).astype(np.float32)
    np.testing.assert_array_equal(twin.predict_logits(x), model.predict_logits(x))
    twin.layers[0].params["weight"][...] = 0
    assert np.abs(model.layers[0].params["weight"]).max() > 0


def test_gradient_x_input_from_a_baseline():
    model = lenet("lenet5")
    x = np.random.default_rng(5).normal(0, 1, (2, 1, 28, 28)).astype(np.float32)
    plain = explain(model, x, cam_layer=None)
    black = explain(model, x, cam_layer=None, baseline=[-0.4])
    np.testing.assert_allclose(black.grad_x_input, (plain.gradient * (x + 0.4)).sum(1), atol=1e-6)
    np.testing.assert_allclose(plain.grad_x_input, (plain.gradient * x).sum(1), atol=1e-6)


def test_bench_explain_group_reports_its_three_figures(capsys):
    import json

    from nnviz.cli import main
    assert main(["bench", "--quick", "--json", "--only", "explain", "--no-torch"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["results"]
    assert [r["name"] for r in rows] == ["explain-gradients", "explain-occlusion",
                                         "explain-maximize"]
    for r in rows:        # figures, not speed targets: those are read off `nnviz bench`
        assert "error" not in r and r["nnviz"] > 0 and r["target"]


def test_the_api_never_imports_qt():
    import subprocess
    import sys
    code = ("import sys, nnviz.explain, nnviz.explain.timing; "
            "print([m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_saliency_matches_finite_differences_through_every_layer_kind():
    from nnviz.engine import AvgPool2D, BatchNorm, Dropout, LeakyReLU, MaxPool2D, Residual, Sigmoid
    model = Sequential([Conv2D(4, 3, padding=1), BatchNorm(), LeakyReLU(0.1),
                        Residual([Conv2D(4, 3, padding=1), Sigmoid()]), MaxPool2D(2),
                        Conv2D(3, 2), AvgPool2D(2), Dropout(0.5), Flatten(), Dense(3)],
                       (2, 8, 8), seed=3, dtype=np.float64)
    rng = np.random.default_rng(7)
    bn = model.layers[1]
    bn.buffers["running_mean"][...] = rng.normal(0, 0.3, 4)   # eval mode uses these
    bn.buffers["running_var"][...] = rng.uniform(0.5, 2, 4)
    x = rng.normal(0, 1, (2, 8, 8))
    e = explain(model, x, target=2, cam_layer=5)
    eps, fd = 1e-6, np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        fd[i] = (model.predict_logits(xp[None])[0, 2] - model.predict_logits(xm[None])[0, 2]) / (2 * eps)
    np.testing.assert_allclose(e.gradient[0], fd, rtol=1e-5, atol=1e-8)
    assert e.grad_cam.shape == (1, 8, 8) and e.cam_maps.shape == (1, 3, 3, 3)
