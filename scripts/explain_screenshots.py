"""Screenshots of the inspector's explanation views on a trained LeNet-5, for docs/images:

    python scripts/explain_screenshots.py --out docs/images [--data mnist,shapes] [--steps 900]

MNIST is found through the data registry ($NNVIZ_DATA_DIR/mnist); `shapes` is bundled.
For each data set: explain-<data>-why.png (a mistake explained: saliency, gradient x input,
Grad-CAM, occlusion; -why-export.png is the same view as "Export PNG…" writes it),
-edges.png and -filters.png (activation maximisation, layers 0 and 3), -classes.png (every
class), -distributions.png (weights and gradients over training, beside gradient flow).
"""
import argparse
import os
import sys
import time

# _window sets the offscreen platform before anything imports Qt
from _window import open_window, spin


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/images")
    ap.add_argument("--data", default="mnist,shapes")
    ap.add_argument("--steps", type=int, default=900, help="training steps (batch 64)")
    ap.add_argument("--size", default="1024x768")
    args = ap.parse_args(argv)
    if "NNVIZ_AUTOSAVE_DIR" not in os.environ:      # keep the user's autosaves out of it
        import tempfile
        os.environ["NNVIZ_AUTOSAVE_DIR"] = tempfile.mkdtemp(prefix="nnviz-shots-")
    os.makedirs(args.out, exist_ok=True)
    def wait(cond, limit=120):
        t0 = time.monotonic()
        while not cond() and time.monotonic() - t0 < limit:
            spin(0.1)
        spin(0.4)

    _, win = open_window(args.size)
    ws = next(x for x in win.workspaces if x.title == "CNN inspector")
    win.tabs.setCurrentWidget(ws)

    def shot(_, name):
        p = os.path.join(args.out, name)
        win.grab().save(p)
        print(p)

    def capture(data):
        spin(0.3)
        if not ws.dataset.name.startswith(data):
            ws.set_dataset(data)
        ws.select_model("lenet5")
        history = ws.explain.history

        def train(tr, n=args.steps):
            for _ in range(n):
                ep = tr.epoch
                tr.step()
                if tr.epoch != ep:
                    tr.record_epoch()
                if tr.steps % 10 == 0:      # the distributions, as the live app records them
                    history.add_model(tr.steps, tr.model)
            tr.record_epoch()
        ws.controller.run_locked(train, timeout_s=1800)
        ws.refresh_all()
        panel = ws.explain
        ws.tabs.setCurrentWidget(panel)
        panel.views.setCurrentWidget(panel.why)
        panel.left_tabs.setCurrentWidget(panel.mistakes)
        panel.refresh_now()
        wait(lambda: panel.mistakes.result is not None and not panel.busy())
        if len(panel.mistakes.shown()):
            panel.mistakes.grid.selected = 0
            panel.mistakes.grid.tileClicked.emit(0)
        wait(lambda: panel._last is not None and not panel.busy())
        shot(ws, f"explain-{data}-why.png")
        p = os.path.join(args.out, f"explain-{data}-why-export.png")
        panel.export_png(p)            # what "Export PNG…" writes: the view alone, for a slide
        print(p)
        panel.views.setCurrentWidget(panel.maxview)
        mv = panel.maxview
        mv.follow.setChecked(False)
        for key, name in ((0, "edges"), (3, "filters"), (None, "classes")):
            mv.target.setCurrentIndex([k for k, _ in mv._choices].index(key))
            mv.result = None
            panel.run_maximize()
            wait(lambda: mv.result is not None)
            shot(ws, f"explain-{data}-{name}.png")
        ws.tabs.setCurrentIndex(1)
        ws.live_tabs.setCurrentWidget(panel.distributions)
        dist = panel.distributions
        dist.refresh(force=True)
        dist.layer.setCurrentText("6 Conv2D")
        spin(0.5)
        shot(ws, f"explain-{data}-distributions.png")
        spin(0.2)

    for data in args.data.split(","):
        capture(data)
    win.shutdown()
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
