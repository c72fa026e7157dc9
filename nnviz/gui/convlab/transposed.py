"""The transposed-convolution panel: each input value scales the kernel, which is added into
the output at stride spacing, stepped one input cell at a time; the padding crops the sum.
Beside it the convolution it mirrors (same F, S, P, the shapes reversed)."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QGroupBox, QHBoxLayout, QPushButton, QVBoxLayout

from nnviz.engine import convmath as cm

from ..style import px
from .common import CELL, WINDOW, boxed, caption, control_row, label, spin, warning_box
from .grid import GridView
from .steps import StepBar, Stepped


def _range(a, f):
    return f"{a}\u2013{a + f - 1}"


class TransposedPanel(Stepped, QGroupBox):
    """See the module docstring. ``values()`` is the engine's ConvTranspose2D output,
    ``running()`` the written-out sum after the current step; ``message`` a status line."""

    message = Signal(str)

    def __init__(self, parent=None):
        super().__init__("Transposed convolution (engine ConvTranspose2D)", parent)
        self._steps: list[cm.TransposedStep] = []
        self._out = None
        self._mirror = None
        self._updating = False
        lay = QVBoxLayout(self)
        self.size_spin = spin(1, 4, 3, "input size N")
        self.kernel_spin = spin(1, 4, 3, "kernel size F")
        self.stride_spin = spin(1, 3, 2, "stride S")
        self.pad_spin = spin(0, 2, 1, "padding P: rows and columns cropped from each side")
        self.figure_button = QPushButton("Figure of the notes")
        self.figure_button.setToolTip("3\u00d73 input, F = 3, stride 2, padding 1 \u2192 5\u00d75")
        lay.addLayout(control_row((("Input N", self.size_spin), ("Kernel F", self.kernel_spin),
                                   ("Stride S", self.stride_spin), ("Padding P", self.pad_spin),
                                   (None, self.figure_button))))

        # top: the small grids, the stepper and its text; below: the running output beside
        # the convolution it mirrors (both the padded 7x7 of the notes' figure)
        top = QHBoxLayout()
        small = QGridLayout()
        small.setHorizontalSpacing(12)
        self.input_grid = GridView(editable=True, max_px=105, min_cell=32, max_cell=36)
        self.kernel_grid = GridView(editable=True, max_px=105, min_cell=32, max_cell=36)
        self.part_grid = GridView(editable=False, max_px=105, min_cell=32, max_cell=36)
        self.input_caption = caption("Input")
        self.part_caption = caption("")
        for c, (cap, grid) in enumerate(((self.input_caption, self.input_grid),
                                         (caption("Kernel"), self.kernel_grid),
                                         (self.part_caption, self.part_grid))):
            small.addWidget(cap, 0, c)
            small.addWidget(grid, 1, c, Qt.AlignTop | Qt.AlignLeft)
        small.setRowStretch(2, 1)
        top.addLayout(small)
        self.steps = StepBar()
        self.step_label = boxed(13)
        self.formula_label = label("", 13, bold=True, wrap=True)
        text = QVBoxLayout()
        for w in (self.steps, self.step_label, self.formula_label):
            text.addWidget(w)
        text.addStretch(1)
        top.addSpacing(12)
        top.addLayout(text, 1)
        lay.addLayout(top)

        below = QGridLayout()
        below.setHorizontalSpacing(14)
        self.output_caption = label("Output", 12, bold=True, wrap=True)
        self.output_grid = GridView(editable=False, max_px=230, min_cell=28, max_cell=36)
        self.mirror_caption = label("", 12, bold=True, wrap=True)
        self.mirror_input = GridView(editable=False, max_px=230, min_cell=28, max_cell=36)
        self.mirror_output = GridView(editable=False, max_px=105, min_cell=32, max_cell=36)
        self.mirror_label = label("", 12, wrap=True)
        self.arrow = label("\u2192", 18)
        self.below, self._wide = below, None
        self._place(True)
        lay.addLayout(below)
        self.warning_label = warning_box()
        lay.addWidget(self.warning_label)

        for s in (self.size_spin, self.kernel_spin):
            s.valueChanged.connect(self._resized)
        for s in (self.stride_spin, self.pad_spin):
            s.valueChanged.connect(lambda *_: self.recompute())
        for g in (self.input_grid, self.kernel_grid):
            g.edited.connect(lambda *_: self.recompute(keep_pos=True))
            g.rejected.connect(self._warn)
        self.figure_button.clicked.connect(self.load_figure)
        self.steps.moved.connect(self._show_step)
        self.load_figure()

    # ---- layout: the mirrored convolution beside the output, or under it when narrow ----
    def _place(self, wide):
        if wide == self._wide:
            return
        self._wide = wide
        g = self.below
        parts = (self.output_caption, self.output_grid, self.mirror_caption, self.mirror_input,
                 self.arrow, self.mirror_output, self.mirror_label)
        for w in parts:
            g.removeWidget(w)
        r, c = (0, 1) if wide else (2, 0)       # where the mirror block starts
        g.addWidget(self.output_caption, 0, 0, 1, 1 if wide else 4)
        g.addWidget(self.output_grid, 1, 0, Qt.AlignTop)
        g.addWidget(self.mirror_caption, r, c, 1, 4)
        for i, w in enumerate((self.mirror_input, self.arrow, self.mirror_output, self.mirror_label)):
            g.addWidget(w, r + 1, c + i, Qt.AlignTop)
        for i in range(5):
            g.setColumnStretch(i, 1 if i == c + 3 else 0)

    def _wide_enough(self, width):
        need = (self.output_grid.width() + self.mirror_input.width() + self.mirror_output.width()
                + px(280))
        return width >= need

    def resizeEvent(self, ev):
        self._place(self._wide_enough(ev.size().width()))
        super().resizeEvent(ev)

    def apply_scale(self):
        self._place(self._wide_enough(self.width()))

    # ---- state -----------------------------------------------------------------------
    def load_figure(self):
        """The notes' figure: 3x3 input, F = 3, stride 2, padding 1."""
        self.set_problem(cm.TRANSPOSED_INPUT, cm.TRANSPOSED_KERNEL, 2, 1)

    def set_problem(self, grid, kernel, stride, padding, step=0):
        grid, kernel = np.asarray(grid, dtype=np.float64), np.asarray(kernel, dtype=np.float64)
        self.steps.stop()
        self._updating = True
        for s, v in ((self.size_spin, grid.shape[0]), (self.kernel_spin, kernel.shape[0]),
                     (self.stride_spin, stride), (self.pad_spin, padding)):
            s.setValue(int(v))
        self._updating = False
        self.input_grid.set_grid(grid)
        self.kernel_grid.set_grid(kernel)
        self.recompute()
        self.steps.go(step)

    def input_values(self):
        return self.input_grid.values.copy()

    def kernel(self):
        return self.kernel_grid.values.copy()

    def values(self):
        return None if self._out is None else self._out.copy()

    def running(self):
        return self._steps[self.steps.pos].running.copy() if self._steps else None

    def mirror_values(self):
        return None if self._mirror is None else self._mirror.copy()

    def _warn(self, text):
        self.warning_label.setText(text)
        self.warning_label.setVisible(bool(text))

    def _resized(self, *_):
        if self._updating:
            return
        n, f = self.size_spin.value(), self.kernel_spin.value()
        for grid, m in ((self.input_grid, n), (self.kernel_grid, f)):
            old, new = grid.values, np.ones((m, m))
            k = min(m, old.shape[0])
            new[:k, :k] = old[:k, :k]
            grid.set_grid(new)
        self.recompute()

    # ---- computation -------------------------------------------------------------------
    def recompute(self, keep_pos=False):
        if self._updating:
            return
        x, k = self.input_grid.values, self.kernel_grid.values
        n, f = x.shape[0], k.shape[0]
        s, p = self.stride_spin.value(), self.pad_spin.value()
        pos = self.steps.pos if keep_pos else 0
        self.input_caption.setText(f"Input {n}\u00d7{n}")
        self.formula_label.setText("Output size: " + cm.transposed_formula(n, f, p, s))
        try:
            self._steps = cm.transposed_steps(x, k, s, p)
            self._out = cm.conv_transpose2d(x, k, s, p)
            self._mirror = cm.conv2d(self._out, k, stride=s, padding=p)
        except (cm.LayerError, ValueError) as e:
            self._steps, self._out, self._mirror = [], None, None
            for g in (self.part_grid, self.output_grid, self.mirror_input, self.mirror_output):
                g.set_grid(np.zeros((0, 0)))
            self.step_label.setText("")
            self.mirror_label.setText("")
            self._warn(str(e))
            self.steps.set_count(0)
            return
        self._warn("")
        m = self._out.shape[0]
        full = self._steps[-1].full.shape[0]
        self.output_caption.setText(f"Output {m}\u00d7{m}" + (
            f": the {full}\u00d7{full} sum, grey ring cropped by P = {p}" if p else ""))
        self.mirror_caption.setText(
            f"\u2194 The convolution it mirrors: {m}\u00d7{m} \u2192 {n}\u00d7{n}, same F = {f}, "
            f"S = {s}, P = {p} (engine Conv2D of the output)")
        formula, _ = cm.size_explanation(m, f, p, s)
        self.mirror_input.set_grid(self._out, pad=p)
        self.mirror_output.set_grid(self._mirror)
        self.mirror_label.setText(
            f"{formula}. Input cell [r, c] of the transposed convolution spreads its kernel over "
            f"the very window through which output cell [r, c] of the convolution gathers: the "
            f"shapes are mirrored. The values are not: this does not give the input back "
            f"(a transposed convolution is not an inverse).")
        self.steps.set_count(len(self._steps), pos)

    def _show_step(self, pos):
        if not self._steps:
            return
        st = self._steps[pos]
        f, p = self.kernel_grid.values.shape[0], self.pad_spin.value()
        self.input_grid.set_frame(st.row, st.col, 1, 1, WINDOW)
        self.part_grid.set_grid(st.contribution)
        self.part_caption.setText(f"{cm.format_number(st.value)} \u00d7 kernel")
        self.output_grid.set_grid(st.full, crop=p)
        self.output_grid.set_frame(st.top, st.left, f, f, WINDOW)
        self.mirror_input.set_frame(st.top, st.left, f, f, WINDOW)
        self.mirror_output.set_frame(st.row, st.col, 1, 1, CELL)
        full = st.full.shape[0]
        where = f"the {full}\u00d7{full} sum" if p else "the output"
        text = (f"Step {pos + 1} of {len(self._steps)}: input[{st.row}, {st.col}] = "
                f"{cm.format_number(st.value)}, so {cm.format_number(st.value)} \u00d7 kernel is "
                f"added at rows {_range(st.top, f)}, columns {_range(st.left, f)} of {where} "
                f"(stride {self.stride_spin.value()} apart).")
        if pos + 1 == len(self._steps):
            text += " Done: the output equals the engine's ConvTranspose2D." if np.allclose(
                st.running, self._out) else " \u26a0 differs from the engine's ConvTranspose2D!"
        self.step_label.setText(text)
        self.message.emit(f"Transposed convolution: step {pos + 1} of {len(self._steps)}, "
                          f"input[{st.row}, {st.col}] = {cm.format_number(st.value)}")
