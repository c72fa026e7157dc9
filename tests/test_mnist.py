"""LeNet-5 on the real MNIST files (skips when ../shared/datasets/mnist is absent)."""
import os
from pathlib import Path

import pytest

from nnviz.data import load_dataset
from nnviz.engine import load_preset
from nnviz.train import Trainer

MNIST = Path(os.environ.get("NNVIZ_SHARED_MNIST",
                            Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist"))


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    if not (MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real MNIST not found at {MNIST}")
    d = tmp_path_factory.mktemp("data")
    (d / "mnist").symlink_to(MNIST)
    return load_dataset("mnist", data_dir=d)


def test_lenet5_one_epoch_reaches_98_percent(mnist):
    assert len(mnist.y_train) == 60000 and len(mnist.y_test) == 10000
    model = load_preset("lenet5", seed=0)
    tr = Trainer(model, mnist, optimizer="sgd", lr=0.05, momentum=0.9, batch_size=64, seed=0)
    row = tr.run_epoch()
    print(f"LeNet-5 MNIST 1 epoch: test acc {row['test_accuracy']:.4f}, "
          f"{tr.samples / tr.seconds:.0f} samples/s")
    assert row["test_accuracy"] >= 0.98
