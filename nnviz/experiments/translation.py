"""Lesson 13, translation: "is the lit pixel the image's midpoint?" for an MLP and a pure CNN.

Every image is dark but for one lit pixel; the label says whether it is the centre pixel
(half the images: the classes are balanced). The MLP has a weight for every pixel and learns
the answer at once. The pure CNN (convolutions, ReLU, global average pooling, no dense layer)
treats every position alike, so it answers the same wherever the pixel is: chance.

Only if nothing tells it where the border is. With "full" padding (k - 1: no window is cut
at the border) and no biases (the padded zeros look like the dark background) the CNN's
output is exactly the same for every image. With "same" padding and biases the background
is not zero but the padding is, so the border shows, and the CNN learns how far the pixel
is from it: position leaks in through the padding.
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nnviz.data import Dataset
from nnviz.engine import Conv2D, Dense, Flatten, GlobalAvgPool2D, ReLU, Sequential

from .base import TRAINING_OPTIONS, Arm, Experiment, ExperimentError, Option

CLASS_NAMES = ["elsewhere", "centre"]
PADDINGS = ("full", "same")


def one_pixel_images(size: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(n, 1, size, size) float32 images, dark but for pixel (rows[i], cols[i]) = 1."""
    x = np.zeros((len(rows), 1, size, size), np.float32)
    x[np.arange(len(rows)), 0, rows, cols] = 1.0
    return x


def midpoint_split(size: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n images, half with the centre pixel lit (label 1), half with another pixel (label 0)."""
    c = size // 2
    others = np.array([(i, j) for i in range(size) for j in range(size) if (i, j) != (c, c)])
    pos = np.full((n, 2), c)
    half = n // 2
    pos[half:] = others[rng.integers(0, len(others), n - half)]
    y = (np.arange(n) < half).astype(np.int64)
    order = rng.permutation(n)
    return one_pixel_images(size, pos[order, 0], pos[order, 1]), y[order]


def midpoint_dataset(size: int = 9, n_train: int = 800, n_test: int = 400, seed: int = 0) -> Dataset:
    if size < 3 or size % 2 == 0:
        raise ExperimentError(f"size: expected an odd number >= 3 (the image needs a centre pixel), got {size}")
    rng = np.random.default_rng([seed, size])
    xt, yt = midpoint_split(size, n_train, rng)
    xe, ye = midpoint_split(size, n_test, rng)
    return Dataset(name=f"midpoint {size}x{size}", x_train=xt, y_train=yt, x_test=xe, y_test=ye,
                   class_names=CLASS_NAMES, source="nnviz.experiments.translation")


def sample_positions(size: int) -> list[tuple[int, int]]:
    """Where the pixel is lit in the images shown with both nets' answers: the centre, its
    neighbours, corners, edges, and one in between."""
    c, e = size // 2, size - 1
    return [(c, c), (c, c + 1), (c - 1, c), (0, 0), (c, 0), (c - 2, c + 2), (e, e), (1, c)]


def mlp(size: int, hidden: int = 32, seed: int = 0) -> Sequential:
    return Sequential([Flatten(), Dense(hidden), ReLU(), Dense(2)], input_shape=(1, size, size), seed=seed,
                      name="MLP")


def pure_cnn(size: int, padding: str = "full", channels: int = 8, seed: int = 0) -> Sequential:
    """Two 3x3 convolutions and a 1x1 one to two class maps, then the mean of each map."""
    if padding not in PADDINGS:
        raise ExperimentError(f"cnn_padding: expected one of {', '.join(PADDINGS)}, got {padding!r}")
    full = padding == "full"
    pad, bias = (2, False) if full else (1, True)
    layers = [Conv2D(channels, 3, padding=pad, bias=bias), ReLU(),
              Conv2D(channels, 3, padding=pad, bias=bias), ReLU(),
              Conv2D(2, 1, bias=bias), GlobalAvgPool2D()]
    return Sequential(layers, input_shape=(1, size, size), seed=seed, name="pure CNN")


class Translation(Experiment):
    name = "translation"
    title = "Translation: is the lit pixel the midpoint?"
    caption = ("One lit pixel per image: is it the centre? (half are.) An MLP (orange), a weight per pixel, "
               "and a pure CNN (blue): convolutions and global average pooling, no dense layer; dashed: test. "
               "The CNN treats every position alike, so it gives every image the same answer; with 'full' "
               "padding and no biases not even the border tells it where the pixel is.")
    diagnostic = "samples"
    OPTIONS: ClassVar[dict[str, Option]] = {
        **TRAINING_OPTIONS, "size": ("choice", (5, 7, 9, 11, 13, 15), None),
        "cnn_padding": ("choice", PADDINGS, None), "n_train": ("int", 40, 20000), "n_test": ("int", 20, 20000)}
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "size": 9, "cnn_padding": "full", "n_train": 800, "n_test": 400, "lr": 0.01, "optimizer": "adam",
        "batch_size": 32, "seed": 0}

    def describe(self) -> str:
        if self.options["cnn_padding"] == "full":
            return self.caption
        return self.caption.split(" The CNN treats")[0] + (
            " With 'same' padding and biases the background is not zero but the padding is, so the border "
            "shows, and the CNN learns how far the pixel is from it: padding leaks position into a CNN.")

    def dataset(self) -> Dataset:
        o = self.options
        return midpoint_dataset(o["size"], o["n_train"], o["n_test"], self.seed)

    def arms(self, data: Dataset) -> list[Arm]:
        o = self.options
        a = mlp(o["size"], seed=self.seed)
        b = pure_cnn(o["size"], o["cnn_padding"], seed=self.seed)
        return [Arm("mlp", "MLP", a, self.trainer(a, data)),
                Arm("cnn", "CNN", b, self.trainer(b, data))]

    def samples(self) -> tuple[np.ndarray, np.ndarray]:
        """The sample images shown with predictions, and their labels."""
        size = self.options["size"]
        pos = np.array(sample_positions(size))
        x = one_pixel_images(size, pos[:, 0], pos[:, 1])
        c = size // 2
        return x, ((pos[:, 0] == c) & (pos[:, 1] == c)).astype(np.int64)
