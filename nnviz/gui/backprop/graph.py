"""The computational graph of the lab's net: boxes for inputs, weights, biases, multiplies, sums,
activations and the loss; edges carry local derivatives. Values come from a `Record`.

`GraphView.show_state` reveals values up to the current forward step and gradients up to the
current backward step; the current step's nodes and edges are highlighted.
"""
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QFrame, QGraphicsItem, QGraphicsScene, QGraphicsView

from nnviz.backprop import BACKWARD, FORWARD, UPDATE
from nnviz.backprop.names import fmt

FONT_PX = 14                 # at scale 1; the view never scales below MIN_SCALE (12 px text)
MIN_SCALE = 12.0 / FONT_PX
MAX_SCALE = 2.2
GAP = 16
LABEL_GAP = 40             # extra room between weights and multiplies for edge labels
FAN_GAP = 56               # compact drawing: between one layer's activations and the next sums
STACK_GAP = 26             # between a sum and its activation below it
WIDE, NARROW = 104, 100
LINE = FONT_PX + 5

FILL = {"input": "#e3f4e6", "target": "#eceff1", "weight": "#e3eefb", "bias": "#eee7f8",
        "mul": "#fff7e0", "sum": "#fff0dc", "act": "#fde8ef", "loss": "#fde2e1"}
BORDER = "#7b8794"
CURRENT = QColor("#d9480f")
FWD_EDGE = QColor("#0877bd")
BWD_EDGE = QColor("#c62828")
GRAD = QColor("#b71c1c")
HIDDEN_TEXT = "?"


def _font(bold=False, px=FONT_PX):
    f = QFont()
    f.setPixelSize(px)
    f.setBold(bold)
    return f


class NodeItem(QGraphicsItem):
    """A box: its name (and value on the same line for parameters), then its value, then ∂L/∂·."""

    def __init__(self, node, width, lines):
        super().__init__()
        self.node = node
        self.w, self.h = width, lines * LINE + 8
        self.lines = lines
        self.value_text = ""
        self.grad_text = ""
        self.current = False
        self.setZValue(2)

    def boundingRect(self):
        return QRectF(-3, -3, self.w + 6, self.h + 6)

    def left(self):
        return self.mapToScene(QPointF(0, self.h / 2))

    def right(self):
        return self.mapToScene(QPointF(self.w, self.h / 2))

    def top(self):
        return self.mapToScene(QPointF(self.w / 2, 0))

    def bottom(self):
        return self.mapToScene(QPointF(self.w / 2, self.h))

    def paint(self, p, option, widget=None):
        p.setRenderHint(QPainter.Antialiasing)
        p.setBrush(QColor(FILL.get(self.node.kind, "#ffffff")))
        p.setPen(QPen(CURRENT, 3.5) if self.current else QPen(QColor(BORDER), 1.2))
        radius = self.h / 2 if self.node.kind == "mul" else 7
        p.drawRoundedRect(QRectF(0, 0, self.w, self.h), radius, radius)
        r = QRectF(8, 4, self.w - 16, LINE)     # clear of the thick border of the current box
        p.setPen(QColor("#1d2733"))
        if self.lines == 2:          # "w₁ 0.15" / "∂ 0.0822"
            p.setFont(_font(True))
            p.drawText(r, Qt.AlignLeft | Qt.AlignVCenter, self._short_label())
            p.setFont(_font())
            p.drawText(r, Qt.AlignRight | Qt.AlignVCenter, self.value_text)
        else:
            p.setFont(_font(True))
            p.drawText(r, Qt.AlignHCenter | Qt.AlignVCenter, self.node.label)
            p.setFont(_font())
            p.drawText(r.translated(0, LINE), Qt.AlignHCenter | Qt.AlignVCenter, self.value_text)
        if self.grad_text:
            p.setPen(GRAD)
            p.setFont(_font())
            p.drawText(r.translated(0, LINE * (self.lines - 1)), Qt.AlignHCenter | Qt.AlignVCenter,
                       self.grad_text)

    def _short_label(self):
        return "\u00d7" if self.node.kind == "mul" else self.node.label


