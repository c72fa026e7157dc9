"""IDX, CIFAR-10, HDF5 and image-folder loaders, with the files written here."""

import gzip
import io
import pickle
import struct
import tarfile
import zlib

import h5py
import numpy as np
import pytest

from nnviz.data import DatasetError, list_datasets, load_dataset
from nnviz.data.folder import decode_image, load_image_folder

# ------------------------------------------------------------------ writers


def idx_bytes(arr, magic=None):
    arr = np.asarray(arr, np.uint8)
    magic = magic if magic is not None else (2051 if arr.ndim == 3 else 2049)
    return struct.pack(">i", magic) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def write_idx_set(folder, n_train=30, n_test=10, gz=True, rng=None, **over):
    rng = rng or np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    content = {
        "train-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (n_train, 28, 28))),
        "train-labels-idx1-ubyte": idx_bytes(np.arange(n_train) % 10),
        "t10k-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (n_test, 28, 28))),
        "t10k-labels-idx1-ubyte": idx_bytes(np.arange(n_test) % 10),
    }
    content.update(over)
    for name, data in content.items():
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data, mtime=0))
        else:
            (folder / name).write_bytes(data)
    return content


def png_bytes(img, filters=(0, 1, 2, 3, 4)):
    """Minimal PNG encoder; row r uses filter filters[r % len(filters)]."""
    img = np.asarray(img, np.uint8)
    if img.ndim == 2:
        img = img[..., None]
    h, w, c = img.shape
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    rows = img.reshape(h, w * c).astype(np.int16)
    out = bytearray()
    for r in range(h):
        f = filters[r % len(filters)]
        cur = rows[r]
        prev = rows[r - 1] if r else np.zeros_like(cur)
        left = np.concatenate([np.zeros(c, np.int16), cur[:-c]])
        upleft = np.concatenate([np.zeros(c, np.int16), prev[:-c]])
        if f == 0:
            pred = 0
        elif f == 1:
            pred = left
        elif f == 2:
            pred = prev
        elif f == 3:
            pred = (left + prev) // 2
        else:
            p = left + prev - upleft
            pa, pb, pc = abs(p - left), abs(p - prev), abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
        out.append(f)
        out += ((cur - pred) & 255).astype(np.uint8).tobytes()

    def chunk(t, body):
        return struct.pack(">I", len(body)) + t + body + struct.pack(">I", zlib.crc32(t + body) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(out))) + chunk(b"IEND", b""))


def cifar_batch(n, rng, label_offset=0):
    return pickle.dumps({b"batch_label": b"x", b"labels": [(i + label_offset) % 10 for i in range(n)],
                         b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                         b"filenames": [b"f%d.png" % i for i in range(n)]}, protocol=2)


CIFAR_META = pickle.dumps({b"label_names": [b"airplane", b"automobile", b"bird", b"cat", b"deer",
                                            b"dog", b"frog", b"horse", b"ship", b"truck"],
                           b"num_cases_per_batch": 4, b"num_vis": 3072}, protocol=2)


def cifar_files(rng):
    files = {f"data_batch_{i}": cifar_batch(4, rng, i) for i in range(1, 6)}
    files["test_batch"] = cifar_batch(3, rng)
    files["batches.meta"] = CIFAR_META
    return files


def write_h5(path, drop=(), **over):
    rng = np.random.default_rng(1)
    data = {"x_train": rng.integers(0, 256, (12, 8, 8), dtype=np.uint8),
            "y_train": np.arange(12) % 3, "x_test": rng.integers(0, 256, (6, 8, 8), dtype=np.uint8),
            "y_test": np.arange(6) % 3, "class_names": np.array([b"a", b"b", b"c"])}
    data.update(over)
    with h5py.File(path, "w") as f:
        for k, v in data.items():
            if k not in drop:
                f[k] = v
    return data


# ---------------------------------------------------------------------- IDX

