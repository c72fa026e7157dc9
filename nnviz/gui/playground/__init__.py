"""The Playground: a TensorFlow-Playground-like page for 2-D toy data."""
from .workspace import PlaygroundWorkspace

__all__ = ["PlaygroundWorkspace"]
