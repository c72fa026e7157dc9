"""The bundled sets: the generator is deterministic and the committed files match the docs."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnviz.data import list_datasets, load_dataset

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "make_datasets.py"


def _run(out):
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--n", "20"], check=True,
                   capture_output=True, timeout=120)


def test_generator_is_byte_identical(tmp_path):
    _run(tmp_path / "a")
    _run(tmp_path / "b")
    for name in ("shapes.h5", "color-shapes.h5"):
        a, b = (tmp_path / "a" / name).read_bytes(), (tmp_path / "b" / name).read_bytes()
        assert len(a) > 1000 and a == b, name


def test_generated_small_set_loads(tmp_path, monkeypatch):
    _run(tmp_path)
    monkeypatch.setenv("NNVIZ_BUNDLED_DIR", str(tmp_path))
    d = load_dataset("shapes")
    assert d.x_train.shape == (200, 1, 28, 28) and d.x_test.shape == (40, 1, 28, 28)
    assert np.bincount(d.y_train).tolist() == [20] * 10
    c = load_dataset("color-shapes")
    assert c.x_train.shape == (200, 3, 32, 32) and np.bincount(c.y_test).tolist() == [4] * 10


@pytest.mark.parametrize("name,shape", [("shapes", (1, 28, 28)), ("color-shapes", (3, 32, 32))])
def test_committed_files(name, shape):
    path = ROOT / "datasets" / f"{name}.h5"
    assert path.is_file(), f"{path} missing: run python scripts/make_datasets.py"
    import h5py

    with h5py.File(path, "r") as f:
        assert f.attrs["generator"] == "scripts/make_datasets.py"
        assert "seed" in f.attrs and len(f.attrs["description"]) > 20
        assert f["x_train"].dtype == np.uint8 and f["x_train"].shape == (10000,) + shape
        assert f["x_test"].shape == (2000,) + shape
    d = load_dataset(name)
    assert d.name == name and d.input_shape == shape and d.num_classes == 10
    assert len(set(d.class_names)) == 10
    assert np.bincount(d.y_train).tolist() == [1000] * 10
    assert np.bincount(d.y_test).tolist() == [200] * 10
    assert len(d.normalization["mean"]) == shape[0]
    assert abs(float(d.x_train.mean())) < 1e-3
    row = {r["name"]: r for r in list_datasets()}[name]
    assert row["present"] and row["n_train"] == 10000 and row["input_shape"] == list(shape)


def test_committed_files_small():
    sizes = [(ROOT / "datasets" / f"{n}.h5").stat().st_size for n in ("shapes", "color-shapes")]
    assert sum(sizes) <= 8 * 1024 * 1024
