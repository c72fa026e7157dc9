"""Convolution lab: padding, stride, convolution and pooling arithmetic made visible.

A student edits a small input grid and a kernel, steps the sliding window over the
(zero-padded) input and reads every output cell written out as a dot product; the
output-size formula, the parameter count of a Conv2D layer and a pooling example sit
beside it, the same kernel is applied to a real image, and the first layer of the CNN
trained in the inspector shows what a network learns on its own.

Every number shown comes from the engine's own Conv2D / ConvTranspose2D / pooling layers
through :mod:`nnviz.engine.convmath`; this package only displays them.  One module per
panel: stepper (convolution), pooling, params, image, trained, transposed (transposed
convolution, stepped by ``steps.StepBar``), connectivity (dense / sparse / tied 1-D);
workspace lays them out.
"""
from .common import KERNEL_PRESETS, POOL_INPUT, WORKED_INPUT
from .grid import GridView
from .workspace import ConvLabWorkspace

__all__ = ["ConvLabWorkspace", "GridView", "KERNEL_PRESETS", "WORKED_INPUT", "POOL_INPUT"]
