"""The backend contract (nnviz/engine/backend/contract.py): the CPU backend provides it
and its capabilities (the CUDA backend is checked under the simulator, in
tests/cuda_sim_checks.py "contract"); callers choose fused paths by capability; importing
the engine changes no process-wide setting."""
import subprocess
import sys
from types import SimpleNamespace

import numpy as np

from nnviz.data import make_toy
from nnviz.engine import model_from_spec
from nnviz.engine.backend import contract, cpu
from nnviz.train import Trainer


def _like_cpu(**changes):
    ns = SimpleNamespace(**{n: getattr(cpu, n) for n in dir(cpu) if not n.startswith("__")})
    for k, v in changes.items():
        if v is None:
            delattr(ns, k)
        else:
            setattr(ns, k, v)
    return ns


def test_cpu_backend_conforms_and_declares_its_fused_kernels():
    assert contract.conforms(cpu) == []
    assert cpu.capabilities == {"fused_conv_relu", "fused_mlp"}


def test_conforms_names_what_is_missing_or_wrong():
    assert contract.conforms(_like_cpu(sq_norm=None)) == ["Backend.sq_norm is missing"]
    # a fused kernel missing behind a declared capability
    assert contract.conforms(_like_cpu(maxpool_relu_backward=None)) == [
        "FusedConvReLU.maxpool_relu_backward is missing"]
    assert contract.conforms(_like_cpu(capabilities=frozenset(), maxpool_relu_backward=None)) == []
    bad = contract.conforms(_like_cpu(relu_backward=lambda x, gy: gy))
    assert bad == ["Backend.relu_backward('x', 'y', 'gy') but the module has ('x', 'gy')"]
    assert contract.conforms(_like_cpu(capabilities={"fused_mlp"})) == ["capabilities is not a frozenset"]
    assert contract.conforms(_like_cpu(capabilities=frozenset({"warp"}))) == ["unknown capability 'warp'"]


def test_a_backend_without_capabilities_gets_the_layer_paths():
    spec = {"input_shape": [2], "layers": [{"type": "Dense", "out_features": 6}, {"type": "Tanh"},
                                           {"type": "Dense", "out_features": 3}]}
    data = make_toy("spiral", n=256, classes=3)
    plain = _like_cpu(capabilities=frozenset(), mlp_step=None, mlp_forward=None,
                      maxpool_relu_backward=None)
    runs = []
    for B in (cpu, plain):
        model = model_from_spec(spec, seed=1)
        model.B = B
        tr = Trainer(model, data, batch_size=32, lr=0.1, momentum=0.9)
        losses = [tr.step()[0] for _ in range(8)]
        grid = model.forward(np.random.default_rng(2).standard_normal((3000, 2)).astype(np.float32))
        runs.append((losses, grid, tr.uses_fused_step))
    (l1, g1, fused1), (l2, g2, fused2) = runs
    assert fused1 and not fused2
    np.testing.assert_allclose(l1, l2, rtol=1e-5)
    np.testing.assert_allclose(g1, g2, rtol=1e-5, atol=2e-6)


_SIDE_EFFECTS = r"""
import numpy as np
import nnviz.engine.backend.cpu, nnviz.train
from nnviz.engine import load_preset, process
load_preset("mlp2").forward(np.zeros((1, 2), np.float32))
print(process.state)
from nnviz.cli import main
main(["info", "mlp2"])
print(process.state)
"""


def test_process_settings_come_from_the_entry_point_not_an_import():
    out = subprocess.run([sys.executable, "-c", _SIDE_EFFECTS], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0] == "None"                       # importing and running the engine: untouched
    assert out[-1] == ("True" if sys.platform.startswith("linux") else "False")   # `nnviz` applies them
