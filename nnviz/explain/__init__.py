"""Why did the network say that?  Explanations built on the engine's own backward pass.

    from nnviz.explain import explain, occlusion, maximize, mistakes, weight_histograms
    e = explain(model, x)                 # saliency, gradient x input, Grad-CAM
    o = occlusion(model, x, size=4, stride=2)
    m = maximize(model, layer=0, steps=200, seed=0)

Qt-free; every function takes a nnviz.engine Sequential and numpy arrays.  The gradient
ones overwrite the model's layer caches and gradients: call them on `clone_model(model)`
when that model is training in another thread.
"""
from .core import ExplainError, clone_model, conv_layers, default_cam_layer
from .gradients import Explanation, explain, grad_cam, saliency, upsample
from .histograms import (
    HistogramHistory,
    LayerHistogram,
    gradient_histograms,
    histogram,
    weight_histograms,
)
from .maximize import Maximization, gaussian_blur, maximize
from .mistakes import Mistakes, mistakes
from .occlusion import Occlusion, occlusion

__all__ = [
    "ExplainError", "clone_model", "conv_layers", "default_cam_layer",
    "Explanation", "explain", "saliency", "grad_cam", "upsample",
    "Occlusion", "occlusion", "Maximization", "maximize", "gaussian_blur",
    "Mistakes", "mistakes",
    "LayerHistogram", "histogram", "weight_histograms", "gradient_histograms", "HistogramHistory",
]
