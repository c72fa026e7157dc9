"""`nnviz bench` runs and reports; speed targets live in benchmarks/, not in tests.

Each engine is timed in a worker process of its own (PyTorch's libgomp.so.1 must not stand
in for the one Numba's threads use), so these tests check which process ran what, and that
the workers are gone afterwards.
"""
import importlib.util
import json
import os
import sys

import pytest

from nnviz.bench import report, worker
from nnviz.cli import main

HAVE_TORCH = importlib.util.find_spec("torch") is not None   # found, not imported here


def _bench_json(capsys, *argv):
    rc = main(["bench", "--quick", "--json", *argv])
    assert rc == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_bench_quick_mlp_json(capsys):
    result = _bench_json(capsys, "--only", "mlp", "--no-torch")
    rows = result["results"]
    assert [r["name"] for r in rows] == ["mlp-b10", "mlp-b32"]
    for r in rows:
        assert "error" not in r, r.get("error")
        assert r["nnviz"] > 0
        assert r["pytorch"] is None  # --no-torch
    assert result["machine"]["cores"] >= 1
    assert result["machine"]["numba_threads"] >= 1
    assert "torch" not in result["machine"]
    # --no-torch: no torch worker at all
    assert result["isolation"] == {"nnviz_process_has_torch": False,
                                   "torch_process_has_numba": None}
    procs = result["processes"]
    assert procs["torch"] is None
    assert procs["bench"] == os.getpid() != procs["nnviz"]
    assert _gone(procs["nnviz"])


def test_bench_grid_each_engine_in_its_own_process(capsys):
    torch_before = "torch" in sys.modules
    result = _bench_json(capsys, "--only", "grid")
    [row] = result["results"]
    assert row["name"] == "grid" and "error" not in row, row.get("error")
    assert row["nnviz"] > 0
    iso, procs = result["isolation"], result["processes"]
    assert iso["nnviz_process_has_torch"] is False
    assert procs["bench"] == os.getpid()
    assert procs["nnviz"] not in (None, os.getpid())
    if HAVE_TORCH:
        assert row["pytorch"] > 0 and row["ratio"] > 0
        assert iso["torch_process_has_numba"] is False
        assert procs["torch"] not in (None, os.getpid(), procs["nnviz"])
        m = result["machine"]
        assert m["torch_threads"] == m["numba_threads"]
        assert m["torch_cpu_capability"]        # e.g. AVX2 or AVX512
    else:
        assert row["pytorch"] is None
    # what Numba compiled for, and the CPU's extensions (what decides the kernels' speed)
    assert result["machine"]["numba_target"]
    assert isinstance(result["machine"]["vector_extensions"], list)
    # the driver itself never loads torch, and both workers have exited (no zombies)
    assert ("torch" in sys.modules) == torch_before
    assert all(_gone(p) for p in (procs["nnviz"], procs["torch"]) if p)


def test_bench_without_torch_installed(capsys, tmp_path, monkeypatch):
    fake = tmp_path / "torch"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('No module named torch')\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p))
    result = _bench_json(capsys, "--only", "grid")
    [row] = result["results"]
    assert "error" not in row, row.get("error")
    assert row["nnviz"] > 0 and row["pytorch"] is None and row["ratio"] is None
    assert "torch" not in result["machine"]
    assert result["isolation"]["torch_process_has_numba"] is False   # it ran, found no torch


def test_worker_survives_a_failing_request_and_exits_on_close():
    w = worker.Worker("nnviz", {})
    try:
        assert w.call(cmd="init", backend="cpu")["numba_threads"] >= 1
        with pytest.raises(worker.WorkerError, match="nosuch-preset"):
            w.call(cmd="setup", fig={"kind": "grid", "spec": "nosuch-preset"}, block_s=0.01)
        with pytest.raises(worker.WorkerError, match="no figure"):
            w.call(cmd="block")
        assert w.call(cmd="info")["has_torch"] is False
        assert w.alive()
    finally:
        w.close()
    assert w.proc.returncode == 0


def test_bench_table_states_isolation():
    result = {"machine": {"cpu": "x", "cores": 2, "numpy": "1", "numba": "1"}, "repeats": 3,
              "results": [], "extra": {},
              "isolation": {"nnviz_process_has_torch": False, "torch_process_has_numba": False},
              "processes": {"bench": 1, "nnviz": 2, "torch": 3}}
    text = report.table(result)
    assert "each engine in its own process" in text
    assert text.splitlines()[-1] == ("processes: nnviz in pid 2 (torch not loaded), "
                                     "PyTorch in pid 3 (numba not loaded)")


def test_bench_table_names_the_vector_extensions():
    result = {"machine": {"cpu": "x", "cores": 2, "numpy": "1", "numba": "1",
                          "vector_extensions": ["avx", "avx2", "fma"],
                          "numba_target": "haswell (avx, avx2, fma)",
                          "torch_cpu_capability": "AVX2"},
              "repeats": 3, "results": [], "extra": {}}
    assert report.table(result).splitlines()[1] == (
        "vector extensions: CPU avx, avx2, fma; Numba compiles for haswell (avx, avx2, fma); "
        "PyTorch kernels AVX2")


def test_cpu_flags_and_numba_target(tmp_path, monkeypatch):
    from numba.core import config

    from nnviz.engine.backend import cpu_target
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f bmi2\n")
    assert cpu_target.cpu_flags(str(info)) == ["sse4_2", "avx", "avx2", "fma", "avx512f"]
    assert cpu_target.cpu_flags(str(tmp_path / "missing")) == []
    # NUMBA_CPU_NAME / NUMBA_CPU_FEATURES (AVX2 code on an AVX-512 host) are what is reported
    monkeypatch.setattr(config, "CPU_NAME", "haswell")
    monkeypatch.setattr(config, "CPU_FEATURES", "+64bit,+avx,+avx2,+fma,-avx512f")
    cpu_target.numba_target.cache_clear()
    try:
        assert cpu_target.numba_target() == ("haswell", ("avx", "avx2", "fma"))
        monkeypatch.delenv("NNVIZ_VECTOR_BITS", raising=False)
        assert cpu_target.vector_bits() == 256
    finally:
        cpu_target.numba_target.cache_clear()


def test_bench_unknown_name(capsys):
    assert main(["bench", "--only", "nosuch", "--no-torch"]) == 2


def test_figure_catalogue_selection():
    from nnviz.bench.figures import FIGURES, select
    assert select("lenet5", quick=False) == ["lenet5-b1", "lenet5-b16", "lenet5-b64", "lenet5-b256"]
    assert select("mlp,grid,mlp-b10", quick=True) == ["mlp-b10", "mlp-b32", "grid"]
    full, quick = select(None, quick=False), select(None, quick=True)
    assert "memory" not in full and "memory" in FIGURES          # only when asked
    assert set(full) - set(quick) == {"coldstart", "warmstart", "window", "app-inspector",
                                      "app-playground", "app-compare"}
    assert select("app", quick=False) == ["app-inspector", "app-playground", "app-compare"]
    for f in FIGURES.values():                                    # paired plans are plain data
        assert f.where in ("paired", "worker", "driver")
        if f.where == "paired":
            assert json.loads(json.dumps(f.run()))["kind"] in ("train", "grid", "featuremaps")
