"""Image folders: ``root/<class name>/*.png|jpg|jpeg|bmp``.

Classes are the sub-folders in sorted order.  Images are decoded here with
numpy + zlib (no Qt, no Pillow): PNG with 8-bit grey, grey+alpha, RGB, RGBA or
palette pixels, non-interlaced; BMP uncompressed 24/32-bit.  JPEG needs a
decoder nnviz does not ship, so it is reported as an error (convert to PNG).
All images must share one size; grey images are promoted to RGB when the
folder mixes both; alpha is dropped.  The split is a seeded, per-class 80/20.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from .dataset import Dataset, DatasetError, normalize_images

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _unfilter(raw: bytes, w: int, h: int, bpp: int, path) -> np.ndarray:
    stride = w * bpp
    if len(raw) != h * (stride + 1):
        raise DatasetError(f"{path}: PNG image data has {len(raw)} bytes, expected {h * (stride + 1)}")
    rows = np.frombuffer(raw, np.uint8).reshape(h, stride + 1)
    ftypes = rows[:, 0]
    data = rows[:, 1:]
    if ftypes.max(initial=0) > 4:
        raise DatasetError(f"{path}: invalid PNG filter type {int(ftypes.max())}")
    out = np.zeros((h + 1, stride), np.uint8)  # row 0 is the zero "previous" row
    for r in range(h):
        f, line, prev = ftypes[r], data[r], out[r]
        if f == 0:
            out[r + 1] = line
        elif f == 1:  # Sub: running sum along pixels, per byte lane (wraps mod 256)
            out[r + 1] = np.cumsum(line.reshape(w, bpp), axis=0, dtype=np.uint8).reshape(-1)
        elif f == 2:
            out[r + 1] = line + prev
        else:
            cur = out[r + 1]
            li, pv = line.astype(np.int16), prev.astype(np.int16)
            for i in range(0, stride, bpp):  # Average/Paeth depend on the pixel to the left
                a = cur[i - bpp:i].astype(np.int16) if i else np.zeros(bpp, np.int16)
                b = pv[i:i + bpp]
                if f == 3:
                    cur[i:i + bpp] = (li[i:i + bpp] + (a + b) // 2) & 255
                else:
                    c = pv[i - bpp:i] if i else np.zeros(bpp, np.int16)
                    p = a + b - c
                    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
                    pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
                    cur[i:i + bpp] = (li[i:i + bpp] + pred) & 255
    return out[1:]


def decode_png(data: bytes, path="<png>") -> np.ndarray:
    """Decode an 8-bit, non-interlaced PNG to uint8 (H, W, C) with C in {1, 2, 3, 4}."""
    if not data.startswith(PNG_SIGNATURE):
        raise DatasetError(f"{path}: not a PNG file (bad signature)")
    pos, ihdr, idat, plte = 8, None, [], None
    while True:
        if pos + 8 > len(data):
            raise DatasetError(f"{path}: PNG is truncated (no IEND chunk)")
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length or pos + 12 + length > len(data):
            raise DatasetError(f"{path}: PNG is truncated inside chunk {ctype!r}")
        crc = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0]
        if zlib.crc32(ctype + body) & 0xFFFFFFFF != crc:
            raise DatasetError(f"{path}: PNG chunk {ctype.decode('latin-1')} has a bad CRC (corrupt file)")
        pos += 12 + length
        if ctype == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif ctype == b"PLTE":
            plte = np.frombuffer(body, np.uint8).reshape(-1, 3)
        elif ctype == b"IDAT":
            idat.append(body)
        elif ctype == b"IEND":
            break
    if ihdr is None:
        raise DatasetError(f"{path}: PNG has no IHDR chunk")
    w, h, depth, ctype_, comp, filt, interlace = ihdr
    if depth != 8 or ctype_ not in _CHANNELS:
        raise DatasetError(f"{path}: unsupported PNG variant (bit depth {depth}, colour type {ctype_}); "
                           f"only 8-bit grey/RGB/RGBA/palette are supported")
    if interlace != 0:
        raise DatasetError(f"{path}: interlaced PNG is not supported; save it non-interlaced")
    if comp != 0 or filt != 0 or w == 0 or h == 0:
        raise DatasetError(f"{path}: invalid PNG header")
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as e:
        raise DatasetError(f"{path}: corrupt PNG image data ({e})") from None
    bpp = _CHANNELS[ctype_]
    img = _unfilter(raw, w, h, bpp, path).reshape(h, w, bpp)
    if ctype_ == 3:
        if plte is None:
            raise DatasetError(f"{path}: palette PNG without a PLTE chunk")
        if img.max(initial=0) >= len(plte):
            raise DatasetError(f"{path}: palette index out of range")
        img = plte[img[..., 0]]
    return img


def decode_bmp(data: bytes, path="<bmp>") -> np.ndarray:
    """Decode an uncompressed 24/32-bit BMP to uint8 (H, W, 3)."""
    if len(data) < 54 or data[:2] != b"BM":
        raise DatasetError(f"{path}: not a BMP file (bad header)")
    off = struct.unpack("<I", data[10:14])[0]
    w, h, planes, bits, comp = struct.unpack("<iiHHI", data[18:34])
    if bits not in (24, 32) or comp not in (0, 3) or w <= 0 or h == 0:
        raise DatasetError(f"{path}: unsupported BMP variant ({bits}-bit, compression {comp}); "
                           f"use 24/32-bit uncompressed BMP or PNG")
    bpp = bits // 8
    stride = (w * bpp + 3) & ~3
    need = off + stride * abs(h)
    if len(data) < need:
        raise DatasetError(f"{path}: BMP is truncated ({len(data)} of {need} bytes)")
    px = np.frombuffer(data, np.uint8, count=stride * abs(h), offset=off).reshape(abs(h), stride)
    px = px[:, :w * bpp].reshape(abs(h), w, bpp)[..., 2::-1]  # BGR(A) -> RGB
    return px[::-1] if h > 0 else px


def decode_image(path: Path) -> np.ndarray:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise DatasetError(f"{path}: cannot read image ({e.strerror or e})") from None
    ext = Path(path).suffix.lower()
    if data.startswith(PNG_SIGNATURE):
        return decode_png(data, path)
    if data[:2] == b"BM":
        return decode_bmp(data, path)
    if data[:3] == b"\xff\xd8\xff" or ext in (".jpg", ".jpeg"):
        raise DatasetError(f"{path}: JPEG images need a decoder that nnviz does not include; "
                           f"convert the folder to PNG")
    raise DatasetError(f"{path}: unreadable or corrupt image (not PNG/BMP)")


def load_image_folder(root, name: str | None = None, *, seed: int = 0,
                      test_fraction: float = 0.2) -> Dataset:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: image folder not found")
    if not (0.0 < float(test_fraction) < 1.0):
        raise DatasetError(f"test_fraction: must lie in (0, 1), got {test_fraction}")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetError(f"{root}: no class sub-folders (expected {root}/<class>/*.png)")
    files, labels = [], []
    for k, c in enumerate(classes):
        imgs = sorted(p for p in (root / c).iterdir()
                      if p.is_file() and p.suffix.lower() in EXTENSIONS)
        if not imgs:
            raise DatasetError(f"{root / c}: class folder contains no images ({', '.join(EXTENSIONS)})")
        files += imgs
        labels += [k] * len(imgs)
    images, first = [], None
    for p in files:
        img = decode_image(p)
        if img.shape[-1] in (2, 4):
            img = img[..., :-1]  # drop alpha
        if first is None:
            first = (p, img.shape[:2])
        elif img.shape[:2] != first[1]:
            raise DatasetError(f"{p}: image size {img.shape[1]}x{img.shape[0]} differs from "
                               f"{first[1][1]}x{first[1][0]} of {first[0]}; all images must share one size")
        images.append(img)
    c = max(im.shape[-1] for im in images)
    x = np.stack([np.repeat(im, c, axis=-1) if im.shape[-1] != c else im for im in images])
    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    y = np.asarray(labels, np.int64)
    rng = np.random.default_rng(int(seed))
    test_mask = np.zeros(len(y), bool)
    for k in range(len(classes)):
        idx = np.flatnonzero(y == k)
        n_test = int(round(len(idx) * float(test_fraction)))
        if len(idx) > 1:
            n_test = min(max(n_test, 1), len(idx) - 1)
        test_mask[rng.permutation(idx)[:n_test]] = True
    tr, te = np.flatnonzero(~test_mask), np.flatnonzero(test_mask)
    tr, te = tr[rng.permutation(len(tr))], te[rng.permutation(len(te))]
    xtr, xte, norm = normalize_images(x[tr], x[te])
    return Dataset(name=name or root.name, x_train=xtr, y_train=y[tr], x_test=xte, y_test=y[te],
                   class_names=classes, normalization=norm, source=str(root))
