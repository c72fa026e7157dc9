"""Backprop lab: a small net as a computational graph, stepped forward and backward one node at a
time with the chain rule written out, the gradient check, the mini-batch update and vanishing
gradients. Every number comes from `nnviz.backprop`, which reads the engine's layers.

Keys: PageDown / Right next node, PageUp / Left back, Home restart (a presenter's clicker sends
PageDown / PageUp, which the main window passes to step_forward / step_back). Text fields keep
their own keys while typing.
"""
import logging

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QFileDialog

from nnviz.backprop import (
    UPDATE,
    LabError,
    LabNet,
    Step,
    batch_table,
    gradient_check,
    record,
    sgd_update,
    tutorial_net,
    update_lines,
)
from nnviz.backprop.names import fmt, sub

from ..numeric import parse_number
from ..workspace import Workspace
from .controls import PHASE_NAMES, LabControls, parse_sizes

log = logging.getLogger("nnviz")


class BackpropWorkspace(LabControls, Workspace):
    title = "Backprop lab"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.digits = 6
        self.lr = 0.5
        self.example = 0
        self.pos = 0
        self.steps = []
        self.rec = None
        self._rng = np.random.default_rng(0)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._tick)
        self._build_ui()
        # The worked example runs the engine (a float64 SGD step), so it is loaded when the
        # tab is first shown: at start-up that compile waited ~4 s for the Playground
        # worker's first compile (Numba compiles one function at a time) before the window showed.
        self._loaded = False

    def showEvent(self, ev):
        self.ensure_loaded()
        super().showEvent(ev)

    def ensure_loaded(self):
        if not self._loaded:
            self.load_tutorial()

    # ---- workspace protocol (nothing is trained in the background, nothing is saved) ---------
    def shutdown(self):
        self._timer.stop()
        self.vanishing.stop()
        return True

    def step(self):
        self.next_step()

    def step_forward(self):
        self.next_step()

    def step_back(self):
        self.back_step()
        return True

    def reset(self):
        self.restart()

    def export_image(self):
        """File > Export: the graph as it is now, at twice the screen size (for slides)."""
        return QPixmap.fromImage(self.graph.render_image())

    def prepare_screenshot(self):
        self.load_tutorial()
        self.pages.setCurrentIndex(0)
        self.go_to([s.title for s in self.steps].index("\u2202L/\u2202w\u2085") + 1)

    def apply_scale(self):
        """Presentation mode changed the text size: lay the graph out again."""
        self.graph.fit()

    # ---- settings ---------------------------------------------------------------------------
    def _show_error(self, msg):
        if msg:
            self.error_label.setText(msg)
            self.error_label.show()
        else:
            self.error_label.hide()

    @staticmethod
    def _mark(field, invalid):
        field.setProperty("invalid", invalid)     # the app style sheet draws it red
        field.style().unpolish(field)
        field.style().polish(field)

    def _rejected(self, row, col, text):
        self._show_error(f"{text!r} is not a number: the old value is kept (typed text is marked red)")

    def load_tutorial(self):
        """The 2-2-2 sigmoid net of the classic worked example, η = 0.5, one example."""
        net, x, t = tutorial_net()
        self.load_scene(net, [x], [t], 0.5)

    def load_scene(self, net, X, T, lr, example=0, detailed=None):
        """Show `net` (a LabNet) with examples X, targets T (classes 0-based for xent) and η."""
        self._loaded = True
        self.stop()
        self._set_controls(net.sizes, net.hidden, net.output, net.loss_name)
        self.net = net
        self.X = np.array(X, dtype=np.float64)
        self.T = np.array(T, dtype=np.float64)
        self.lr = float(lr)
        self.lr_field.setText(fmt(self.lr))
        self.example = int(example)
        self._set_count(len(self.X))
        self.detailed_box.blockSignals(True)
        self.detailed_box.setChecked(self._fits_detailed(net) if detailed is None else bool(detailed))
        self.detailed_box.blockSignals(False)
        self.pos = 0
        self.recompute()

    @staticmethod
    def _fits_detailed(net):
        # a box per weight and multiply while the graph fits a lecture screen: 2-2-2 and smaller
        return all(net.sizes[l + 1] * (net.sizes[l] + 1) <= 6 for l in range(net.n_layers))

    def _set_controls(self, sizes, hidden, output, loss):
        widgets = (self.arch, self.hidden, self.output, self.loss, self.n_examples)
        for w in widgets:
            w.blockSignals(True)
        self.arch.setText("-".join(str(s) for s in sizes))
        self.hidden.setCurrentIndex(self.hidden.findData(hidden))
        self.output.setCurrentIndex(self.output.findData(output))
        self.loss.setCurrentIndex(self.loss.findData(loss))
        for w in widgets:
            w.blockSignals(False)

    def _set_count(self, n):
        for w in (self.n_examples, self.shown):
            w.blockSignals(True)
        self.n_examples.setValue(n)
        self.shown.setRange(1, n)
        self.shown.setValue(min(self.example + 1, n))
        for w in (self.n_examples, self.shown):
            w.blockSignals(False)

    def settings(self):
        return (parse_sizes(self.arch.text()), self.hidden.currentData(), self.output.currentData(),
                self.loss.currentData())

    def _settings_changed(self, *_):
        try:
            sizes = parse_sizes(self.arch.text())
        except LabError as exc:      # the typed text stays, marked, until it is a network
            self._mark(self.arch, True)
            self._show_error(str(exc))
            return
        self._mark(self.arch, False)
        _, hidden, output, loss = self.settings()
        cur = (self.net.sizes, self.net.hidden, self.net.output, self.net.loss_name)
        if (sizes, hidden, output, loss) == cur:
            return
        try:
            self.build(sizes, hidden, output, loss)
        except LabError as exc:      # e.g. cross-entropy with one output: the net stays as it was
            typed = self.arch.text()
            self._set_controls(*cur)
            if sizes != cur[0]:          # the typed network stays visible, marked
                self.arch.setText(typed)
                self._mark(self.arch, True)
            self._show_error(str(exc))

    def build(self, sizes, hidden="sigmoid", output="sigmoid", loss="mse", n_examples=None):
        """A new net with the engine's initial weights (2 decimals) and random examples."""
        net = LabNet(sizes, hidden, output, loss, seed=int(self._rng.integers(1 << 30)))
        self._set_controls(net.sizes, hidden, output, loss)
        self.net = net
        self._round_params()
        n = n_examples or len(getattr(self, "X", [[0]]))
        self.X, self.T = self._random_examples(n)
        self._set_count(n)
        self.example = min(self.example, n - 1)
        self.detailed_box.blockSignals(True)
        self.detailed_box.setChecked(self._fits_detailed(net))
        self.detailed_box.blockSignals(False)
        self.pos = 0
        self.recompute()

    def _round_params(self):
        # round to 2 decimals so the chain-rule text stays readable; random biases in ±0.5
        for l in range(self.net.n_layers):
            w, b = self.net.weight(l), self.net.bias(l)
            w[...] = np.round(w, 2)
            b[...] = np.round(self._rng.uniform(-0.5, 0.5, b.shape), 2)

    def randomize(self):
        """New random weights and biases for the same architecture."""
        sizes, hidden, output, loss = self.net.sizes, self.net.hidden, self.net.output, self.net.loss_name
        net = LabNet(sizes, hidden, output, loss, seed=int(self._rng.integers(1 << 30)))
        self.net = net
        self._round_params()
        self.pos = 0
        self.recompute()

    def _random_examples(self, n):
        k_in, k_out = self.net.sizes[0], self.net.sizes[-1]
        X = np.round(self._rng.uniform(-1, 1, (n, k_in)), 2)
        if self.net.loss_name == "xent":
            T = self._rng.integers(0, k_out, n).astype(np.float64)
        else:
            lo = -1 if self.net.output in ("tanh", "linear") else 0
            T = np.round(self._rng.uniform(lo, 1, (n, k_out)), 2)
        return X, T

    def _n_examples_changed(self, n):
        old = len(self.X)
        if n > old:
            X, T = self._random_examples(n - old)
            self.X, self.T = np.concatenate([self.X, X]), np.concatenate([self.T, T])
        else:
            self.X, self.T = self.X[:n], self.T[:n]
        self.example = min(self.example, n - 1)
        self._set_count(n)
        self.recompute()

    def _shown_changed(self, v):
        self.example = v - 1
        self.recompute()

    def _lr_edited(self):
        try:
            v = parse_number(self.lr_field.text())
            if v <= 0:
                raise ValueError
        except ValueError:
            self._mark(self.lr_field, True)
            self._show_error(f"learning rate {self.lr_field.text()!r}: expected a number > 0; "
                             f"still {fmt(self.lr)}")
            return
        self._mark(self.lr_field, False)
        self.set_lr(v)

    def set_lr(self, v):
        self.lr = float(v)
        self.lr_field.setText(fmt(self.lr))
        self.recompute()

    def _targets(self, rows=None):
        T = self.T if rows is None else self.T[rows]
        return T.astype(np.int64) if self.net.loss_name == "xent" else T

    def _param_edited(self, row, col, value):
        key = self.rec.param_keys[row]
        kind, idx = key[0], [int(s) for s in key[1:].split(",")]
        if kind == "w":
            self.net.weight(idx[0])[idx[1], idx[2]] = value
        else:
            self.net.bias(idx[0])[idx[1]] = value
        self.recompute()

    def _example_edited(self, row, col, value):
        k_in = self.net.sizes[0]
        if col < k_in:
            self.X[row, col] = value
        elif self.net.loss_name == "xent":
            k = int(round(value)) - 1
            if value != round(value) or not 0 <= k < self.net.sizes[-1]:
                self.recompute()       # puts the valid class back in the cell
                self._show_error(f"class {fmt(value)}: expected a whole number 1 to {self.net.sizes[-1]}")
                return
            self.T[row] = k
        else:
            self.T[row, col - k_in] = value
        self.recompute()

    def set_param(self, name, value):
        """Set parameter `name` (e.g. 'w5', 'b1') by typing into its table cell."""
        labels = [self.rec.nodes[k].label for k in self.rec.param_keys]
        row = labels.index(name[0] + sub(int(name[1:])))
        self.params_table.set_cell(row, 0, str(value))

    # ---- computing ---------------------------------------------------------------------------
    def recompute(self):
        """Record the shown example, the gradient check, the batch table and the update preview."""
        self._show_error("")
        ex = self.example
        T = self._targets()
        self.rec = record(self.net, self.X[ex], T[ex], self.digits)
        self.bp, self.fd = gradient_check(self.net, self.X[ex], T[ex])
        self.table = batch_table(self.net, self.X, T)
        self.preview = sgd_update(self.net, self.X, T, self.lr)
        names = [self.rec.nodes[k].label for k in self.rec.param_keys]
        lines = update_lines(names, self.preview, len(self.X), self.digits)
        lines = [lines[-1].capitalize() + ". Apply update makes the step for real.", *lines[:-1]]
        self.steps = [*self.rec.steps, Step(UPDATE, tuple(self.rec.param_keys),
                                            "\u03b8 \u2190 \u03b8 \u2212 \u03b7\u00b7\u2207L", "\n".join(lines))]
        self.pos = min(self.pos, len(self.steps))
        self.graph.set_record(self.rec, detailed=self.detailed_box.isChecked())
        self._fill_examples()
        self.batch_page.show_table(names, self.table, self.preview, self.digits, self._example_texts())
        self._show_pos()

    def _example_texts(self):
        f = lambda v: fmt(v, 4)
        out = []
        for x, t in zip(self.X, self.T):
            tt = f"class {int(t) + 1}" if self.net.loss_name == "xent" else f"t = ({', '.join(f(v) for v in t)})"
            out.append(f"x = ({', '.join(f(v) for v in x)}), {tt}")
        return out

    def _fill_examples(self):
        k_in, k_out = self.net.sizes[0], self.net.sizes[-1]
        f = lambda v: fmt(v, self.digits)
        if self.net.loss_name == "xent":
            headers = [f"x{sub(i + 1)}" for i in range(k_in)] + ["class y"]
            rows = [[f(v) for v in self.X[e]] + [str(int(self.T[e]) + 1)] for e in range(len(self.X))]
        else:
            headers = [f"x{sub(i + 1)}" for i in range(k_in)] + [f"t{sub(k + 1)}" for k in range(k_out)]
            rows = [[f(v) for v in self.X[e]] + [f(v) for v in self.T[e]] for e in range(len(self.X))]
        self.examples_table.fill(headers, [f"ex {e + 1}" for e in range(len(self.X))], rows,
                                 editable_cols=range(len(headers)))

    def _fill_params(self):
        rec, f = self.rec, (lambda v: fmt(v, self.digits))
        g = lambda v: fmt(v, min(self.digits, 5))     # the table sits beside the text: 5 digits
        done = {k for s in self.steps[:self.pos] if s.phase != "forward" for k in s.keys}
        rows = []
        for r, key in enumerate(rec.param_keys):
            n = rec.nodes[key]
            if key in done:
                rows.append([f(n.value), g(n.grad), g(self.fd[r]), fmt(abs(self.fd[r] - n.grad), 2)])
            else:
                rows.append([f(n.value), "", "", ""])
        self.params_table.fill(["value", "backprop", "finite diff.", "|diff.|"],
                               [rec.nodes[k].label for k in rec.param_keys], rows, editable_cols=(0,))
        cur = self.current_step()
        if cur is not None and cur.phase == "backward" and cur.keys[-1] in rec.param_keys:
            r = rec.param_keys.index(cur.keys[-1])     # the row whose gradient just appeared
            self.params_table.scrollToItem(self.params_table.item(r, 1))
            self.params_table.setCurrentCell(r, 1)

    # ---- stepping ---------------------------------------------------------------------------
    def next_step(self):
        if self.pos < len(self.steps):
            self.pos += 1
            self._show_pos()
        elif self._timer.isActive():
            self.stop()

    def back_step(self):
        if self.pos > 0:
            self.pos -= 1
            self._show_pos()

    def restart(self):
        self.stop()
        self.pos = 0
        self._show_pos()

    def go_to(self, pos):
        self.pos = max(0, min(int(pos), len(self.steps)))
        self._show_pos()

    def jump_to_node(self, key):
        """Clicked box: to the step of its gradient once the backward pass has begun, else of its value."""
        cur = self.current_step()
        phase = "backward" if cur is not None and cur.phase != "forward" else "forward"
        for want in (phase, "forward", "backward"):
            for i, s in enumerate(self.steps):
                if s.phase == want and key in s.keys:
                    self.stop()
                    self.go_to(i + 1)
                    return True
        return False

    def current_step(self):
        return self.steps[self.pos - 1] if self.pos > 0 else None

    def is_playing(self):
        return self._timer.isActive()

    def start_pause(self):
        if self._timer.isActive():
            self.stop()
            return
        if self.pos >= len(self.steps):
            self.pos = 0
            self._show_pos()
        self._timer.start()
        self.play_button.setChecked(True)
        self.play_button.setText("Pause")

    def stop(self):
        self._timer.stop()
        self.play_button.setChecked(False)
        self.play_button.setText("Play")

    def _tick(self):
        if self.pos >= len(self.steps):
            self.stop()
        else:
            self.next_step()

    def _speed_changed(self, v):
        self._timer.setInterval(int(5000 / max(1, v)))

    def apply_update(self):
        """θ ← θ − η·avg for real (one engine SGD.step), then start again from the forward pass."""
        before = self.preview.loss_before
        sgd_update(self.net, self.X, self._targets(), self.lr, apply=True)
        self.pos = 0
        self.recompute()
        self._show_error("")
        self.progress.setText(f"updated: loss {fmt(before, 4)} \u2192 {fmt(self.table.loss, 4)}")

    def _show_pos(self):
        update = None
        cur = self.current_step()
        if cur is not None and cur.phase == UPDATE:
            update = dict(zip(self.rec.param_keys, self.preview.after))
        self.graph.show_state(self.steps, self.pos, update)
        self._fill_params()
        n = len(self.steps)
        if cur is None:
            self.progress.setText(f"0 / {n}")
            self.explain.setText(
                "<b>Start.</b> The inputs, weights, biases and targets are given. Press "
                "<b>PageDown</b> or <b>\u2192</b> (or a clicker) to compute one node at a time: the forward "
                "pass, the loss, then the backward pass by the chain rule, then the update. "
                "<b>PageUp</b>/<b>\u2190</b> goes back, <b>Home</b> restarts. Edit any number in the tables.")
        else:
            self.progress.setText(f"{self.pos} / {n} {cur.phase}")
            body = cur.text.replace("&", "&amp;").replace("<", "&lt;").replace("\n", "<br>")
            self.explain.setText(f"<b>{PHASE_NAMES[cur.phase]} {self.pos}/{n}: {cur.title}</b><br>{body}")
        self.back_button.setEnabled(self.pos > 0)
        self.next_button.setEnabled(self.pos < n)

    def _detail_toggled(self, on):
        self.graph.set_record(self.rec, detailed=on)
        self._show_pos()

    def _labels_toggled(self, on):
        self.graph.all_labels = on
        self._show_pos()

    def _page_changed(self, i):
        if self.pages.widget(i) is self.vanishing and not self.vanishing.data:
            self.vanishing.refresh()

    def export_graph(self, path=None):
        if not path:
            path, _ = QFileDialog.getSaveFileName(self, "Export graph as PNG", "backprop-graph.png",
                                                  "PNG images (*.png)")
        if not path:
            return False
        ok = self.graph.render_image().save(str(path), "PNG")
        if not ok:
            self._show_error(f"{path}: could not write the image")
        return ok

