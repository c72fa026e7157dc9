"""nnviz: build, train and watch neural networks learn."""

__version__ = "0.1.0"
