"""The CPU backend's fused fast paths give the numbers of the plain layer-by-layer path.

* plain MLPs: the whole training step in one kernel, and large eval batches (decision grids)
  in one parallel kernel;
* CNNs: Conv2D + ReLU forward in one kernel, ReLU + MaxPool2D backward in one pass.
"""
import subprocess
import sys

import numpy as np
import pytest
from numba import njit

from nnviz.data.dataset import Dataset
from nnviz.engine import fused_mlp, model_from_spec
from nnviz.engine.backend import cpu_mlp
from nnviz.train import Trainer


@njit(cache=False)
def _tanh_all(x, out):
    for i in range(x.shape[0]):
        out[i] = cpu_mlp._tanh_rational(x[i])


def test_rational_tanh_within_documented_error():
    x = np.linspace(-12, 12, 200_001).astype(np.float32)
    out = np.empty_like(x)
    _tanh_all(x, out)
    err = np.abs(out.astype(np.float64) - np.tanh(x.astype(np.float64)))
    assert err.max() <= 3.5e-7
    assert np.all(np.abs(out) <= 1) and out[0] == -out[-1]


def _mlp(acts, dims=(3, 7, 5, 4), seed=0):
    layers = []
    for d, a in zip(dims[1:], acts + [None]):
        layers.append({"type": "Dense", "out_features": d})
        if a:
            layers.append({"type": a})
    return model_from_spec({"input_shape": [dims[0]], "layers": layers}, seed=seed)


@pytest.mark.parametrize("acts", [["Tanh", "Tanh"], ["ReLU", "Sigmoid"], ["Sigmoid", "ReLU"]])
def test_large_batch_forward_matches_layer_path(acts):
    # odd widths (7, 5: not multiples of 4; 3 inputs: fewer than 4) and a row count that is
    # not a multiple of the 1536-row block exercise every remainder loop of the kernel
    model = _mlp(acts)
    x = np.random.default_rng(1).standard_normal((5003, 3)).astype(np.float32) * 3
    fused = model.forward(x)
    assert fused_mlp.forward(model, x) is not None            # the fused kernel ran
    by_layer = np.concatenate([model.forward(x[i:i + 1000]) for i in range(0, len(x), 1000)])
    np.testing.assert_allclose(fused, by_layer, rtol=1e-5, atol=2e-6)


def test_large_batch_forward_follows_weight_changes():
    # the fused path keeps a flat copy of the weights: in-place updates (training) and
    # replaced arrays (someone assigns layer.params) must both show in the next call
    model = _mlp(["Tanh", "ReLU"])
    x = np.random.default_rng(4).standard_normal((3000, 3)).astype(np.float32)
    before = model.forward(x)
    dense = model.layers[0]
    dense.params["weight"] *= 2                                   # in place
    doubled = model.forward(x)
    assert not np.allclose(before, doubled)
    dense.params["weight"] = dense.params["weight"] / 2          # a new array
    np.testing.assert_allclose(model.forward(x), before, rtol=1e-6, atol=1e-6)
    by_layer = np.concatenate([model.forward(x[i:i + 1000]) for i in range(0, 3000, 1000)])
    np.testing.assert_allclose(model.forward(x), by_layer, rtol=1e-5, atol=2e-6)


def test_forward_hook_disables_fused_forward():
    model = _mlp(["Tanh", "Tanh"])
    x = np.random.default_rng(2).standard_normal((4096, 3)).astype(np.float32)
    seen = []
    remove = model.add_forward_hook(lambda layer, y: seen.append(y.shape))
    model.forward(x)
    remove()
    assert seen == [(4096, 7), (4096, 7), (4096, 5), (4096, 5), (4096, 4)]


def _points(n=600, d=3, k=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    y = (np.abs(x[:, 0] * 2 + x[:, 1]).astype(np.int64)) % k
    return Dataset(name="pts", x_train=x, y_train=y, x_test=x[:50], y_test=y[:50],
                   class_names=[str(i) for i in range(k)])


@pytest.mark.parametrize("opt,kw", [("sgd", dict(lr=0.05, momentum=0.9)),
                                    ("sgd", dict(lr=0.05, momentum=0.9, nesterov=True)),
                                    ("adam", dict(lr=0.01))])
def test_fused_mlp_step_matches_layer_path(opt, kw):
    data = _points()
    runs = []
    for fused in (True, False):
        tr = Trainer(_mlp(["Tanh", "ReLU"]), data, optimizer=opt, batch_size=32,
                     fused="auto" if fused else "off", **kw)
        losses = [tr.step()[0] for _ in range(40)]
        runs.append((losses, [p.copy() for p in tr.model.parameters()], tr.uses_fused_step))
    (l1, p1, used1), (l2, p2, used2) = runs
    assert used1 and not used2
    np.testing.assert_allclose(l1, l2, rtol=1e-5)
    for a, b in zip(p1, p2):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# ---- Conv2D + ReLU, ReLU + MaxPool2D ------------------------------------------------------------
CNN = {"input_shape": [2, 13, 13], "layers": [
    {"type": "Conv2D", "out_channels": 5, "kernel_size": 3, "padding": 1}, {"type": "ReLU"},
    {"type": "MaxPool2D", "kernel_size": 2},                       # 2x2 kernel, 13 -> 6
    {"type": "Conv2D", "out_channels": 4, "kernel_size": 3, "stride": 2}, {"type": "ReLU"},
    {"type": "MaxPool2D", "kernel_size": 2, "stride": 1},          # generic path, overlapping
    {"type": "Conv2D", "out_channels": 6, "kernel_size": 1}, {"type": "ReLU"},
    {"type": "Flatten"}, {"type": "Dense", "out_features": 3}]}


def _images(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2, 13, 13)).astype(np.float32)
    y = rng.integers(0, 3, n)
    return Dataset(name="img", x_train=x, y_train=y, x_test=x[:8], y_test=y[:8],
                   class_names=["a", "b", "c"])