class EdgeItem(QGraphicsItem):
    """A line between two nodes with an optional label (local derivative or weight)."""

    def __init__(self, a, b, vertical=False, dy=0.0):
        super().__init__()
        self.a, self.b = a, b
        self.dy = dy
        self.vertical = vertical
        self.colour = QColor("#9aa4ae")
        self.width = 1.2
        self.label = ""
        self.mid_label = False
        self.setZValue(1)
        self._path = QPainterPath()
        self.relayout()

    def relayout(self):
        self.prepareGeometryChange()
        if self.vertical:
            p0, p1 = self.a.bottom(), self.b.top()
        else:
            p0, p1 = self.a.right(), self.b.left()
            if self.b.node.kind == "mul" and self.a.node.kind != "weight":
                p1 = p1 + QPointF(0, self.b.h * 0.3)   # the weight enters mid-left, the input below it
            p1 = p1 + QPointF(0, self.dy)
        path = QPainterPath(p0)
        if self.vertical:
            path.lineTo(p1)
        else:
            dx = (p1.x() - p0.x()) * 0.5
            path.cubicTo(QPointF(p0.x() + dx, p0.y()), QPointF(p1.x() - dx, p1.y()), p1)
        self._path = path

    def boundingRect(self):
        return self._path.boundingRect().adjusted(-3, -3, 3, 3)

    def paint(self, p, option, widget=None):
        p.setRenderHint(QPainter.Antialiasing)
        p.setPen(QPen(self.colour, self.width))
        p.setBrush(Qt.NoBrush)
        p.drawPath(self._path)


class EdgeTag(QGraphicsItem):
    """An edge's label, drawn above the boxes while the edge itself runs below them."""

    def __init__(self, edge):
        super().__init__()
        self.edge = edge
        self.setZValue(3)
        self._box = QRectF()

    def relayout(self):
        self.prepareGeometryChange()
        e = self.edge
        if not e.label:
            self._box = QRectF()
            return
        tw = QFontMetricsF(_font(True)).horizontalAdvance(e.label) + 8
        # beside the arrow head: ∂dst/∂src belongs to the node it enters
        length = e._path.length()
        at = 0.5 if e.vertical or e.mid_label else e._path.percentAtLength(max(0.0, length - tw / 2 - 4))
        mid = e._path.pointAtPercent(at)
        self._box = QRectF(mid.x() - tw / 2, mid.y() - LINE / 2, tw, LINE)

    def boundingRect(self):
        return self._box.adjusted(-1, -1, 1, 1)

    def paint(self, p, option, widget=None):
        if self._box.isEmpty():
            return
        p.setRenderHint(QPainter.Antialiasing)
        p.setPen(Qt.NoPen)
        p.setBrush(QColor(255, 255, 255, 235))
        p.drawRoundedRect(self._box, 4, 4)
        p.setFont(_font(True))
        p.setPen(self.edge.colour)
        p.drawText(self._box, Qt.AlignCenter, self.edge.label)


