from .activation import ACTIVATIONS, Abs, LeakyReLU, ReLU, Sigmoid, Tanh
from .base import Layer, LayerError
from .conv import Conv2D, ConvTranspose2D
from .dense import Dense
from .misc import BatchNorm, Dropout, Flatten
from .pool import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from .residual import Residual
from .scaling import InputScaling

LAYER_TYPES = {c.__name__: c for c in (
    Dense, Conv2D, ConvTranspose2D, MaxPool2D, AvgPool2D, GlobalAvgPool2D, Flatten, ReLU, LeakyReLU, Sigmoid,
    Tanh, Abs, Dropout, BatchNorm, Residual, InputScaling)}

__all__ = ["Layer", "LayerError", "LAYER_TYPES", "ACTIVATIONS", *LAYER_TYPES]