@pytest.mark.parametrize("spec", [CNN, "lenet5-relu"])
@pytest.mark.parametrize("batch", [1, 16])
def test_fused_cnn_is_bit_identical_to_layer_by_layer(spec, batch):
    if spec == "lenet5-relu":
        from nnviz.bench import LENET5_RELU as spec
        rng = np.random.default_rng(3)
        data = Dataset(name="m", x_train=rng.standard_normal((64, 1, 28, 28)).astype(np.float32),
                       y_train=rng.integers(0, 10, 64), x_test=np.zeros((1, 1, 28, 28), np.float32),
                       y_test=np.zeros(1, np.int64), class_names=[str(i) for i in range(10)])
    else:
        data = _images()
    runs = []
    for fuse in (True, False):
        model = model_from_spec(spec, seed=0)
        model.fuse = fuse
        tr = Trainer(model, data, batch_size=batch, lr=0.05, momentum=0.9)
        losses = [tr.step()[0] for _ in range(6)]
        runs.append((losses, [p.copy() for p in model.parameters()],
                     model.forward(data.x_train[:5])))
    assert runs[0][0] == runs[1][0]
    assert all(np.array_equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))
    assert np.array_equal(runs[0][2], runs[1][2])


def test_fused_cnn_keeps_hooks_and_activations():
    model = model_from_spec(CNN, seed=0)
    x = _images().x_train[:4]
    called = []
    model.add_backward_hook(lambda layer: called.append(layer.index))
    model.forward(x, train=True)
    model.backward(np.ones((4, 3), np.float32))
    assert called == list(range(len(model.layers) - 1, -1, -1))
    acts = model.activations(x)
    assert [label for label, _ in acts][1:4] == ["0 Conv2D", "1 ReLU", "2 MaxPool2D"]
    pre, post = acts[1][1], acts[2][1]
    assert (pre < 0).any() and np.array_equal(post, np.maximum(pre, 0))


_FAULTS = r"""
import resource, numpy as np
from nnviz.bench import LENET5_RELU
from nnviz.data.dataset import Dataset
from nnviz.engine import model_from_spec
from nnviz.engine.process import tune_process
from nnviz.train import Trainer
tuned = tune_process()   # what the entry points do
rng = np.random.default_rng(0)
x = rng.standard_normal((512, 1, 28, 28)).astype(np.float32)
d = Dataset(name="s", x_train=x, y_train=rng.integers(0, 10, 512), x_test=x[:1],
            y_test=np.zeros(1, np.int64), class_names=[str(i) for i in range(10)])
tr = Trainer(model_from_spec(LENET5_RELU), d, batch_size=64, lr=0.01, momentum=0.9)
for _ in range(10):
    tr.step()
r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    tr.step()
print(tuned, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0) / 20)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc allocator setting")
def test_training_steps_reuse_memory_instead_of_faulting_it_in():
    # With glibc's defaults a LeNet-5 step at batch 64 unmapped and re-faulted ~600 pages.
    out = subprocess.run([sys.executable, "-c", _FAULTS], capture_output=True, text=True,
                         check=True).stdout.split()
    tuned, faults = out[0] == "True", float(out[1])
    if not tuned:
        pytest.skip("not glibc")
    assert faults < 60, faults


@pytest.mark.parametrize("shape", [(3, 2, 6, 6), (2, 3, 5, 7), (64, 6, 28, 28)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avgpool2x2_fast_path_is_bit_identical_to_generic_kernel(shape, dtype):
    from nnviz.engine.backend import cpu_kernels as K
    from nnviz.engine.backend import get
    B = get()
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape).astype(dtype)
    y = B.avgpool_forward(x, (2, 2), (2, 2), {})
    ref = np.empty_like(y)
    K.avgpool_forward(x, 2, 2, 2, 2, ref)
    assert np.array_equal(y, ref)
    gy = rng.standard_normal(y.shape).astype(dtype)
    gx = B.avgpool_backward(gy, x.shape, (2, 2), (2, 2), {})
    ref = np.empty_like(gx)
    K.avgpool_backward(gy, 2, 2, 2, 2, ref)
    assert np.array_equal(gx, ref)


def test_fused_setting_is_explicit_and_switchable():
    data = _points()
    tr = Trainer(_mlp(["Tanh", "ReLU"]), data, batch_size=32)
    tr.step()
    assert tr.fused == "auto" and tr.uses_fused_step
    tr.fused = "off"                  # from the next step on: layer by layer, same numbers
    assert not tr.uses_fused_step
    ref = Trainer(_mlp(["Tanh", "ReLU"]), data, batch_size=32, fused="off")
    ref.step()
    np.testing.assert_allclose(tr.step()[0], ref.step()[0], rtol=1e-5)
    tr.fused = "auto"                 # and back: the fused step sees what the layer path left
    np.testing.assert_allclose(tr.step()[0], ref.step()[0], rtol=1e-5)
    assert tr.uses_fused_step
    for a, b in zip(tr.model.gradients() + tr.model.parameters(),
                    ref.model.gradients() + ref.model.parameters()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)   # the layers see the fused step's arrays
    with pytest.raises(ValueError, match="fused must be one of auto, off"):
        Trainer(_mlp(["Tanh"]), data, fused="yes")
    hooked = Trainer(_mlp(["Tanh"]), data, batch_size=32)
    remove = hooked.model.add_backward_hook(lambda layer: None)
    hooked.step()
    assert not hooked.uses_fused_step   # a hook needs the layer path
    remove()
