"""Backprop lab screenshots at 1024x768: python scripts/backprop_screenshots.py --out docs/images

A forward step (z_h₁), a backward step (∂L/∂w₅) and the update of the classic worked example,
each in the whole main window, and the exported graph PNG.
"""
import argparse
import os
import sys

# _window sets the offscreen platform before anything imports Qt
from _window import open_window


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="screenshots")
    ap.add_argument("--size", default="1024x768")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    app, w = open_window(args.size)
    lab = w.workspace("Backprop lab")
    w.tabs.setCurrentWidget(lab)
    lab.load_tutorial()
    titles = [s.title for s in lab.steps]
    paths = []
    for name, title in (("backprop-forward.png", "z_h\u2081"), ("backprop-backward.png", "\u2202L/\u2202w\u2085"),
                        ("backprop-hidden.png", "\u2202L/\u2202h\u2081"), ("backprop-update.png", None)):
        lab.go_to(titles.index(title) + 1 if title else len(titles))
        app.processEvents()
        path = os.path.join(args.out, name)
        w.grab().save(path)
        paths.append(path)
    lab.pages.setCurrentWidget(lab.batch_page)
    lab.n_examples.setValue(4)
    app.processEvents()
    path = os.path.join(args.out, "backprop-batch.png")
    w.grab().save(path)
    paths.append(path)
    lab.pages.setCurrentWidget(lab.vanishing)
    while not lab.vanishing.sweep_complete():     # the depth sweep fills in over about a second
        app.processEvents()
    path = os.path.join(args.out, "backprop-vanishing.png")
    w.grab().save(path)
    paths.append(path)
    w.shutdown()
    w.close()
    print("\n".join(paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
