"""Screenshots of every nnviz workspace: python scripts/screenshots.py --out DIR"""
import argparse
import os
import sys

# _window sets the offscreen platform before anything imports Qt
from _window import open_window, spin


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="screenshots")
    ap.add_argument("--train-s", type=float, default=8.0)
    ap.add_argument("--compare-s", type=float, default=20.0)
    ap.add_argument("--size", default="1920x1080", help="window size WxH")
    ap.add_argument("--suffix", default="", help="added to each file name, e.g. -1024x768")
    ap.add_argument("--scale", type=float, default=1.0, help="presentation scale (1 to 2)")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    _, w = open_window(args.size, scale=args.scale)
    spin(0.5)
    pg = w.playground
    pg.dataset_combo.setCurrentText("spiral")
    pg.set_hidden_layers(2)
    pg.start()
    spin(args.train_s)
    pg.pause()
    spin(0.4)
    pg._node_clicked(1, 0)
    spin(0.2)
    paths = []

    def shot(name):
        p = os.path.join(args.out, name.replace(".png", f"{args.suffix}.png"))
        w.grab().save(p)
        paths.append(p)

    shot("playground.png")
    for sp in pg.neuron_spins:   # wide layers: the spiral is learned within the compare time
        sp.setValue(16)
    spin(0.3)
    pg.start_compare()
    spin(args.compare_s)
    pg.pause()
    spin(0.4)
    shot("compare.png")
    pg.leave_compare()
    for ws in w.workspaces[1:]:
        w.tabs.setCurrentWidget(ws)
        prep = getattr(ws, "prepare_screenshot", None)
        if callable(prep):
            try:
                prep()
            except Exception as exc:
                print(f"{ws.title}: prepare_screenshot failed: {exc}", file=sys.stderr)
        spin(1.0)
        name = {"CNN inspector": "inspector.png", "Convolution lab": "convlab.png",
                "Backprop lab": "backprop.png", "Experiments": "experiments.png"}.get(
            getattr(ws, "title", ""), type(ws).__name__.lower() + ".png")
        shot(name)
    w.shutdown()
    w.close()
    print("\n".join(paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
