"""The CUDA backend, checked against the CPU backend under numba's CUDA simulator.

numba reads NUMBA_ENABLE_CUDASIM when it is first imported, and this pytest
process has imported numba already (with the simulator off), so the checks run
in a subprocess: tests/cuda_sim_checks.py, one line of output per check.
No GPU is needed (nor used): the simulator runs each CUDA thread as Python.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nnviz.engine import backend
from nnviz.engine.backend import BackendError

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve().parent / "cuda_sim_checks.py"
CHECKS = ["contract", "arrays", "gemm_variants", "dense", "conv2d", "conv_transpose2d", "pooling",
          "activations", "batchnorm", "dropout", "losses", "optimizers", "norms", "end_to_end"]


def _env(**extra):
    env = dict(os.environ)
    env.pop("NNVIZ_DISABLE_CUDA", None)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory):
    sigs = tmp_path_factory.mktemp("cuda") / "signatures.json"
    proc = subprocess.run([sys.executable, str(SCRIPT)], cwd=str(ROOT),
                          env=_env(NUMBA_ENABLE_CUDASIM="1", NNVIZ_CUDA_SIGNATURES=str(sigs)),
                          capture_output=True, text=True, timeout=600)
    return proc, sigs


def test_cuda_backend_matches_cpu_under_simulator(sim_run):
    proc, _ = sim_run
    out = proc.stdout
    passed = set(re.findall(r"^PASS (\w+)", out, re.M))
    failed = re.findall(r"^FAIL (\w+): (.*)$", out, re.M)
    detail = out + "\n--- stderr (tail) ---\n" + proc.stderr[-4000:]
    assert not failed, f"CUDA checks failed: {failed}\n{detail}"
    assert proc.returncode == 0, detail
    missing = [c for c in CHECKS if c not in passed]
    assert not missing, f"checks that did not run: {missing}\n{detail}"
    assert re.search(r"^SUMMARY passed=\d+ failed=0", out, re.M), detail


def _nvvm_missing():
    try:
        from numba.cuda.cudadrv.nvvm import NVVM
        NVVM()
    except Exception as e:  # no CUDA toolkit / libNVVM on this machine
        return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return None


def test_kernels_compile_to_ptx(sim_run):
    """Every kernel, with the argument types the checks launched it with, compiles
    for sm_90 through NVVM: catches what the simulator (plain Python) cannot."""
    why = _nvvm_missing()
    if why:
        pytest.skip(f"libNVVM not found ({why}); install nvidia-cuda-nvcc-cu12 and set "
                    f"CUDA_HOME to its nvidia/cuda_nvcc folder to run this check")
    proc, sigs = sim_run
    assert sigs.exists(), proc.stdout + proc.stderr[-2000:]
    ptx = subprocess.run([sys.executable, str(ROOT / "tests" / "cuda_ptx_check.py"), str(sigs)],
                         cwd=str(ROOT), env=_env(), capture_output=True, text=True, timeout=600)
    assert ptx.returncode == 0, ptx.stdout + ptx.stderr[-3000:]
    assert "WARN" not in ptx.stdout, ptx.stdout
    assert re.search(r"^PTX SUMMARY kernels=\d+ failed=0", ptx.stdout, re.M), ptx.stdout


def _no_gpu(monkeypatch):
    # Here the simulator is off and this machine has no GPU; on a machine that has
    # one, hide it so the "no GPU" path is what gets tested.
    if backend.cuda_available():
        monkeypatch.setenv("NNVIZ_DISABLE_CUDA", "1")


def test_load_cuda_without_gpu_raises(monkeypatch):
    _no_gpu(monkeypatch)
    with pytest.raises(BackendError) as e:
        backend.load("cuda")
    msg = str(e.value)
    assert "cuda" in msg and "no CUDA GPU" in msg and "--backend cpu" in msg
    assert backend.available() == ["cpu"]
    assert backend.load("auto").name == "cpu"


def test_cli_train_cuda_without_gpu_is_one_line_error(monkeypatch, capsys):
    try:
        import nnviz.data  # noqa: F401
    except ImportError as e:
        pytest.skip(f"nnviz.data is not there yet (being written): {e}")
    from nnviz.cli import main
    _no_gpu(monkeypatch)
    before = backend._current
    try:
        rc = main(["train", "--backend", "cuda", "--data", "xor", "--epochs", "1"])
    finally:
        backend._current = before
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.strip()]
    assert rc == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("nnviz: error:") and "cuda" in lines[0], err
