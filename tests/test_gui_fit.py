"""Every workspace fits a 1024x768 projector: no horizontal scrolling, no cut labels, no
text under 12 px (rendered font pixel heights, measured with QFontInfo / QFontMetrics)."""
import os
import re

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

pytest.importorskip("pytestqt")
import pyqtgraph as pg
from PySide6.QtGui import QFont, QFontInfo, QFontMetrics, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractScrollArea,
    QCheckBox,
    QComboBox,
    QGraphicsSimpleTextItem,
    QGraphicsTextItem,
    QGraphicsView,
    QGroupBox,
    QLabel,
    QTableWidget,
    QTabWidget,
    QWidget,
)

MIN_PX = 12
SIZE = (1024, 768)


def _px(font):
    return QFontInfo(font).pixelSize()


def _pt_to_px(points):
    dpi = QGuiApplication.primaryScreen().logicalDotsPerInchY()
    return points * dpi / 72.0


def _html_px(html, default_px):
    """Smallest font size named in a pyqtgraph label's HTML (font-size:NNpt / NNpx)."""
    sizes = [(_pt_to_px(float(v)) if unit == "pt" else float(v))
             for v, unit in re.findall(r"font-size:\s*([\d.]+)\s*(pt|px)", html)]
    return min(sizes) if sizes else default_px


def _visible(w, root):
    return w.isVisibleTo(root) and w.width() > 0 and w.height() > 0


def _scene_texts(view):
    """(what, pixel height) for each text drawn in a QGraphicsView's scene."""
    out = []
    vt = view.viewportTransform()
    for item in view.scene().items():
        if not item.isVisible():
            continue
        scale = abs(item.deviceTransform(vt).m22()) or 1.0
        if isinstance(item, pg.AxisItem):
            if item.style.get("showValues", True) and item.isVisible():
                f = item.style.get("tickFont") or item.font()
                out.append((f"axis {item.orientation}", _px(f)))
            continue
        if isinstance(item, QGraphicsTextItem):
            if not item.toPlainText().strip():
                continue
            # the glyphs, without the text document's empty margin
            m = item.document().documentMargin()
            box = item.deviceTransform(vt).mapRect(item.boundingRect().adjusted(m, m, -m, -m))
            if box.left() < -1 or box.right() > view.viewport().width() + 1:
                out.append((f"cut text {item.toPlainText()[:30]!r}", -1))
            px = _html_px(item.toHtml(), _px(item.font())) * scale
            out.append((item.toPlainText()[:30], px))
        elif isinstance(item, QGraphicsSimpleTextItem) and item.text().strip():
            out.append((item.text()[:30], _px(item.font()) * scale))
    return out


def problems(root):
    """Human-readable problems with `root` as shown now."""
    bad = []
    for w in [root, *root.findChildren(QWidget)]:
        if not _visible(w, root):
            continue
        name = f"{type(w).__name__} {w.objectName() or ''}".strip()
        if isinstance(w, QAbstractScrollArea):
            sb = w.horizontalScrollBar()
            if sb.isVisible() and sb.maximum() > 0:
                bad.append(f"horizontal scroll bar in {name}")
        if isinstance(w, QGraphicsView):
            for what, px in _scene_texts(w):
                if px < 0:
                    bad.append(f"{what} in {name}")
                elif px < MIN_PX - 0.5:
                    bad.append(f"text {what!r} in {name} is {px:.1f} px")
        if isinstance(w, QTableWidget):
            for r in range(w.rowCount()):
                for c in range(w.columnCount()):
                    it = w.item(r, c)
                    if it is not None and _px(it.font()) < MIN_PX:
                        bad.append(f"cell {r},{c} of {name}: {_px(it.font())} px")
        for f in getattr(w, "painted_fonts", lambda: [])():
            if _px(f) < MIN_PX:
                bad.append(f"{name} paints text at {_px(f)} px")
        text = None
        if isinstance(w, QLabel) and not w.wordWrap() and w.pixmap().isNull():
            text = w.text() if w.textFormat() != 1 else None
            if text and ("<" in text and ">" in text):
                text = None
        elif isinstance(w, (QAbstractButton, QCheckBox)):
            text = w.text()
        if (text is not None or isinstance(w, (QComboBox, QGroupBox))) and _px(w.font()) < MIN_PX:
            bad.append(f"{name} {str(text)[:30]!r}: font {_px(w.font())} px")
        if text:
            fm = QFontMetrics(w.font())
            need = max(fm.horizontalAdvance(line) for line in text.replace("&&", "&")
                       .replace("&", "").split("\n"))
            room = w.contentsRect().width()
            if isinstance(w, QAbstractButton):
                room -= 4
                need += (w.iconSize().width() if not w.icon().isNull() else 0)
                if isinstance(w, QCheckBox):
                    need += 20
            if need > room + 1:
                bad.append(f"{name} {text[:30]!r} cut: needs {need} px, has {room}")
        if isinstance(w, QComboBox) and w.count():
            fm = QFontMetrics(w.font())
            if fm.horizontalAdvance(w.currentText()) > w.width() - 24:
                bad.append(f"combo {w.currentText()!r} cut ({w.width()} px)")
        if isinstance(w, QTabWidget):
            bar = w.tabBar()
            for i in range(bar.count()):
                fm = QFontMetrics(bar.font())
                if fm.horizontalAdvance(bar.tabText(i)) > bar.tabRect(i).width():
                    bad.append(f"tab {bar.tabText(i)!r} cut")
        if isinstance(w, QGroupBox):
            fm = QFontMetrics(w.font())
            if fm.horizontalAdvance(w.title()) > w.width() - 10:
                bad.append(f"group title {w.title()!r} cut")
    return bad


