"""LeNet-5 on the real MNIST files (skips when ../shared/datasets/mnist is absent).

The recipe (1 epoch, batch 64, SGD lr 0.05, momentum 0.9) lands between 97.4% and 98.2% test
accuracy depending on the seed, in PyTorch too; with the default (PyTorch's) initialisation
nnviz gives 97.39%, then 98.39% after a second epoch. tests/test_torch_parity.py runs both.
"""
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


def test_lenet5_learns_mnist(mnist):
    assert len(mnist.y_train) == 60000 and len(mnist.y_test) == 10000
    model = load_preset("lenet5", seed=0)
    tr = Trainer(model, mnist, optimizer="sgd", lr=0.05, momentum=0.9, batch_size=64, seed=0)
    first = tr.run_epoch()
    second = tr.run_epoch()
    print(f"LeNet-5 on MNIST: epoch 1 {first['test_accuracy']:.4f}, epoch 2 "
          f"{second['test_accuracy']:.4f}, {tr.samples / tr.seconds:.0f} samples/s")
    assert first["test_accuracy"] >= 0.97
    assert second["test_accuracy"] >= 0.98
