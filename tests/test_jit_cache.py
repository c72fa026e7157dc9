"""Installed read-only (issue 20): when neither the package folder nor NUMBA_CACHE_DIR can be
written, kernels are cached in nnviz's user cache folder, or compiled without a cache; the
first model build never fails with Numba's "no locator available"."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import numba, numpy as np
import nnviz.engine.backend.cpu_kernels as k
import nnviz.engine.backend.cpu_mlp as m
from nnviz.engine.backend import jitcache
print("cache", k._opts["cache"], m._opts["cache"])
print("dir", numba.config.CACHE_DIR)
print("file", k.__file__)
from nnviz.engine import model_from_spec     # the first model build: compiles, caches or not
net = model_from_spec({"input_shape": [3], "layers": [{"type": "Dense", "out_features": 2}]})
print("out", net.forward(np.ones((4, 3), np.float32)).shape)
"""


def _read_only_copy(tmp_path):
    """The package where no folder can be created: each __pycache__ is a plain file (this
    blocks root too, unlike chmod)."""
    dst = tmp_path / "site" / "nnviz"
    shutil.copytree(ROOT / "nnviz", dst, ignore=shutil.ignore_patterns("__pycache__"))
    for d in [dst, *[p for p in dst.rglob("*") if p.is_dir()]]:
        (d / "__pycache__").write_bytes(b"")
    return dst.parent


def _run(site, **env):
    full = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    full.update(PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1", **env)
    p = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=full, cwd=site,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    return dict(line.split(" ", 1) for line in p.stdout.splitlines())


@pytest.fixture
def site(tmp_path):
    return _read_only_copy(tmp_path)


def test_nothing_writable_compiles_without_cache(site, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_bytes(b"")          # a file: nothing can be created below it
    out = _run(site, NUMBA_CACHE_DIR=str(blocked / "numba"), HOME=str(blocked),
               XDG_CACHE_HOME=str(blocked / "cache"))
    assert out["file"].startswith(str(site)), out
    assert out["cache"] == "False False", out
    assert out["out"] == "(4, 2)"


def test_user_cache_folder_is_used_when_the_package_is_read_only(site, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_bytes(b"")
    out = _run(site, NUMBA_CACHE_DIR=str(blocked / "numba"), HOME=str(blocked),
               XDG_CACHE_HOME=str(tmp_path / "xdg"))
    assert out["cache"] == "True True"
    assert out["dir"] == str(tmp_path / "xdg" / "nnviz" / "numba")


def test_the_user_folder_is_chosen_by_the_writability_check(tmp_path, monkeypatch):
    from nnviz.engine.backend import jitcache
    monkeypatch.setattr(jitcache, "writable", lambda folder: Path(folder) == tmp_path / "u")
    monkeypatch.setattr(jitcache, "user_cache_dir", lambda: tmp_path / "u")
    from numba.core import config
    monkeypatch.setattr(config, "CACHE_DIR", "")
    monkeypatch.setenv("NUMBA_CACHE_DIR", "")
    jitcache.cache_enabled.cache_clear()
    try:
        assert jitcache.cache_enabled() is True
        assert str(tmp_path / "u") == config.CACHE_DIR
    finally:
        jitcache.cache_enabled.cache_clear()