def window_problems(window, qtbot):
    out = {}
    for i, ws in enumerate(window.workspaces):
        window.tabs.setCurrentIndex(i)
        qtbot.wait(150)
        p = problems(window)
        if window.width() > SIZE[0] or window.height() > SIZE[1]:
            p.insert(0, f"window is {window.width()}x{window.height()}")
        need, room = window.tabs.minimumSizeHint(), window.tab_scroll.viewport().size()
        if need.width() > room.width() or need.height() > room.height():
            p.insert(0, f"the tabs need {need.width()}x{need.height()}, have {room.width()}x{room.height()}")
        if p:
            out[ws.title] = p
    return out


@pytest.fixture
def small_window(window, qtbot):
    from nnviz.gui.style import apply_style
    apply_style()                 # the app's style sheet: its paddings take room too
    window.resize(*SIZE)
    qtbot.wait(200)
    return window


def test_every_workspace_fits_1024x768(small_window, qtbot):
    w = small_window
    assert (w.width(), w.height()) == SIZE, "the window's minimum size is larger than 1024x768"
    pg_ws = w.playground
    pg_ws.step()
    qtbot.waitUntil(lambda: pg_ws.trainer.steps >= 1, timeout=15000)
    ins = w.workspace("CNN inspector")
    ins.train_sync(3)
    ins.live_tabs.setCurrentIndex(1)       # the confusion matrix, with its numbers
    assert window_problems(w, qtbot) == {}
    w.tabs.setCurrentWidget(ins)
    for page in ("build", "gradient flow", "drawing"):   # the inspector's other pages
        if page == "build":
            ins.tabs.setCurrentIndex(0)
        else:
            ins.tabs.setCurrentIndex(1)
            ins.live_tabs.setCurrentIndex(2)
            ins.input_tabs.setCurrentIndex(1 if page == "drawing" else 0)
        qtbot.wait(150)
        assert problems(w) == [], page


def test_compare_page_fits_1024x768(small_window, qtbot):
    pg_ws = small_window.playground
    pg_ws.start_compare()
    pg_ws.pause()
    qtbot.wait(300)
    assert (small_window.width(), small_window.height()) == SIZE
    assert problems(small_window) == []


def test_presentation_mode_fits_and_is_larger(small_window, qtbot):
    w = small_window
    lab = w.workspace("Convolution lab")
    before = _px(lab.conv.formula_label.font())
    w.set_scale(1.5)
    try:
        assert _px(lab.conv.formula_label.font()) >= 1.4 * before
        w.tabs.setCurrentWidget(w.playground)
        qtbot.wait(200)
        assert [p for p in problems(w) if "px" in p and "cut" not in p] == []
    finally:
        w.set_scale(1.0)
    assert _px(lab.conv.formula_label.font()) == before


def test_small_fonts_are_detected(qtbot):
    """The checker itself: a 7 px label and a cut label are reported."""
    root = QWidget()
    qtbot.addWidget(root)
    small = QLabel("tiny", root)
    f = QFont()
    f.setPixelSize(7)
    small.setFont(f)
    cut = QLabel("a long label that cannot fit", root)
    cut.setGeometry(0, 20, 40, 20)
    root.resize(300, 100)
    root.show()
    qtbot.wait(50)
    found = problems(root)
    assert any("7 px" in p for p in found) and any("cut" in p for p in found), found


def test_activation_page_fits_1024x768(small_window, qtbot):
    w = small_window
    lab = w.workspace("Backprop lab")
    w.tabs.setCurrentWidget(lab)
    lab.pages.setCurrentWidget(lab.activations)
    for function, x in (("sigmoid", 5.0), ("relu", -2.0), ("leaky_relu", -2.0), ("abs", 1.5)):
        lab.activations.set_state(function, 0.01, x, 10)
        qtbot.wait(100)
        assert problems(w) == [], function
    w.set_scale(1.5)
    try:
        qtbot.wait(200)
        assert [p for p in problems(w) if "px" in p and "cut" not in p] == []
    finally:
        w.set_scale(1.0)


def test_a_lesson_keeps_the_window_on_a_1024x768_screen(small_window, qtbot):
    """The banner takes room from the tabs, which scroll, instead of growing the window."""
    from nnviz.lessons import builtin_lessons
    w = small_window
    lesson = next(x for x in builtin_lessons() if x.title == "Pooling")
    w.lessons.open(lesson)
    qtbot.wait(200)
    assert w.lesson_banner.isVisible()
    assert (w.width(), w.height()) == SIZE
    assert w.statusBar().geometry().bottom() < SIZE[1]
    w.lessons.close()


def test_experiments_tab_fits_1024x768_with_its_plots_and_samples(small_window, qtbot):
    w = small_window
    ws = w.workspace("Experiments")
    w.tabs.setCurrentWidget(ws)
    for name in ("vanishing", "translation"):
        ws.load(name)
        ws.train_sync(30)
        qtbot.waitUntil(lambda: ws.last_snapshot is not None and ws.last_snapshot.status.steps == 30,
                        timeout=60000)
        qtbot.wait(150)
        assert problems(w) == [], name


def test_batchnorm_view_fits_1024x768(small_window, qtbot):
    w = small_window
    ins = w.workspace("CNN inspector")
    w.tabs.setCurrentWidget(ins)
    ins.select_model("lenet5-bn")
    ins.train_sync(2)
    ins.show_live_view(ins.live_tabs.indexOf(ins.bn_view))
    qtbot.wait(150)
    assert ins.bn_view.stats is not None
    assert problems(w) == []
    ins.show_live_view(ins.live_tabs.indexOf(ins.bn_view), enlarge=True)     # as a lesson shows it
    qtbot.wait(150)
    assert problems(w) == [] and (w.width(), w.height()) == SIZE
