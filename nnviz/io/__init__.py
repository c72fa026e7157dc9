"""Model files: nnviz HDF5 (legacy Keras layout + nnviz's group), Keras and ONNX, through one
registry (io/formats.py; docs/model-format.md)."""
from .describe import describe_model
from .errors import ModelFormatError
from .formats import export_model, load_model, save_model
from .h5model import FORMAT_VERSION, LoadedModel

__all__ = ["save_model", "load_model", "export_model", "describe_model", "ModelFormatError",
           "FORMAT_VERSION", "LoadedModel"]
