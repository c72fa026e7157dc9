"""Hostile datasets (issue 20): files that read other files, block, or claim absurd sizes are
refused with one DatasetError naming them, before anything big is decompressed or allocated."""
import gzip
import json
import os
import pickle
import struct
import threading
import tracemalloc
import zlib

import h5py
import numpy as np
import pytest

from nnviz.data import DatasetError, load_dataset
from nnviz.data.folder import load_image_folder


def refused(fn, *needles, peak_mb=None):
    """fn() raises DatasetError containing every needle, within 30 s and `peak_mb` of memory."""
    box = {}

    def run():
        tracemalloc.start()
        try:
            fn()
            box["ok"] = True
        except DatasetError as e:
            box["err"] = str(e)
        except BaseException as e:       # reported below
            box["other"] = repr(e)
        finally:
            box["peak"] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(30)
    assert not t.is_alive(), "hung"
    assert "err" in box, box
    for n in needles:
        assert n in box["err"], (n, box["err"])
    if peak_mb is not None:
        assert box["peak"] < peak_mb << 20, box["peak"]
    return box["err"]


# ---- HDF5 sets -------------------------------------------------------------------------------
def write_set(path, n=8, **extra):
    with h5py.File(path, "w") as f:
        f["x_train"] = np.zeros((n, 4, 4), np.uint8)
        f["y_train"] = np.arange(n) % 2
        f["x_test"] = np.zeros((n, 4, 4), np.uint8)
        f["y_test"] = np.arange(n) % 2
        for k, v in extra.items():
            v(f) if callable(v) else f.__setitem__(k, v)
    return path


