"""The Experiments tab: two networks trained side by side (nnviz.experiments)."""
from .workspace import ExperimentsWorkspace

__all__ = ["ExperimentsWorkspace"]
