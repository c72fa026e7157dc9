"""Model files: HDF5 in the legacy Keras layout plus nnviz's own group (docs/model-format.md)."""
from .describe import describe_model
from .errors import ModelFormatError
from .h5model import FORMAT_VERSION, LoadedModel, load_model, save_model

__all__ = ["save_model", "load_model", "describe_model", "ModelFormatError", "FORMAT_VERSION",
           "LoadedModel"]
