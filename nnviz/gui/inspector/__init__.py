"""CNN inspector workspace: build a CNN, train it and look inside while it learns."""
from .workspace import InspectorWorkspace

__all__ = ["InspectorWorkspace"]
