"""The convolution lab workspace: seven panels (convolution, pooling, parameters, a real
image, a trained first layer, transposed convolution, connectivity) in a layout that reflows
to fit the window's width."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QFrame, QGridLayout, QScrollArea, QVBoxLayout, QWidget

from ..workspace import Workspace
from .connectivity import ConnectivityPanel
from .image import ImagePanel
from .params import ParamsPanel
from .pooling import PoolingPanel
from .stepper import ConvolutionPanel
from .trained import TrainedPanel
from .transposed import TransposedPanel

WIDE_PX = 1300     # at least this wide: pooling and parameters sit right of the grids
_PANELS = ("conv", "pool", "params", "image", "trained", "tconv", "conn", "stepping")


class ConvLabWorkspace(Workspace):
    """See the module docstring; the panels are attributes (conv, pool, params, image,
    trained, tconv, conn). ``stepping`` is the panel that Step / Play / PageDown move: the
    one whose step buttons were used last, or that a lesson shows."""

    title = "Convolution lab"

    def __init__(self, parent=None):
        super().__init__(parent)
        # The panels compute with the engine's float64 convolution kernels, which a first
        # start compiles: they are built when the tab is first shown or a panel first used,
        # not before the main window can show (see kernels.py).
        self._built = False
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        outer.addWidget(self.scroll)
        body = QWidget()
        self.scroll.setWidget(body)
        self.grid = QGridLayout(body)
        self.grid.setContentsMargins(8, 6, 8, 6)
        self.grid.setSpacing(10)
        self._wide = None

    def _build(self):
        if self._built:
            return
        self._built = True
        self.conv = ConvolutionPanel()
        self.pool = PoolingPanel(lambda: self.conv.input_grid.values, self.conv.output_values)
        self.params = ParamsPanel()
        self.image = ImagePanel()
        self.trained = TrainedPanel()
        self.tconv = TransposedPanel()
        self.conn = ConnectivityPanel()
        self.stepping = self.conv
        self.conv.steps.used.connect(lambda: self.set_stepping(self.conv))
        self.tconv.steps.used.connect(lambda: self.set_stepping(self.tconv))
        self.conv.changed.connect(self._conv_changed)
        for panel in (self.conv, self.tconv):
            panel.message.connect(lambda m: self.status.emit({"message": m}))
        self.image.image_changed.connect(self.trained.show_on)
        self._place(wide=self.width() >= WIDE_PX)
        for w in self._panels():
            w.show()         # added to a shown parent: Qt would only show them later
        self._conv_changed()

    def __getattr__(self, name):
        if name in _PANELS and not self.__dict__.get("_built", True):
            self._build()
            return getattr(self, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def showEvent(self, ev):
        self._build()
        super().showEvent(ev)

    # ---- layout ----------------------------------------------------------------------
    def _place(self, wide):
        """Wide: grids | pooling over parameters, then image | trained.  Narrow: grids,
        then pooling | parameters, then image | trained."""
        if wide == self._wide:
            return
        self._wide = wide
        g = self.grid
        for w in self._panels():
            g.removeWidget(w)
        if wide:
            g.addWidget(self.conv, 0, 0, 2, 1)
            g.addWidget(self.pool, 0, 1)
            g.addWidget(self.params, 1, 1)
            g.addWidget(self.image, 2, 0)
            g.addWidget(self.trained, 2, 1)
        else:
            g.addWidget(self.conv, 0, 0, 1, 2)
            g.addWidget(self.pool, 1, 0)
            g.addWidget(self.params, 1, 1)
            g.addWidget(self.image, 2, 0)
            g.addWidget(self.trained, 2, 1)
            g.setRowStretch(1, 0)
        g.addWidget(self.tconv, 3, 0, 1, 2)
        g.addWidget(self.conn, 4, 0, 1, 2)
        for c in range(2):
            g.setColumnStretch(c, 1)
        g.setRowStretch(4, 1)

    def _panels(self):
        return (self.conv, self.pool, self.params, self.image, self.trained, self.tconv, self.conn)

    def set_stepping(self, panel):
        """Step / Play / PageDown now move `panel` (conv or tconv); the other one stops."""
        if panel is not self.stepping:
            self.stepping.stop()
        self.stepping = panel

    def show_panel(self, panel):
        """Scroll so that `panel`'s top is at the top of the view (its controls and title
        show), now and once the layout has placed it (a lesson opened at start-up applies
        its state before the first layout)."""
        def top():
            self.scroll.verticalScrollBar().setValue(max(0, panel.y() - 4))
        top()
        QTimer.singleShot(0, top)

    def resizeEvent(self, ev):
        if self._built:
            self._place(ev.size().width() >= WIDE_PX)
        super().resizeEvent(ev)

    # ---- panels talking to each other ------------------------------------------------
    def _conv_changed(self):
        c = self.conv
        self.image.show_kernel(c.kernel(), c.stride.value(), c.padding.value(),
                               c.flip_check.isChecked(), c.kernel_name())

    def set_trained_filters(self, weights, source=""):
        self.trained.set_filters(weights, source)

    # ---- workspace protocol ----------------------------------------------------------
    def activated(self, workspaces):
        """Take the first Conv2D layer of a model trained in another tab."""
        for ws in workspaces:
            if ws is self:
                continue
            w = ws.first_conv_filters()
            if w is not None:
                self.set_trained_filters(w, source=f"the {ws.title}'s model")
                return

    def start_pause(self):
        self.stepping.start_pause()

    def pause(self):
        self.stepping.stop()

    def step(self):
        self.stepping.step()

    def step_back(self):
        self.stepping.back()
        return True

    def reset(self):
        self.stepping.reset()

    def shutdown(self):
        if self._built:
            self.conv.stop()
            self.tconv.stop()
        return True

    def prepare_screenshot(self):
        """The worked example, window at output (0, 0), vertical edges of an image."""
        self.conv.load_worked_example()
        self.image.set_sample(0)
        self.conv.reset()
