"""Screenshots of built-in lessons at 1024x768: python scripts/lesson_screenshots.py --out docs/images"""
import argparse
import os

# _window sets the offscreen platform before anything imports Qt
from _window import open_window, spin

SHOTS = [  # (file name, lesson title, step index)
    ("lesson-depth.png", "Depth and decision boundaries", 0),
    ("lesson-activations.png", "Activation functions", 1),
    ("lesson-linear.png", "Depth and decision boundaries", 1),
    ("lesson-edges.png", "Edge detection", 0),
    ("lesson-arithmetic.png", "Convolution arithmetic", 4),
    ("lesson-pooling.png", "Pooling", 0),
    ("lesson-transposed.png", "Transposed convolution", 1),
    ("lesson-connectivity.png", "Connectivity", 0),
    ("lesson-lab7.png", "LeNet-5 and the Lab-7 CNN", 0),
    ("lesson-vanishing.png", "Vanishing gradients and skip connections", 0),
    ("lesson-translation.png", "Translation", 0),
    ("lesson-batchnorm.png", "Batch normalisation", 1),
    ("lesson-dropout-units.png", "Dropout", 0),
    ("lesson-dropout.png", "Dropout", 1),
]


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="screenshots")
    ap.add_argument("--size", default="1024x768")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    from nnviz.lessons import builtin_lessons
    _, w = open_window(args.size)
    spin(0.5)
    lessons = {l.title: l for l in builtin_lessons()}
    for name, title, index in SHOTS:
        w.lessons.open(lessons[title], index)
        spin(1.5)
        p = os.path.join(args.out, name)
        w.grab().save(p)
        print(p)
    w.shutdown()
    w.close()


if __name__ == "__main__":
    main()