def test_hdf5_set_with_external_storage_is_refused(tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(os.urandom(8 * 16))

    def ext(f):
        del f["x_test"]
        f.create_dataset("x_test", shape=(8, 4, 4), dtype="u1", external=[(str(secret), 0, 128)])
    p = write_set(tmp_path / "s.h5", ext=ext)
    refused(lambda: load_dataset(str(p)), "s.h5", "external storage")


@pytest.mark.parametrize("target", ["other", "fifo"])
def test_hdf5_set_with_external_link_is_refused(tmp_path, target):
    other = write_set(tmp_path / "other.h5")
    if target == "fifo":
        other = tmp_path / "pipe"
        os.mkfifo(other)

    def link(f):
        del f["x_train"]
        f["x_train"] = h5py.ExternalLink(str(other), "/x_train")
    p = write_set(tmp_path / "s.h5", link=link)
    refused(lambda: load_dataset(str(p)), "s.h5", "external link")


def test_hdf5_set_whose_data_sits_on_a_fifo_is_refused(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def ext(f):
        del f["x_train"]
        f.create_dataset("x_train", shape=(8, 4, 4), dtype="u1", external=[(str(fifo), 0, 128)])
    p = write_set(tmp_path / "s.h5", ext=ext)
    refused(lambda: load_dataset(str(p)), "external storage")


def test_a_fifo_as_a_dataset_file_is_refused(tmp_path):
    from nnviz.data.hdf5 import load_hdf5
    fifo = tmp_path / "set.h5"
    os.mkfifo(fifo)
    refused(lambda: load_hdf5(fifo), "set.h5", "FIFO")
    refused(lambda: load_dataset(str(fifo)), "set.h5", "not a regular file or folder")


def test_hdf5_compressed_bomb_is_refused_from_its_shape(tmp_path, monkeypatch):
    import nnviz.data.hdf5 as H
    monkeypatch.setattr(H, "MAX_VALUES", 1 << 19)

    def bomb(f):
        del f["x_train"]
        f.create_dataset("x_train", shape=(64, 128, 128), dtype="u1", compression="gzip",
                         chunks=(1, 128, 128), fillvalue=0)
        del f["y_train"]
        f["y_train"] = np.zeros(64, np.int64)
    p = write_set(tmp_path / "s.h5", bomb=bomb)
    refused(lambda: load_dataset(str(p)), "'x_train' declares shape (64, 128, 128)", peak_mb=8)


def test_hdf5_label_of_2_62_is_refused_without_building_classes(tmp_path):
    p = write_set(tmp_path / "s.h5")
    with h5py.File(p, "r+") as f:
        del f["y_train"]
        f["y_train"] = np.array([0, 1, 2 ** 62, 1, 0, 1, 0, 1], np.int64)
    refused(lambda: load_dataset(str(p)), f"label {2 ** 62}", "classes", peak_mb=8)


# ---- IDX ---------------------------------------------------------------------------------------
def idx_folder(folder, images_train):
    lab = lambda n: struct.pack(">iI", 2049, n) + bytes(n)
    img = lambda n: struct.pack(">iIII", 2051, n, 28, 28) + bytes(n * 784)
    folder.mkdir(parents=True, exist_ok=True)
    files = {"train-images-idx3-ubyte.gz": images_train, "train-labels-idx1-ubyte.gz": lab(3),
             "t10k-images-idx3-ubyte.gz": img(2), "t10k-labels-idx1-ubyte.gz": lab(2)}
    for name, data in files.items():
        (folder / name).write_bytes(data if name.startswith("train-images") and not
                                    data.startswith(struct.pack(">i", 2051)) else gzip.compress(data, 1))


def test_idx_header_overflow_is_refused(tmp_path):
    # 2**32-1 cubed overflows int64 (the old check multiplied in numpy and passed)
    head = struct.pack(">iIII", 2051, 2 ** 32 - 1, 2 ** 32 - 1, 2 ** 32 - 1)
    idx_folder(tmp_path / "mnist", head + bytes(100))
    refused(lambda: load_dataset("mnist", data_dir=tmp_path), "header declares",
            f"{(2 ** 32 - 1) ** 3:,} values")


def test_idx_gzip_bomb_is_not_inflated(tmp_path):
    """A 3-image header followed by 256 MiB of zeros, gzipped to ~250 KB: reading stops one
    byte past what the header promises."""
    body = struct.pack(">iIII", 2051, 3, 28, 28) + bytes(3 * 784)
    comp = zlib.compressobj(1, zlib.DEFLATED, 31)
    parts = [comp.compress(body)]
    block = bytes(1 << 20)
    parts += [comp.compress(block) for _ in range(256)]
    parts.append(comp.flush())
    idx_folder(tmp_path / "mnist", b"".join(parts))
    refused(lambda: load_dataset("mnist", data_dir=tmp_path), "trailing", peak_mb=40)


def test_idx_header_over_budget_is_refused_before_inflating(tmp_path, monkeypatch):
    import nnviz.data.idx as I
    monkeypatch.setattr(I, "MAX_VALUES", 10_000)
    idx_folder(tmp_path / "mnist", gzip.compress(struct.pack(">iIII", 2051, 60000, 28, 28), 1))
    refused(lambda: load_dataset("mnist", data_dir=tmp_path), "60000x28x28", "more than the 10,000")


def test_idx_fifo_is_refused(tmp_path):
    folder = tmp_path / "mnist"
    idx_folder(folder, gzip.compress(struct.pack(">iIII", 2051, 3, 28, 28) + bytes(3 * 784)))
    os.unlink(folder / "train-labels-idx1-ubyte.gz")
    os.mkfifo(folder / "train-labels-idx1-ubyte")
    # find_file skips a FIFO (not a regular file): the set is reported missing, nothing blocks
    refused(lambda: load_dataset("mnist", data_dir=tmp_path), "train-labels-idx1-ubyte")
    from nnviz.data.idx import LABEL_MAGIC, read_idx
    refused(lambda: read_idx(folder / "train-labels-idx1-ubyte", LABEL_MAGIC), "FIFO")


# ---- CIFAR ---------------------------------------------------------------------------------------
def test_cifar_label_2_70_is_one_error(tmp_path):
    folder = tmp_path / "cifar10"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        d = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 2 ** 70]}
        (folder / name).write_bytes(pickle.dumps(d))
    refused(lambda: load_dataset("cifar10", data_dir=tmp_path), "data_batch_1", "'labels'")