class GraphView(QGraphicsView):
    """Draws a Record; `detailed` shows weights, multiplies and biases as their own boxes.

    `node_clicked(key)` when a box is clicked.
    """

    node_clicked = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHints(QPainter.Antialiasing | QPainter.TextAntialiasing)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setFrameShape(QFrame.NoFrame)
        self.setBackgroundBrush(QColor("white"))
        self.setFocusPolicy(Qt.NoFocus)
        self.detailed = True
        self.all_labels = False
        self.digits = 4
        self.items_by_key = {}
        self.edges = []          # (EdgeItem, src key, dst key, local, weight key or None)
        self.record = None

    # ---- layout --------------------------------------------------------------------------
    def set_record(self, rec, detailed=None):
        if detailed is not None:
            self.detailed = detailed
        self.record = rec
        sc = self.scene()
        sc.clear()
        self.items_by_key, self.edges = {}, []
        net = rec.net
        N = rec.nodes
        x = 0.0
        cols = {}

        def column(width):
            nonlocal x
            left = x
            x += width + GAP
            return left

        cols["x"] = column(WIDE)
        for l in range(net.n_layers):
            if self.detailed:
                cols[("w", l)] = column(NARROW)
                x += LABEL_GAP          # room for the local derivative on w -> ×
                cols[("m", l)] = column(NARROW)
            else:
                x += FAN_GAP            # room for the fan of edges between layers
            cols[("z", l)] = column(WIDE)       # detailed: the sum, and its activation below it
            cols[("a", l)] = cols[("z", l)] if self.detailed else column(WIDE)
        if not self.detailed:
            x += FAN_GAP / 2
        cols["L"] = column(WIDE)

        def place(key, left, y, width, lines):
            it = NodeItem(N[key], width, lines)
            it.setPos(left, y)
            sc.addItem(it)
            self.items_by_key[key] = it
            return it

        small_h = 2 * LINE + 8 + 6
        big_h = 3 * LINE + 8
        unit_h = 2 * big_h + STACK_GAP if self.detailed else big_h
        heights = []
        for l in range(net.n_layers):
            units, fan_in = net.weight(l).shape
            per_unit = max((fan_in + 1) * small_h if self.detailed else 0, unit_h)
            heights.append(units * (per_unit + 12))
        height = max(max(heights), net.sizes[0] * (big_h + 12), (net.sizes[-1] + 1) * (small_h + 4) + big_h)
        for l in range(net.n_layers):
            units, fan_in = net.weight(l).shape
            top = (height - heights[l]) / 2
            block = heights[l] / units
            for j in range(units):
                y0 = top + j * block
                if self.detailed:
                    y1 = y0 + (block - 12 - (fan_in + 1) * small_h) / 2
                    for i in range(fan_in):
                        yy = y1 + i * small_h
                        place(f"w{l},{j},{i}", cols[("w", l)], yy, NARROW, 2)
                        place(f"m{l},{j},{i}", cols[("m", l)], yy, NARROW, 2)
                    place(f"b{l},{j}", cols[("w", l)], y1 + fan_in * small_h, NARROW, 2)
                if net.act_name(l) != "softmax":
                    cy = y0 + (block - 12 - unit_h) / 2
                    place(f"z{l},{j}", cols[("z", l)], cy, WIDE, 3)
                    place(f"a{l},{j}", cols[("a", l)], cy + (big_h + STACK_GAP) * self.detailed, WIDE, 3)
                else:
                    place(f"z{l},{j}", cols[("z", l)], y0 + (block - 12 - big_h) / 2, WIDE, 3)
        n_in = net.sizes[0]
        for i in range(n_in):
            place(f"x{i}", cols["x"], (i + 0.5) * height / n_in - big_h / 2, WIDE, 3)
        targets = [k for k in N if N[k].kind == "target"]
        for k, key in enumerate(targets):
            place(key, cols["L"], 4 + k * (small_h + 4), WIDE, 2)
        ly = max(height / 2 - big_h / 2, 4 + len(targets) * (small_h + 4) + 12)
        place("L", cols["L"], ly, WIDE, 3)

        # ---- edges --------------------------------------------------------------------
        for e in rec.edges:
            a, b = self.items_by_key.get(e.src), self.items_by_key.get(e.dst)
            if self.detailed:
                if a is None or b is None:
                    continue
                self._edge(a, b, e.src, e.dst, e.local, None, vertical=N[e.dst].kind == "act")
            elif N[e.dst].kind == "mul" and N[e.src].kind != "weight":
                # compact: input -> sum directly, the weight written on the edge; the edges
                # enter the sum at different heights so their labels do not cover each other
                m = N[e.dst]
                z = self.items_by_key[f"z{m.layer},{m.unit}"]
                fan_in = net.sizes[m.layer]
                dy = (m.src - (fan_in - 1) / 2) * min(14.0, z.h / (fan_in + 1))
                self._edge(a, z, e.src, z.node.key, e.local, f"w{m.layer},{m.unit},{m.src}", False, dy)
            elif a is not None and b is not None:     # compact: z -> a side by side
                self._edge(a, b, e.src, e.dst, e.local, None, vertical=False)
        sc.setSceneRect(QRectF(-10, -10, x - GAP + 20, max(height, ly + big_h) + 20))
        self.fit()

    def _edge(self, a, b, src, dst, local, wkey, vertical, dy=0.0):
        it = EdgeItem(a, b, vertical, dy)
        self.scene().addItem(it)
        it.tag = EdgeTag(it)
        self.scene().addItem(it.tag)
        self.edges.append((it, src, dst, local, wkey))

    # ---- state ---------------------------------------------------------------------------
    def show_state(self, steps, pos, update=None):
        """Reveal steps[:pos]; `update` maps parameter keys to their new values (last step)."""
        rec = self.record
        if rec is None:
            return
        N = rec.nodes
        f = lambda v: fmt(v, self.digits)
        shown_val, shown_grad = set(), set()
        for s in steps[:pos]:
            (shown_val if s.phase == FORWARD else shown_grad).update(s.keys)
        cur = steps[pos - 1] if pos > 0 else None
        cur_keys = set(cur.keys) if cur is not None and cur.phase != UPDATE else set()
        lit = set(cur_keys)
        if not self.detailed:      # a weight, multiply or bias is drawn inside its unit's sum
            lit |= {"z" + k[1:k.rindex(",")] if k[0] in "wm" else "z" + k[1:]
                         for k in cur_keys if k[0] in "wmb"}
        updating = cur is not None and cur.phase == UPDATE and update is not None
        for key, it in self.items_by_key.items():
            n = N[key]
            given = n.kind in ("input", "target", "weight", "bias")
            it.value_text = (f(n.value) if n.kind != "target" or rec.net.loss_name == "mse"
                             else f"class {int(n.value)}") if given or key in shown_val else HIDDEN_TEXT
            it.grad_text = ""
            if updating and key in update:
                it.grad_text = "\u2192 " + f(update[key])
            elif key in shown_grad and n.grad is not None:
                it.grad_text = "\u2202 " + f(n.grad)
            it.current = key in lit or (updating and key in update)
            it.update()
        # edges: the current forward node's inputs in blue; the current backward node's
        # consumers in red with their local derivative ∂consumer/∂node
        for it, src, dst, local, wkey in self.edges:
            label, colour, width = "", QColor("#9aa4ae"), 1.2
            if cur is not None and cur.phase == FORWARD and (dst in cur_keys
                                                              or (wkey and f"m{wkey[1:]}" in cur_keys)):
                colour, width = FWD_EDGE, 2.6
                if wkey:                  # compact: the weight this edge multiplies by
                    label = f(N[wkey].value)
            elif cur is not None and cur.phase == BACKWARD and src in cur_keys:
                colour, width = BWD_EDGE, 2.6
                if local is not None:
                    label = f(local)
            elif cur is not None and cur.phase == BACKWARD and wkey and wkey in cur_keys:
                colour, width = BWD_EDGE, 2.6     # compact: the weight whose gradient this is
                label = f"{N[wkey].label}: \u2202 {f(N[wkey].grad)}"
            elif self.all_labels and local is not None and (src in shown_grad or wkey):
                label = f(local)
            it.colour, it.width, it.label = colour, width, label
            it.mid_label = bool(wkey) and cur is not None and cur.phase == BACKWARD and wkey in cur_keys
            it.update()
            it.tag.relayout()
            it.tag.update()
        if cur_keys:
            first = self.items_by_key.get(next(iter(cur.keys)))
            if first is None and not self.detailed and cur.keys[-1].startswith("w"):
                l, j, _ = cur.keys[-1][1:].split(",")
                first = self.items_by_key.get(f"z{l},{j}")
            if first is not None:
                self.ensureVisible(first, 20, 20)

    # ---- size ----------------------------------------------------------------------------
    def fit(self):
        r = self.scene().sceneRect()
        if r.width() <= 0:
            return
        vw, vh = max(1, self.viewport().width()), max(1, self.viewport().height())
        s = min(vw / r.width(), MAX_SCALE)
        if r.height() * s > vh:          # prefer a whole graph; scroll down only below 12 px
            s = max(min(s, vh / r.height()), min(MIN_SCALE, s))
        self.resetTransform()
        self.scale(s, s)

    def mousePressEvent(self, ev):
        it = self.itemAt(ev.position().toPoint())
        if isinstance(it, NodeItem):
            self.node_clicked.emit(it.node.key)
            ev.accept()
            return
        super().mousePressEvent(ev)

    def painted_fonts(self):
        """The fonts the boxes and edge labels are painted in, at their size on screen."""
        f = _font()
        f.setPixelSize(max(1, int(FONT_PX * self.scale_factor() + 0.5)))
        return [f]

    def scale_factor(self):
        return self.transform().m11()

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        self.fit()

    def render_image(self, scale=2.0):
        """The whole graph on white at `scale` x scene size (for slides)."""
        r = self.scene().sceneRect()
        img = QImage(int(r.width() * scale), int(r.height() * scale), QImage.Format_ARGB32)
        img.fill(QColor("white"))
        p = QPainter(img)
        p.setRenderHints(QPainter.Antialiasing | QPainter.TextAntialiasing)
        self.scene().render(p, QRectF(0, 0, img.width(), img.height()), r)
        p.end()
        return img