@pytest.mark.parametrize("gz", [True, False])
def test_idx_gz_and_raw(tmp_path, gz):
    content = write_idx_set(tmp_path / "mnist", gz=gz)
    d = load_dataset("mnist", data_dir=tmp_path)
    assert d.x_train.shape == (30, 1, 28, 28) and d.x_test.shape == (10, 1, 28, 28)
    assert d.x_train.dtype == np.float32 and d.x_train.flags.c_contiguous
    assert d.y_train.dtype == np.int64 and d.y_train.tolist() == [i % 10 for i in range(30)]
    raw = np.frombuffer(content["train-images-idx3-ubyte"], np.uint8, offset=16) / 255.0
    assert d.normalization["mean"][0] == pytest.approx(raw.mean())
    assert d.normalization["std"][0] == pytest.approx(raw.std())
    assert abs(float(d.x_train.mean())) < 1e-5 and float(d.x_train.std()) == pytest.approx(1, abs=1e-4)
    assert d.class_names == [str(i) for i in range(10)] and d.source == str(tmp_path / "mnist")


def test_fashion_mnist_names(tmp_path):
    write_idx_set(tmp_path / "fashion-mnist")
    d = load_dataset("fashion-mnist", data_dir=tmp_path)
    assert d.class_names[0] == "T-shirt/top" and d.class_names[9] == "Ankle boot"


def test_idx_truncated_gzip(tmp_path):
    write_idx_set(tmp_path / "mnist")
    p = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz.*truncated"):
        load_dataset("mnist", data_dir=tmp_path)


def test_idx_corrupt_gzip(tmp_path):
    write_idx_set(tmp_path / "mnist")
    p = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(p.read_bytes())
    data[12:20] = b"\xff" * 8
    p.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.gz.*corrupt"):
        load_dataset("mnist", data_dir=tmp_path)


def test_idx_wrong_magic(tmp_path):
    write_idx_set(tmp_path / "mnist", gz=False,
                  **{"train-labels-idx1-ubyte": idx_bytes(np.arange(30) % 10, magic=2051)})
    with pytest.raises(DatasetError, match="train-labels-idx1-ubyte.*magic"):
        load_dataset("mnist", data_dir=tmp_path)


def test_idx_truncated_body(tmp_path):
    rng = np.random.default_rng(0)
    short = idx_bytes(rng.integers(0, 256, (10, 28, 28)))[:-5]
    write_idx_set(tmp_path / "mnist", gz=False, **{"t10k-images-idx3-ubyte": short})
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte.*truncated"):
        load_dataset("mnist", data_dir=tmp_path)


def test_idx_count_mismatch(tmp_path):
    write_idx_set(tmp_path / "mnist", **{"train-labels-idx1-ubyte": idx_bytes(np.arange(29) % 10)})
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz.*30 images.*29 labels"):
        load_dataset("mnist", data_dir=tmp_path)


def test_idx_label_out_of_range(tmp_path):
    write_idx_set(tmp_path / "mnist", **{"t10k-labels-idx1-ubyte": idx_bytes([0] * 9 + [12])})
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.gz.*labels"):
        load_dataset("mnist", data_dir=tmp_path)


def test_idx_missing(tmp_path):
    with pytest.raises(DatasetError, match="mnist.*download"):
        load_dataset("mnist", data_dir=tmp_path)
    (tmp_path / "mnist").mkdir()
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte"):
        load_dataset("mnist", data_dir=tmp_path)


# -------------------------------------------------------------------- CIFAR

def _check_cifar(d, files):
    assert d.x_train.shape == (20, 3, 32, 32) and d.x_test.shape == (3, 3, 32, 32)
    assert d.class_names[1] == "automobile"
    first = pickle.loads(files["data_batch_1"], encoding="bytes")
    raw = first[b"data"][0].reshape(3, 32, 32) / 255.0
    m, s = np.array(d.normalization["mean"]), np.array(d.normalization["std"])
    assert len(m) == 3
    np.testing.assert_allclose(d.x_train[0], (raw - m[:, None, None]) / s[:, None, None], atol=1e-5)
    assert d.y_train[:4].tolist() == [1, 2, 3, 4]


