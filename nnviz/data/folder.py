"""Image folders: ``root/<class name>/<image>``, decoded by Pillow.

Pillow reads JPEG, PNG, GIF (first frame), WebP, TIFF and BMP; a maintained decoder is both
faster and safer than our own (issue 20: short IHDR/PLTE chunks, a 3000x3000 PNG that took two
minutes in a per-pixel loop). Classes are the sub-folders in sorted order; a folder name that is
not valid UTF-8 becomes a class name with the odd bytes escaped. Every image is resized to one
size (default: the first image's, at most MAX_SIDE pixels a side) and is grey when every image
is grey, RGB otherwise; alpha is dropped. Sizes are checked from the headers before decoding
(MAX_PIXELS per image, MAX_VALUES for the whole set). The split is a seeded, per-class one.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from ..files import FileRefused, open_regular
from .dataset import MAX_CLASSES, MAX_VALUES, Dataset, DatasetError, normalize_images

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MAX_PIXELS = 50_000_000     # per image, from its header: a 20000x20000 PNG is refused unread
MAX_SIDE = 128              # the default size is the first image's, scaled down to this
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


def class_name(folder_name: str) -> str:
    """A printable, UTF-8-safe class name for a folder name from the file system."""
    return os.fsencode(folder_name).decode("utf-8", errors="backslashreplace")


def _open(path: Path):
    from PIL import Image
    try:
        fh = open_regular(path)
    except FileRefused as e:
        raise DatasetError(f"{path}: {e}") from None
    except OSError as e:
        raise DatasetError(f"{path}: cannot read image ({e.strerror or e})") from None
    try:
        with warnings.catch_warnings():     # our own pixel limit below is the lower one
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(fh)      # reads the header only
    except Image.DecompressionBombError as e:
        fh.close()
        raise DatasetError(f"{path}: image too large ({e}); nnviz loads images of at most "
                           f"{MAX_PIXELS:,} pixels") from None
    except Exception as e:       # Pillow: UnidentifiedImageError, SyntaxError, struct.error ...
        fh.close()
        raise DatasetError(f"{path}: unreadable or corrupt image ({_why(e)})") from None
    return fh, im


def _why(e: Exception) -> str:
    text = " ".join(str(e).split())[:200]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _header(path: Path) -> tuple[int, int, bool]:
    """(width, height, grey) from the header, without decoding the pixels."""
    fh, im = _open(path)
    with fh, im:
        w, h = im.size
        grey = im.mode in _GREY_MODES or (im.mode == "P" and _grey_palette(im))
    if w < 1 or h < 1 or w * h > MAX_PIXELS:
        raise DatasetError(f"{path}: image too large ({w}x{h} pixels); nnviz loads images of at "
                           f"most {MAX_PIXELS:,} pixels")
    return w, h, grey


def _grey_palette(im) -> bool:
    pal = im.getpalette() or []
    rgb = np.asarray(pal[:len(pal) // 3 * 3], np.uint8).reshape(-1, 3)
    return bool(len(rgb)) and bool((rgb == rgb[:, :1]).all())


def decode_image(path: Path, size: tuple[int, int], grey: bool) -> np.ndarray:
    """uint8 (H, W, C) of `size` = (width, height), C = 1 when `grey` else 3."""
    from PIL import Image
    fh, im = _open(path)
    mode = "L" if grey else "RGB"
    try:
        with fh, im:
            if im.format == "JPEG":
                im.draft(mode, size)     # decode a big JPEG at a fraction of its size
            if im.mode == "P" and "transparency" in im.info:
                im = im.convert("RGBA")
            if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):    # 16-bit and float: to 8-bit
                a = np.asarray(im, np.float64)
                if im.mode.startswith("I;16"):
                    a = a / 257.0                                 # 65535 -> 255
                elif a.size and a.max() > 255:
                    a = a * (255.0 / a.max())
                im = Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8))
            im = im.convert(mode)
            if im.size != size:
                im = im.resize(size, Image.Resampling.BILINEAR)
            arr = np.asarray(im, np.uint8)
    except DatasetError:
        raise
    except Exception as e:       # truncated or corrupt pixel data, whatever the plugin raises
        raise DatasetError(f"{path}: unreadable or corrupt image ({_why(e)})") from None
    return arr[..., None] if arr.ndim == 2 else arr


def _size(size, first: tuple[int, int]) -> tuple[int, int]:
    if size is None:
        w, h = first
        scale = min(1.0, MAX_SIDE / max(w, h))
        return max(1, round(w * scale)), max(1, round(h * scale))
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (size, size)
    try:
        w, h = (int(v) for v in size)
    except (TypeError, ValueError):
        raise DatasetError(f"size: expected (width, height) or one number, got {size!r}") from None
    if not (1 <= w <= 4096 and 1 <= h <= 4096):
        raise DatasetError(f"size: width and height must lie in 1..4096, got {w}x{h}")
    return w, h


def load_image_folder(root, name: str | None = None, *, seed: int = 0,
                      test_fraction: float = 0.2, size=None) -> Dataset:
    """`size`: (width, height) or one number for squares; default the first image's size,
    scaled to at most MAX_SIDE pixels a side."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: image folder not found")
    if not (0.0 < float(test_fraction) < 1.0):
        raise DatasetError(f"test_fraction: must lie in (0, 1), got {test_fraction}")
    folders = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                     key=lambda p: os.fsencode(p.name))
    if not folders:
        raise DatasetError(f"{root}: no class sub-folders (expected {root}/<class>/<image>.png)")
    if len(folders) > MAX_CLASSES:
        raise DatasetError(f"{root}: {len(folders):,} class folders, more than {MAX_CLASSES:,}")
    files, labels = [], []
    for k, folder in enumerate(folders):
        imgs = sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS and p.is_file())
        if not imgs:
            raise DatasetError(f"{class_name(str(folder))}: class folder contains no images "
                               f"({', '.join(EXTENSIONS)})")
        files += imgs
        labels += [k] * len(imgs)
    heads = [_header(p) for p in files]
    grey = all(g for _, _, g in heads)
    w, h = _size(size, heads[0][:2])
    c = 1 if grey else 3
    values = len(files) * w * h * c
    if values > MAX_VALUES:
        raise DatasetError(f"{root}: {len(files):,} images of {w}x{h}x{c} are {values:,} values, "
                           f"more than the {MAX_VALUES:,} nnviz loads; pick a smaller size")
    x = np.empty((len(files), h, w, c), np.uint8)
    for i, p in enumerate(files):
        x[i] = decode_image(p, (w, h), grey)
    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    y = np.asarray(labels, np.int64)
    rng = np.random.default_rng(int(seed))
    test_mask = np.zeros(len(y), bool)
    for k in range(len(folders)):
        idx = np.flatnonzero(y == k)
        n_test = int(round(len(idx) * float(test_fraction)))
        if len(idx) > 1:
            n_test = min(max(n_test, 1), len(idx) - 1)
        test_mask[rng.permutation(idx)[:n_test]] = True
    tr, te = np.flatnonzero(~test_mask), np.flatnonzero(test_mask)
    tr, te = tr[rng.permutation(len(tr))], te[rng.permutation(len(te))]
    xtr, xte, norm = normalize_images(x[tr], x[te])
    return Dataset(name=name or class_name(root.name), x_train=xtr, y_train=y[tr], x_test=xte,
                   y_test=y[te], class_names=[class_name(p.name) for p in folders],
                   normalization=norm, source=class_name(str(root)))
