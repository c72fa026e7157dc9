"""The Backprop lab: forward, backward by the chain rule and the update, with the engine's numbers."""
from .workspace import BackpropWorkspace

__all__ = ["BackpropWorkspace"]
