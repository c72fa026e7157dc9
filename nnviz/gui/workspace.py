"""The seam between the main window and a workspace (one tab of the app).

A workspace subclasses :class:`Workspace` and is listed in :data:`WORKSPACES`; the main
window talks to it only through the methods below (menus, shortcuts, the status bar,
open/save, the title, closing).  The defaults describe a workspace that trains nothing
and saves nothing (the convolution lab), so a workspace overrides only what it has.
"""
from __future__ import annotations

import importlib
import logging

from PySide6.QtCore import Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QWidget

log = logging.getLogger("nnviz")

# "module:Class" of every workspace, in tab order: a new workspace is one line here.
WORKSPACES = [
    "nnviz.gui.playground:PlaygroundWorkspace",
    "nnviz.gui.inspector:InspectorWorkspace",
    "nnviz.gui.convlab:ConvLabWorkspace",
    "nnviz.gui.backprop:BackpropWorkspace",
    "nnviz.gui.experiments:ExperimentsWorkspace",
]


def workspace_classes(names=None):
    """The classes listed in WORKSPACES (a workspace that cannot be imported is skipped)."""
    out = []
    for entry in WORKSPACES if names is None else names:
        mod, _, cls = entry.partition(":")
        try:
            out.append(getattr(importlib.import_module(mod), cls))
        except (ImportError, AttributeError) as exc:
            log.warning("workspace %s skipped: %s", entry, exc)
    return out


class Workspace(QWidget):
    """One tab of the main window.

    ``status`` carries a dict for the status bar: training workspaces send
    ``steps_per_s``, ``running``, ``epoch``, ``step`` and ``elapsed``; any workspace may
    send ``message`` (a line of text) instead.  ``changed`` tells the window that the
    dirty state or the model (hence the title) may have changed.
    """

    title = "Workspace"
    status = Signal(dict)
    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._file = (None, None)       # (path, the model object that file holds)
        # set by the main window: asks Save/Discard/Cancel before unsaved work is replaced
        self.confirm_replace = lambda: True

    # ---- training ------------------------------------------------------------------------
    controller = None   # the TrainingController of what is trained now (attribute or property)

    def start_pause(self) -> None:
        """Space / B: start or pause (B only pauses: see pause)."""

    def pause(self) -> None:
        c = self.controller
        if c is not None:
            c.pause()

    def step(self) -> None:
        """One training step (or the workspace's notion of one step)."""

    def step_forward(self) -> None:
        """PageDown (presentation clicker): Step, or next stage."""
        self.step()

    def step_back(self) -> bool:
        """PageUp: back one stage where that means something; False when it does not."""
        return False

    def reset(self) -> None:
        """New weights / start over."""

    def shutdown(self) -> bool:
        """Stop background work; False when a worker did not stop in time."""
        c = self.controller
        return True if c is None else bool(c.stop(1000))

    # ---- models and files ---------------------------------------------------------------
    def current_model(self):
        """The model shown now (the object Save would write), or None."""
        return None

    def save_payload(self):
        """(model, trainer, dataset) to save, or None when there is nothing to save."""
        return None

    def is_dirty(self) -> bool:
        """True when trained work would be lost by closing or replacing it."""
        return False

    def mark_saved(self) -> None:
        """The current model was just written to a file."""

    def open_loaded(self, loaded) -> bool:
        """Show a model read by nnviz.io.load_model; False when this workspace cannot."""
        return False

    def set_file(self, path) -> None:
        """Remember that the current model came from / was saved to `path`."""
        self._file = (str(path) if path else None, self.current_model() if path else None)
        self.changed.emit()

    def file_path(self):
        """The file the *current* model came from, or None (a rebuilt model has no file)."""
        path, model = self._file
        return path if path and model is not None and model is self.current_model() else None

    # ---- cross-workspace and pictures ------------------------------------------------------
    def first_conv_filters(self):
        """Copied weights (out, in, kh, kw) of the first Conv2D of a trained model, or None."""
        return None

    def activated(self, workspaces) -> None:
        """Called when this tab becomes the current one; `workspaces` are all the tabs."""

    def export_image(self) -> QPixmap:
        """The picture File > Export saves."""
        return self.grab()

    def prepare_screenshot(self) -> None:
        """Put the workspace in the state the README pictures show."""
