"""The convolution panel: input, kernel and output grids, the sliding window stepped cell by
cell, each output written out as a dot product, and the output-size formula."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from nnviz.engine import convmath as cm

from .common import (
    CELL,
    CUSTOM,
    KERNEL_PRESETS,
    WINDOW,
    WORKED_INPUT,
    boxed,
    caption,
    control_row,
    label,
    spin,
    warning_box,
)
from .grid import GridView
from .steps import StepBar, Stepped


class ConvolutionPanel(Stepped, QWidget):
    """See the module docstring. ``changed`` fires when input, kernel or geometry change;
    ``message`` carries a status line."""

    changed = Signal()
    message = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._rng = np.random.default_rng(0)
        self._kernel = np.array(KERNEL_PRESETS["vertical edge"], dtype=np.float64)
        self._output = None
        self._updating = False
        self._build()
        self.input_grid.set_grid(WORKED_INPUT)
        self._set_kernel(self._kernel)
        self.recompute()

    # ------------------------------------------------------------------ UI --
    def _build(self):
        left = QVBoxLayout(self)
        left.setContentsMargins(0, 0, 0, 0)
        self.input_size = spin(3, 12, 6, "input grid size N")
        self.random_button = QPushButton("Random input")
        self.example_button = QPushButton("Worked example")
        self.example_button.setToolTip("6\u00d76 input, vertical-edge kernel, padding 0, stride 1")
        self.misfit_button = QPushButton("7\u00d77, stride 3")
        self.misfit_button.setToolTip("An example where the stride does not fit")
        self.kernel_size = spin(1, 7, 3, "kernel size F")
        self.kernel_preset = QComboBox()
        self.kernel_preset.addItems(list(KERNEL_PRESETS) + [CUSTOM])
        self.padding = spin(0, 3, 0, "zero padding P")
        self.stride = spin(1, 4, 1, "stride S")
        self.flip_check = QCheckBox("Flip kernel (true convolution)")
        self.flip_check.setToolTip("Deep-learning libraries, and the nnviz engine, compute "
                                   "cross-correlation: the kernel is not flipped. Tick to flip "
                                   "it and compute a mathematical convolution.")
        rows = (((("Input N", self.input_size), (None, self.random_button),
                  (None, self.example_button), (None, self.misfit_button))),
                (("Kernel F", self.kernel_size), (None, self.kernel_preset),
                 ("Padding P", self.padding), ("Stride S", self.stride)),
                ((None, self.flip_check),))
        for row in rows:
            left.addLayout(control_row(row))

        grids = QGridLayout()
        grids.setHorizontalSpacing(16)
        self.input_caption = caption("Input (padding in grey)")
        self.input_grid = GridView(editable=True, max_px=400, max_cell=40)
        self.input_grid.setToolTip("Double-click or type to edit a value")
        self.kernel_caption = caption("Kernel (editable)")
        self.kernel_grid = GridView(editable=True, max_px=160, min_cell=34)
        self.flipped_caption = caption("Flipped kernel (applied)")
        self.flipped_grid = GridView(editable=False, max_px=160, min_cell=34)
        self.output_caption = caption("Output")
        self.output_grid = GridView(editable=False, max_px=280)
        self.output_grid.setToolTip("Click a cell to move the window there")
        for c, (cap, grid) in enumerate(((self.input_caption, self.input_grid),
                                         (self.kernel_caption, self.kernel_grid),
                                         (self.output_caption, self.output_grid))):
            col = QVBoxLayout()
            col.addWidget(cap)
            col.addWidget(grid)
            if grid is self.kernel_grid:
                col.addWidget(self.flipped_caption)
                col.addWidget(self.flipped_grid)
            col.addStretch(1)
            grids.addLayout(col, 0, c)
        grids.setColumnStretch(3, 1)
        left.addLayout(grids)

        self.steps = StepBar()
        self.back_button, self.step_button = self.steps.back_button, self.steps.step_button
        self.play_button, self.reset_button = self.steps.play_button, self.steps.reset_button
        self.back_button.setToolTip("Previous window position (PageUp)")
        self.step_button.setToolTip("Next window position (PageDown)")
        left.addWidget(self.steps)
        self.position_label = label("", 12, wrap=True)
        left.addWidget(self.position_label)
        self.dot_label = boxed(14)
        left.addWidget(self.dot_label)
        self.formula_label = label("", 14, bold=True, wrap=True)
        left.addWidget(self.formula_label)
        self.warning_label = warning_box()
        left.addWidget(self.warning_label)
        left.addStretch(1)

        self.input_size.valueChanged.connect(self._input_size_changed)
        self.random_button.clicked.connect(self.randomize_input)
        self.example_button.clicked.connect(self.load_worked_example)
        self.misfit_button.clicked.connect(self.load_misfit_example)
        self.kernel_size.valueChanged.connect(self._kernel_size_changed)
        self.kernel_preset.currentTextChanged.connect(self._preset_chosen)
        self.padding.valueChanged.connect(self._geometry_changed)
        self.stride.valueChanged.connect(self._geometry_changed)
        self.flip_check.toggled.connect(lambda _: self.recompute(keep_pos=True))
        self.input_grid.edited.connect(lambda *_: self.recompute(keep_pos=True))
        for g in (self.input_grid, self.kernel_grid):
            g.rejected.connect(self._rejected)
        self.kernel_grid.edited.connect(self._kernel_edited)
        self.output_grid.cellClicked.connect(self._output_clicked)
        self.steps.moved.connect(lambda _: self._show_position())

    def _rejected(self, why):
        self.warning_label.setText(why)
        self.warning_label.setVisible(True)
        self.message.emit(why)

    # ----------------------------------------------------------- kernel --
    def kernel(self):
        """The kernel as edited (before any flip)."""
        return self._kernel.copy()

    def applied_kernel(self):
        return cm.flipped(self._kernel) if self.flip_check.isChecked() else self._kernel.copy()

    def kernel_name(self):
        return self.kernel_preset.currentText()

    def _set_kernel(self, k, preset=None):
        self._kernel = np.array(k, dtype=np.float64)
        self._updating = True
        self.kernel_size.setValue(self._kernel.shape[0])
        if preset is not None:
            self.kernel_preset.setCurrentText(preset)
        self._updating = False
        self.kernel_grid.set_grid(self._kernel)
        self.flipped_grid.set_grid(cm.flipped(self._kernel))

    def set_preset(self, name):
        self.kernel_preset.setCurrentText(name)

    def _preset_chosen(self, name):
        if self._updating or name not in KERNEL_PRESETS:
            return
        self._set_kernel(KERNEL_PRESETS[name])
        self.recompute(keep_pos=True)

    def _kernel_edited(self, r, c, v):
        self._kernel = self.kernel_grid.values.copy()
        self.flipped_grid.set_grid(cm.flipped(self._kernel))
        self.kernel_grid.set_grid(self._kernel)
        self._sync_preset()
        self.recompute(keep_pos=True)

    def _sync_preset(self):
        name = CUSTOM
        for n, k in KERNEL_PRESETS.items():
            k = np.asarray(k, dtype=np.float64)
            if k.shape == self._kernel.shape and np.allclose(k, self._kernel):
                name = n
                break
        self._updating = True
        self.kernel_preset.setCurrentText(name)
        self._updating = False

    def _kernel_size_changed(self, n):
        if self._updating:
            return
        old = self._kernel
        new = np.zeros((n, n))
        m = min(n, old.shape[0])        # keep the centre of the old kernel
        so, sn = (old.shape[0] - m) // 2, (n - m) // 2
        new[sn:sn + m, sn:sn + m] = old[so:so + m, so:so + m]
        self._kernel = new
        self.kernel_grid.set_grid(new)
        self.flipped_grid.set_grid(cm.flipped(new))
        self._sync_preset()
        self.recompute(keep_pos=False)

    # ----------------------------------------------------------- input --
    def set_input(self, grid):
        grid = np.asarray(grid, dtype=np.float64)
        self._updating = True
        self.input_size.setValue(grid.shape[0])
        self._updating = False
        self.input_grid.set_grid(grid)
        self.recompute(keep_pos=False)

    def randomize_input(self):
        n = self.input_size.value()
        self.set_input(self._rng.integers(0, 10, size=(n, n)).astype(np.float64))

    def load_worked_example(self):
        self.stop()
        self._updating = True
        self.padding.setValue(0)
        self.stride.setValue(1)
        self.flip_check.setChecked(False)
        self._updating = False
        self._set_kernel(KERNEL_PRESETS["vertical edge"], preset="vertical edge")
        self.set_input(WORKED_INPUT)

    def load_misfit_example(self):
        """7x7 input, 3x3 kernel, stride 3: (7 - 3)/3 + 1 = 2.33 does not fit."""
        self.load_worked_example()
        self._updating = True
        self.stride.setValue(3)
        self._updating = False
        grid = np.zeros((7, 7))
        grid[:6, :6] = WORKED_INPUT
        grid[6, :] = [1, 2, 0, 3, 4, 1, 2]
        grid[:6, 6] = [5, 2, 6, 0, 1, 3]
        self.set_input(grid)

    def _input_size_changed(self, n):
        if self._updating:
            return
        old = self.input_grid.values
        new = self._rng.integers(0, 10, size=(n, n)).astype(np.float64)
        m = min(n, old.shape[0])
        new[:m, :m] = old[:m, :m]
        self.input_grid.set_grid(new)
        self.recompute(keep_pos=False)

    def _geometry_changed(self, *_):
        if not self._updating:
            self.recompute(keep_pos=False)

    # ------------------------------------------------------ computation --
    def output_shape(self):
        return None if self._output is None else self._output.shape

    def output_values(self):
        return None if self._output is None else self._output.copy()

    def recompute(self, keep_pos=False):
        x = self.input_grid.values
        n, f = x.shape[0], self._kernel.shape[0]
        p, s = self.padding.value(), self.stride.value()
        flip = self.flip_check.isChecked()
        self.flipped_caption.setVisible(flip)
        self.flipped_grid.setVisible(flip)
        formula, warning = cm.size_explanation(n, f, p, s)
        value, floor, fits, unused = cm.output_size(n, f, p, s)
        self.formula_label.setText("Output size: " + formula)
        try:
            self._output = cm.conv2d(x, self._kernel, stride=s, padding=p, flip=flip)
        except (cm.LayerError, ValueError) as e:
            self._output = None
            warning = warning or str(e)
        self.warning_label.setText(warning)
        self.warning_label.setVisible(bool(warning))
        self.input_grid.set_grid(x, pad=p, unused=unused if floor > 0 else 0)
        self.input_caption.setText(
            f"Input {n}\u00d7{n}" + (f", padded to {n + 2 * p}\u00d7{n + 2 * p}" if p else ""))
        if self._output is None:
            self.output_grid.set_grid(np.zeros((0, 0)))
            self.output_caption.setText("Output: none")
            self.steps.set_count(0)
        else:
            oh, ow = self._output.shape
            self.output_grid.set_grid(self._output)
            self.output_caption.setText(f"Output {oh}\u00d7{ow}")
            self.steps.set_count(oh * ow, self.steps.pos if keep_pos and self.steps.pos < oh * ow else 0)
        self.changed.emit()

    def current_cell(self):
        return None if self._output is None else divmod(self.steps.pos, self._output.shape[1])

    def _show_position(self):
        if self._output is None:
            self.input_grid.clear_frame()
            self.output_grid.clear_frame()
            self.dot_label.setText("The kernel does not fit into the padded input.")
            self.position_label.setText("")
            return
        r, c = self.current_cell()
        s, p = self.stride.value(), self.padding.value()
        f = self._kernel.shape[0]
        self.input_grid.set_frame(r * s, c * s, f, f, WINDOW)
        self.output_grid.set_frame(r, c, 1, 1, CELL)
        terms, _ = cm.dot_product_terms(self.input_grid.values, self._kernel, s, p, r, c,
                                        flip=self.flip_check.isChecked())
        engine = float(self._output[r, c])
        self.dot_label.setText(f"Output[{r}, {c}] = {cm.format_dot(terms, engine)}")
        oh, ow = self._output.shape
        self.position_label.setText(f"Window {self.steps.pos + 1} of {oh * ow}: rows {r * s}\u2013"
                                    f"{r * s + f - 1}, columns {c * s}\u2013{c * s + f - 1} "
                                    f"of the padded input")
        self.message.emit(f"Convolution lab: output[{r}, {c}] = {cm.format_number(engine)}")

    def set_cell(self, r, c):
        if self._output is None:
            return
        oh, ow = self._output.shape
        if 0 <= r < oh and 0 <= c < ow:
            self.steps.go(r * ow + c)

    def _output_clicked(self, r, c):
        self.stop()
        self.set_cell(r, c)
