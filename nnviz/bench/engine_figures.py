"""Figures timed beside PyTorch: training steps and inference, the same workload in both workers."""
from __future__ import annotations

from functools import partial

from .figure import Figure
from .workloads import LENET5_RELU, TINY_MLP


def _train(spec, batch, optimizer, n):
    return {"kind": "train", "spec": spec, "batch": batch, "optimizer": optimizer, "n": n}


FIGURES = [
    *(Figure(f"lenet5-b{b}", "img/s", f"LeNet-5 train step, batch {b}", "paired",
             partial(_train, LENET5_RELU, b, "sgd", max(b * 64, 2048)), target=("ratio", r))
      for b, r in ((1, 3.0), (16, 3.0), (64, 1.5), (256, 1.5))),
    Figure("lab7-b64", "img/s", "Lab-7 CNN train step, batch 64", "paired",
           partial(_train, "lab7-cnn", 64, "sgd", 64 * 64), target=("ratio", 1.3)),
    *(Figure(f"mlp-b{b}", "steps/s", f"MLP 2-8-8-2 Trainer.step, batch {b}", "paired",
             partial(_train, TINY_MLP, b, "adam", 1000), target=("ratio", 20.0))
      for b in (10, 32)),
    Figure("grid", "ms", "mlp2 forward, 200x200 grid", "paired",
           lambda: {"kind": "grid", "spec": "mlp2"}, target=("max", 0.5)),
    Figure("featuremaps", "ms", "LeNet-5 activations(), 1 image", "paired",
           lambda: {"kind": "featuremaps", "spec": LENET5_RELU}, target=("max", 1.0)),
]
