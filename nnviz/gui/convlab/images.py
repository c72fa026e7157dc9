"""Images for the convolution lab: a dataset's test images (or drawn ones) and pyqtgraph boxes."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from ..style import FONT_PT, pt


def _synthetic_images(size=28):
    """Digit-like 28x28 test images drawn with numpy (used when no dataset is available)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    c = (size - 1) / 2
    imgs, names = [], []
    r = np.hypot(yy - c, xx - c)
    ring = np.clip(1.6 - np.abs(r - size * 0.3), 0, 1)
    cross = ((np.abs(xx - c) < 2) | (np.abs(yy - c) < 2)) & (r < size * 0.4)
    imgs.append(np.maximum(ring, cross.astype(float)))
    names.append("cross and circle")
    sq = np.zeros((size, size))
    a, b = int(size * 0.22), int(size * 0.78)
    sq[a:b, a:b] = 1.0
    sq[a + 3:b - 3, a + 3:b - 3] = 0.0
    imgs.append(sq)
    names.append("square")
    seven = np.zeros((size, size))
    seven[5:8, 6:22] = 1.0
    for i in range(8, 24):
        j = int(round(21 - (i - 8) * 0.55))
        seven[i, j - 1:j + 2] = 1.0
    imgs.append(seven)
    names.append("seven")
    tri = ((yy > size * 0.2) & (yy < size * 0.8) & (np.abs(xx - c) < (yy - size * 0.2) * 0.6))
    imgs.append(tri.astype(float))
    names.append("triangle")
    stripes = (np.sin(xx * 0.9 + yy * 0.45) > 0).astype(float)
    imgs.append(stripes)
    names.append("stripes")
    return [np.ascontiguousarray(i) for i in imgs], names


class ImageSource:
    """Grey 2-D images from load_dataset('shapes') or, failing that, drawn with numpy."""

    def __init__(self):
        self.images, self.names, self.source = None, None, ""
        self.x = None
        self.labels = None
        self.class_names = None
        try:
            from nnviz.data import load_dataset
            ds = load_dataset("shapes")
            x = np.asarray(ds.x_test if len(ds.x_test) else ds.x_train)
            y = np.asarray(ds.y_test if len(ds.y_test) else ds.y_train)
            if x.ndim == 4 and len(x) and x.shape[2] >= 3 and x.shape[3] >= 3:
                self.x, self.labels = x, y
                self.class_names = list(getattr(ds, "class_names", []))
                self.source = f"dataset '{getattr(ds, 'name', 'shapes')}'"
        except Exception:   # dataset package missing or unreadable: draw our own images
            self.x = None
        if self.x is None:
            self.images, self.names = _synthetic_images()
            self.source = "synthetic 28\u00d728 images (no 'shapes' dataset installed)"

    def __len__(self):
        return len(self.x) if self.x is not None else len(self.images)

    def sample(self, i):
        """(C, H, W) float image and a caption."""
        i = int(np.clip(i, 0, len(self) - 1))
        if self.x is None:
            return self.images[i][None], self.names[i]
        img = np.asarray(self.x[i], dtype=np.float64)
        name = ""
        if self.labels is not None and self.class_names:
            lab = int(self.labels[i])
            name = self.class_names[lab] if 0 <= lab < len(self.class_names) else str(lab)
        return img, name


def image_box(layout, row, col, title):
    layout.addLabel(title, row=row, col=col, size=f"{pt(FONT_PT)}pt", color="#303030")
    vb = layout.addViewBox(row=row + 1, col=col, lockAspect=True, enableMouse=False)
    vb.invertY(True)
    item = pg.ImageItem(axisOrder="row-major")
    vb.addItem(item)
    return vb, item


def show_image(vb, item, img, diverging):
    img = np.asarray(img, dtype=np.float64)
    if diverging:
        m = float(np.max(np.abs(img))) if img.size else 1.0
        m = m if m > 0 else 1.0
        # reversed so that, as in the number grids, positive is blue and negative red
        cmap = pg.colormap.get("CET-D1")
        cmap.reverse()
        item.setColorMap(cmap)
        item.setImage(img, levels=(-m, m))
    else:
        lo, hi = (float(img.min()), float(img.max())) if img.size else (0.0, 1.0)
        if hi <= lo:
            hi = lo + 1.0
        item.setColorMap(pg.colormap.get("CET-L1"))
        item.setImage(img, levels=(lo, hi))
    vb.autoRange(padding=0.02)
