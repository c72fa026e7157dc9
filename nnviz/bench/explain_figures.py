"""Explanations (nnviz.explain) on LeNet-5, in the nnviz worker; no PyTorch twin."""
from __future__ import annotations

from .figure import Figure


def _ms(name):
    def run(quick):
        from ..explain import timing
        return getattr(timing, name)(3 if quick else 7) * 1e3, {}
    return run


def _maximize(quick):
    from ..explain import timing
    return timing.maximize_s(1 if quick else 3), {}


FIGURES = [
    Figure("explain-gradients", "ms", "saliency + Grad-CAM, one LeNet-5 input, 1 thread", "worker",
           _ms("gradients_s"), target=("max", 5.0)),
    Figure("explain-occlusion", "ms", "occlusion map 28x28, 4x4 patches, stride 2, 1 thread", "worker",
           _ms("occlusion_s"), target=("max", 50.0)),
    Figure("explain-maximize", "s", "200 steps activation maximisation, one LeNet-5 filter, 1 thread",
           "worker", _maximize, target=("max", 1.0)),
]