def test_cifar_extracted(tmp_path):
    files = cifar_files(np.random.default_rng(0))
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for k, v in files.items():
        (folder / k).write_bytes(v)
    _check_cifar(load_dataset("cifar10", data_dir=tmp_path), files)


def test_cifar_targz(tmp_path):
    files = cifar_files(np.random.default_rng(0))
    (tmp_path / "cifar10").mkdir()
    with tarfile.open(tmp_path / "cifar10" / "cifar-10-python.tar.gz", "w:gz") as tf:
        for k, v in files.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{k}")
            info.size = len(v)
            tf.addfile(info, io.BytesIO(v))
    d = load_dataset("cifar10", data_dir=tmp_path)
    _check_cifar(d, files)
    assert "cifar-10-python.tar.gz" in d.source


def test_cifar_bad_labels_and_corrupt(tmp_path):
    rng = np.random.default_rng(0)
    files = cifar_files(rng)
    files["data_batch_3"] = pickle.dumps({b"labels": [0, 1, 2, 10], b"data": np.zeros((4, 3072), np.uint8)})
    folder = tmp_path / "cifar10"
    folder.mkdir()
    for k, v in files.items():
        (folder / k).write_bytes(v)
    with pytest.raises(DatasetError, match="data_batch_3.*labels"):
        load_dataset("cifar10", data_dir=tmp_path)
    (folder / "data_batch_3").write_bytes(b"garbage\x00not a pickle")
    with pytest.raises(DatasetError, match="data_batch_3"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_cifar_refuses_code_in_pickle(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    files = cifar_files(np.random.default_rng(0))
    files["test_batch"] = pickle.dumps({b"labels": [0], b"data": Evil()})
    folder = tmp_path / "cifar10"
    folder.mkdir()
    for k, v in files.items():
        (folder / k).write_bytes(v)
    with pytest.raises(DatasetError, match="test_batch.*not allowed"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_cifar_truncated_archive(tmp_path):
    (tmp_path / "cifar10").mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for k, v in cifar_files(np.random.default_rng(0)).items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{k}")
            info.size = len(v)
            tf.addfile(info, io.BytesIO(v))
    (tmp_path / "cifar10" / "cifar-10-python.tar.gz").write_bytes(buf.getvalue()[:5000])
    with pytest.raises(DatasetError, match="cifar-10-python.tar.gz"):
        load_dataset("cifar10", data_dir=tmp_path)


# --------------------------------------------------------------------- HDF5

def test_hdf5_uint8_images(tmp_path):
    data = write_h5(tmp_path / "s.h5")
    d = load_dataset(str(tmp_path / "s.h5"))
    assert d.name == "s" and d.x_train.shape == (12, 1, 8, 8) and d.class_names == ["a", "b", "c"]
    assert d.normalization["mean"][0] == pytest.approx(data["x_train"].mean() / 255)
    assert d.source == str(tmp_path / "s.h5")


def test_hdf5_float_vectors_and_nchw(tmp_path):
    rng = np.random.default_rng(0)
    write_h5(tmp_path / "v.h5", drop=("class_names",), x_train=rng.normal(3, 2, (12, 5)).astype(np.float32),
             x_test=rng.normal(3, 2, (6, 5)))
    d = load_dataset(str(tmp_path / "v.h5"))
    assert d.input_shape == (5,) and d.class_names == ["0", "1", "2"]
    assert np.allclose(d.x_train.mean(0), 0, atol=1e-5)
    write_h5(tmp_path / "c.h5", x_train=rng.integers(0, 256, (12, 3, 4, 4), dtype=np.uint8),
             x_test=rng.integers(0, 256, (6, 3, 4, 4), dtype=np.uint8))
    d = load_dataset(str(tmp_path / "c.h5"))
    assert d.input_shape == (3, 4, 4) and len(d.normalization["mean"]) == 3


@pytest.mark.parametrize("key", ["x_train", "y_train", "x_test", "y_test"])
def test_hdf5_missing_key(tmp_path, key):
    write_h5(tmp_path / "bad.h5", drop=(key,))
    with pytest.raises(DatasetError, match=f"bad.h5.*{key}"):
        load_dataset(str(tmp_path / "bad.h5"))


def test_hdf5_bad_contents(tmp_path):
    write_h5(tmp_path / "lab.h5", y_test=np.array([0, 1, 2, 3, 0, 1]))
    with pytest.raises(DatasetError, match="lab.h5.*label 3"):
        load_dataset(str(tmp_path / "lab.h5"))
    write_h5(tmp_path / "cnt.h5", y_train=np.arange(11) % 3)
    with pytest.raises(DatasetError, match="cnt.h5.*12 samples.*11"):
        load_dataset(str(tmp_path / "cnt.h5"))
    (tmp_path / "junk.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(DatasetError, match="junk.h5"):
        load_dataset(str(tmp_path / "junk.h5"))


# ------------------------------------------------------------- image folder

@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_png_every_filter_decodes_exactly(tmp_path, channels):
    """PNGs of every filter type, written by the encoder above, read back bit for bit
    (alpha dropped; grey stays one channel)."""
    img = np.random.default_rng(channels).integers(0, 256, (7, 9, channels), dtype=np.uint8)
    p = tmp_path / "x.png"
    p.write_bytes(png_bytes(img))
    grey = channels in (1, 2)
    out = decode_image(p, (9, 7), grey)
    assert np.array_equal(out, img[..., :1] if grey else img[..., :3])


def test_sixteen_bit_png_loads(tmp_path):
    from PIL import Image
    a = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000)
    Image.fromarray(a).save(tmp_path / "deep.png")
    out = decode_image(tmp_path / "deep.png", (4, 3), True)[..., 0]
    np.testing.assert_array_equal(out, np.round(a / 257).astype(np.uint8))


def make_folder(root, sizes=None, n=5, channels=3):
    rng = np.random.default_rng(0)
    for cls in ["cat", "dog"]:
        (root / cls).mkdir(parents=True)
        for i in range(n):
            h, w = (sizes or {}).get((cls, i), (6, 5))
            img = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
            (root / cls / f"img{i}.png").write_bytes(png_bytes(img))


def test_image_folder(tmp_path):
    make_folder(tmp_path / "pets", n=10)
    d = load_dataset(str(tmp_path / "pets"))
    assert d.class_names == ["cat", "dog"] and d.input_shape == (3, 6, 5)
    assert len(d.y_train) == 16 and len(d.y_test) == 4
    assert np.bincount(d.y_test).tolist() == [2, 2]
    d2 = load_image_folder(tmp_path / "pets", seed=0)
    assert np.array_equal(d.x_train, d2.x_train)
    d3 = load_image_folder(tmp_path / "pets", seed=1)
    assert not np.array_equal(d.y_train, d3.y_train) or not np.array_equal(d.x_train, d3.x_train)
    assert len(d.normalization["mean"]) == 3


def test_image_folder_empty(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty.*no class"):
        load_dataset(str(tmp_path / "empty"))
    (tmp_path / "empty" / "cls").mkdir()
    with pytest.raises(DatasetError, match="cls.*no images"):
        load_dataset(str(tmp_path / "empty"))


def test_image_folder_corrupt_image(tmp_path):
    make_folder(tmp_path / "pets")
    (tmp_path / "pets" / "dog" / "img3.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DatasetError, match="img3.png"):
        load_dataset(str(tmp_path / "pets"))
    (tmp_path / "pets" / "dog" / "img3.png").write_bytes(b"hello")
    with pytest.raises(DatasetError, match="img3.png.*unreadable"):
        load_dataset(str(tmp_path / "pets"))
    data = bytearray(png_bytes(np.zeros((6, 5, 3), np.uint8)))
    data[-20] ^= 0xFF  # inside IDAT: CRC no longer matches
    (tmp_path / "pets" / "dog" / "img3.png").write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="img3.png.*corrupt"):
        load_dataset(str(tmp_path / "pets"))


@pytest.mark.parametrize("fmt, ext", [("JPEG", ".jpg"), ("GIF", ".gif"), ("WEBP", ".webp"),
                                      ("TIFF", ".tif"), ("BMP", ".bmp")])
def test_image_folder_other_formats(tmp_path, fmt, ext):
    from PIL import Image, features
    if fmt == "WEBP" and not features.check("webp"):
        pytest.skip("Pillow without WebP")
    make_folder(tmp_path / "pets")
    flat = np.full((6, 5, 3), (200, 40, 90), np.uint8)     # flat colour: lossy formats keep it
    Image.fromarray(flat).save(tmp_path / "pets" / "cat" / f"photo{ext}", format=fmt)
    d = load_image_folder(tmp_path / "pets", test_fraction=0.5)
    assert d.input_shape == (3, 6, 5) and len(d.y_train) + len(d.y_test) == 11
    out = decode_image(tmp_path / "pets" / "cat" / f"photo{ext}", (5, 6), False)
    assert np.abs(out.astype(int) - flat).max() <= (6 if fmt in ("JPEG", "WEBP") else 0)
    (tmp_path / "pets" / "cat" / f"photo{ext}").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 20)
    with pytest.raises(DatasetError, match=f"photo{ext}.*(unreadable|corrupt)"):
        load_dataset(str(tmp_path / "pets"))


def test_image_folder_mixed_sizes_are_resized(tmp_path):
    make_folder(tmp_path / "pets", sizes={("dog", 2): (12, 10)})
    d = load_dataset(str(tmp_path / "pets"))
    assert d.input_shape == (3, 6, 5)
    d = load_dataset(str(tmp_path / "pets"), size=(8, 4))
    assert d.input_shape == (3, 4, 8)
    with pytest.raises(DatasetError, match="size"):
        load_dataset(str(tmp_path / "pets"), size=(0, 4))


def test_image_folder_grey_and_bmp(tmp_path):
    root = tmp_path / "g"
    make_folder(root, channels=1)
    d = load_dataset(str(root))
    assert d.input_shape == (1, 6, 5)
    img = np.random.default_rng(3).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    row = 5 * 3
    stride = (row + 3) & ~3
    pix = np.zeros((6, stride), np.uint8)
    pix[:, :row] = img[::-1, :, ::-1].reshape(6, row)
    hdr = b"BM" + struct.pack("<IHHI", 54 + pix.size, 0, 0, 54) + struct.pack(
        "<IiiHHIIiiII", 40, 5, 6, 1, 24, 0, pix.size, 0, 0, 0, 0)
    (root / "cat" / "extra.bmp").write_bytes(hdr + pix.tobytes())
    d = load_dataset(str(root))
    assert d.input_shape == (3, 6, 5)  # grey promoted to RGB


# ----------------------------------------------------------------- registry

def test_list_datasets(tmp_path):
    write_idx_set(tmp_path / "mnist")
    rows = {r["name"]: r for r in list_datasets(tmp_path)}
    assert set(rows) >= {"circle", "xor", "gauss", "spiral", "moons", "shapes", "color-shapes",
                         "mnist", "fashion-mnist", "cifar10"}
    assert rows["mnist"]["present"] and rows["mnist"]["where"] == str(tmp_path / "mnist")
    assert rows["mnist"]["input_shape"] == [1, 28, 28]
    assert not rows["cifar10"]["present"] and rows["spiral"]["present"]


def test_load_unknown(tmp_path):
    with pytest.raises(DatasetError, match="nope"):
        load_dataset(str(tmp_path / "nope"))
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DatasetError, match="x.txt"):
        load_dataset(str(tmp_path / "x.txt"))


def test_default_data_dir(monkeypatch, tmp_path):
    from nnviz.data import default_data_dir

    monkeypatch.setenv("NNVIZ_DATA_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path
    monkeypatch.delenv("NNVIZ_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    import sys
    if sys.platform.startswith("linux"):
        assert default_data_dir() == tmp_path / "xdg" / "nnviz"
    assert default_data_dir().name == "nnviz"
