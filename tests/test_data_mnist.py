"""The real MNIST files, when the shared copy is available."""

import os
import time
from pathlib import Path

import numpy as np
import pytest

from nnviz.data import load_dataset


def _shared_mnist():
    p = Path(__file__).resolve().parents[2] / "shared/datasets/mnist"
    if not p.is_dir() and os.environ.get("NNVIZ_SHARED_MNIST"):
        p = Path(os.environ["NNVIZ_SHARED_MNIST"])
    return p if (p / "train-images-idx3-ubyte.gz").is_file() or (p / "train-images-idx3-ubyte").is_file() else None


@pytest.mark.skipif(_shared_mnist() is None, reason="shared MNIST copy not available")
def test_real_mnist(tmp_path):
    (tmp_path / "mnist").symlink_to(_shared_mnist(), target_is_directory=True)
    t0 = time.process_time()
    d = load_dataset("mnist", data_dir=tmp_path)
    cpu = time.process_time() - t0
    assert len(d.y_train) == 60000 and len(d.y_test) == 10000
    assert d.x_train.shape == (60000, 1, 28, 28) and d.x_train.dtype == np.float32
    assert np.bincount(d.y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert d.normalization["mean"][0] == pytest.approx(0.1307, abs=5e-5)
    assert d.normalization["std"][0] == pytest.approx(0.3081, abs=5e-5)
    assert cpu < 2.0  # CPU time (wall time depends on machine load); ~0.5 s measured