# ---- image folders ----------------------------------------------------------------------------------
def png(w, h, body=None, ihdr=None, extra=()):
    def chunk(t, b):
        return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0) if ihdr is None else ihdr
    body = zlib.compress(bytes((w + 1) * h)) if body is None else body
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + b"".join(chunk(t, b) for t, b in extra)
            + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def folder_with(root, name, data):
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True, exist_ok=True)
        (root / cls / "ok.png").write_bytes(png(4, 4))
    (root / "b" / name).write_bytes(data)
    return root


@pytest.mark.parametrize("side", [20000, 8000])
def test_a_huge_png_is_refused_from_its_header(tmp_path, side):
    root = folder_with(tmp_path / "f", "huge.png", png(side, side, body=zlib.compress(b"\0" * 100)))
    refused(lambda: load_image_folder(root), "huge.png", "image too large", "50,000,000 pixels",
            peak_mb=16)


def test_short_ihdr_is_one_error_and_short_plte_loads(tmp_path):
    """Both printed tracebacks with nnviz's own decoder; Pillow refuses the first and pads
    the palette of the second."""
    root = folder_with(tmp_path / "f", "bad.png", png(4, 4, ihdr=b"\0\0\0\4\0"))
    refused(lambda: load_image_folder(root), "bad.png", "corrupt")
    (root / "b" / "bad.png").write_bytes(png(4, 4, ihdr=struct.pack(">IIBBBBB", 4, 4, 8, 3, 0, 0, 0),
                                             extra=[(b"PLTE", b"\1\2")]))
    d = load_image_folder(root, test_fraction=0.5)
    assert d.input_shape == (3, 4, 4) and len(d.y_train) + len(d.y_test) == 3   # a colour palette


def test_a_3000_square_png_loads_resized(tmp_path):
    from PIL import Image
    root = folder_with(tmp_path / "f", "ok2.png", png(4, 4))
    Image.new("L", (3000, 3000), 77).save(root / "b" / "ok2.png")
    d = load_image_folder(root, size=16, test_fraction=0.5)
    assert d.input_shape == (1, 16, 16) and len(d.y_train) + len(d.y_test) == 3


def test_non_utf8_folder_names_become_escaped_class_names(tmp_path):
    from nnviz.engine import model_from_spec
    from nnviz.io import load_model, save_model
    root = tmp_path / "f"
    root.mkdir()
    for raw in (b"caf\xe9", b"plain"):
        folder = os.path.join(os.fsencode(root), raw)
        os.mkdir(folder)
        with open(os.path.join(folder, b"x.png"), "wb") as fh:
            fh.write(png(4, 4))
        with open(os.path.join(folder, b"y.png"), "wb") as fh:
            fh.write(png(4, 4))
    d = load_image_folder(root)
    assert d.class_names == ["caf\\xe9", "plain"]
    model = model_from_spec({"input_shape": [1, 4, 4], "layers": [
        {"type": "Flatten"}, {"type": "Dense", "out_features": 2}]})
    out = save_model(tmp_path / "m.h5", model, dataset=d)
    assert load_model(out).meta["dataset"]["class_names"] == ["caf\\xe9", "plain"]
    json.dumps(d.describe())


def test_a_fifo_among_the_images_is_refused(tmp_path):
    root = folder_with(tmp_path / "f", "ok2.png", png(4, 4))
    os.unlink(root / "b" / "ok2.png")
    os.mkfifo(root / "b" / "pipe.png")
    d = load_image_folder(root)          # not a regular file: not an image of the set
    assert len(d.y_train) + len(d.y_test) == 2


def test_cli_image_size(tmp_path, capsys):
    from nnviz.cli import main
    root = folder_with(tmp_path / "f", "ok2.png", png(4, 4))
    (root / "a" / "ok3.png").write_bytes(png(9, 5))
    out = tmp_path / "m.h5"
    assert main(["train", "--model", "mlp1", "--data", str(root), "--image-size", "6",
                 "--batch-size", "2", "--epochs", "1", "--out", str(out)]) == 0
    from nnviz.io import load_model
    assert load_model(out).meta["dataset"]["input_shape"] == [1, 6, 6]
    capsys.readouterr()
    assert main(["train", "--data", "xor", "--image-size", "6"]) == 2
    assert "--image-size applies to image folders" in capsys.readouterr().err
