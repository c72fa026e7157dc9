"""The nnviz engine: float32 NCHW layers with explicit backprop on Numba kernels."""
from . import backend
from .layers import (
                     ACTIVATIONS,
                     LAYER_TYPES,
                     Abs,
                     AvgPool2D,
                     BatchNorm,
                     Conv2D,
                     ConvTranspose2D,
                     Dense,
                     Dropout,
                     Flatten,
                     GlobalAvgPool2D,
                     InputScaling,
                     Layer,
                     LayerError,
                     LeakyReLU,
                     MaxPool2D,
                     ReLU,
                     Residual,
                     Sigmoid,
                     Tanh,
)
from .losses import MSE, BCEWithLogits, LossError, SoftmaxCrossEntropy, get_loss, softmax
from .model import Sequential
from .optim import SGD, Adam, OptimizerError, make_optimizer, optimizer_from_config
from .spec import SpecError, adapt_spec, load_preset, model_from_spec, preset_names, read_spec

BCE = BCEWithLogits

__all__ = [
    "backend", "Sequential", "Layer", "LayerError", "LAYER_TYPES", "ACTIVATIONS",
    "Dense", "Conv2D", "ConvTranspose2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "Flatten", "ReLU",
    "LeakyReLU", "Sigmoid", "Tanh", "Abs", "Dropout", "BatchNorm", "Residual", "InputScaling",
    "SoftmaxCrossEntropy", "MSE", "BCE", "BCEWithLogits", "get_loss", "LossError", "softmax",
    "SGD", "Adam", "make_optimizer", "optimizer_from_config", "OptimizerError",
    "SpecError", "model_from_spec", "load_preset", "read_spec", "adapt_spec", "preset_names",
]
