"""Damaged model files: every variant ends in ModelFormatError or in a model that runs.

The variants (seeded) are byte-level (flips, truncation, zeroed or random ranges) and
HDF5-level (a group, dataset or attribute deleted, a dataset's shape or dtype changed, a JSON
attribute mangled). They run in a child process so that a crash or a hang inside the HDF5
library is reported with its case number instead of taking pytest down.

Run by hand:  python tests/test_io_fuzz.py --worker BASE.h5 WORKDIR FIRST COUNT SEED
"""
import json
import os
import subprocess
import sys
import time
import traceback

import numpy as np
import pytest

N_BYTE = 320
N_H5 = 210
SEED = 20240601
CASE_BUDGET_S = 5.0        # one load, forward and resume step
TOTAL_BUDGET_S = 150.0

SPEC = {"name": "fuzz-net", "input_shape": [1, 6, 6], "layers": [
    {"type": "Conv2D", "out_channels": 2, "kernel_size": 3, "padding": 1},
    {"type": "BatchNorm"}, {"type": "ReLU"}, {"type": "MaxPool2D", "kernel_size": 2},
    {"type": "Flatten"}, {"type": "Dropout", "p": 0.2},
    {"type": "Dense", "out_features": 3}]}


def make_data():
    from nnviz.data.dataset import Dataset
    rng = np.random.default_rng(0)
    x = rng.standard_normal((24, 1, 6, 6)).astype(np.float32)
    y = rng.integers(0, 3, 24)
    return Dataset(name="fuzz", x_train=x[:16], y_train=y[:16], x_test=x[16:], y_test=y[16:],
                   class_names=["a", "b", "c"])


def make_base(path):
    from nnviz.engine import model_from_spec
    from nnviz.io import save_model
    from nnviz.train import Trainer
    tr = Trainer(model_from_spec(SPEC, seed=1), make_data(), optimizer="adam", lr=0.01,
                 batch_size=4, seed=2)
    for _ in range(3):
        tr.step()
    return save_model(path, tr.model, trainer=tr)


# ---- mutations -------------------------------------------------------------------------------
def byte_variant(data, rng):
    b = bytearray(data)
    n = len(b)
    kind = rng.integers(6)
    if kind == 0:                                   # flip a few random bytes
        for i in rng.integers(0, n, rng.integers(1, 16)):
            b[i] ^= int(rng.integers(1, 256))
        return "flip", bytes(b)
    if kind == 1:                                   # truncate
        return "truncate", bytes(b[:int(rng.integers(0, n))])
    if kind == 2:                                   # zero a range
        i = int(rng.integers(0, n))
        b[i:i + int(rng.integers(1, 512))] = bytes(min(n - i, len(b[i:i + 511 + 1])))
        return "zero", bytes(b[:n])
    if kind == 3:                                   # random bytes over a range
        i = int(rng.integers(0, n))
        k = min(int(rng.integers(1, 64)), n - i)
        b[i:i + k] = rng.integers(0, 256, k, dtype=np.uint8).tobytes()
        return "random-range", bytes(b)
    if kind == 4:                                   # flips in the first 2 KiB: superblock, headers
        for i in rng.integers(0, min(n, 2048), rng.integers(1, 4)):
            b[i] ^= 1 << int(rng.integers(8))
        return "flip-header", bytes(b)
    i = int(rng.integers(0, n))                     # insert junk (shifts every offset)
    return "insert", bytes(b[:i]) + rng.integers(0, 256, int(rng.integers(1, 32)),
                                                 dtype=np.uint8).tobytes() + bytes(b[i:])


def inventory(path):
    import h5py
    groups, datasets, attrs = [], [], []
    with h5py.File(path, "r") as f:
        attrs += [("/", a) for a in f.attrs]

        def visit(name, obj):
            (datasets if isinstance(obj, h5py.Dataset) else groups).append(name)
            attrs.extend((name, a) for a in obj.attrs)
        f.visititems(visit)
    return groups, datasets, attrs


def _mangle_text(text, rng):
    kind = rng.integers(5)
    if kind == 0 and text:
        i = int(rng.integers(len(text)))
        return text[:i] + chr(int(rng.integers(32, 127))) + text[i + 1:]
    if kind == 1:
        return text[:int(rng.integers(0, len(text) + 1))]
    if kind == 2:
        try:
            v = json.loads(text)
        except ValueError:
            return "[]"
        if isinstance(v, dict) and v:
            k = list(v)[int(rng.integers(len(v)))]
            choice = rng.integers(4)
            v[k] = [None, -1, "x", {"a": []}][choice]
        else:
            v = {"type": "Bogus"}
        return json.dumps(v)
    if kind == 3:
        return json.dumps([1, 2, 3])
    return "\udcff" if rng.integers(2) else ""


def h5_variant(base, out, inv, rng):
    import h5py
    groups, datasets, attrs = inv
    with open(base, "rb") as src, open(out, "wb") as dst:
        dst.write(src.read())
    kind = int(rng.integers(7))
    with h5py.File(out, "r+") as f:
        if kind == 0:
            g = groups[int(rng.integers(len(groups)))]
            del f[g]
            return f"del-group {g}"
        if kind == 1:
            d = datasets[int(rng.integers(len(datasets)))]
            del f[d]
            return f"del-dataset {d}"
        if kind == 2:
            o, a = attrs[int(rng.integers(len(attrs)))]
            del f[o].attrs[a]
            return f"del-attr {o}@{a}"
        if kind == 3:                               # same name, other shape (and CRC kept)
            d = datasets[int(rng.integers(len(datasets)))]
            old = f[d]
            shape = tuple(int(rng.integers(0, 5)) for _ in range(int(rng.integers(0, 4))))
            crc = dict(old.attrs)
            del f[d]
            new = f.create_dataset(d, data=np.ones(shape, np.float32))
            for k, v in crc.items():
                new.attrs[k] = v
            return f"reshape {d} {shape}"
        if kind == 4:                               # other dtype
            d = datasets[int(rng.integers(len(datasets)))]
            arr = np.asarray(f[d][()])
            del f[d]
            f[d] = arr.astype([np.int8, np.float64, "S4", np.complex64][int(rng.integers(4))]) \
                if arr.dtype.kind in "biuf" else np.zeros(3)
            return f"retype {d}"
        o, a = attrs[int(rng.integers(len(attrs)))]
        v = f[o].attrs[a]
        if kind == 5 and isinstance(v, (str, bytes)):
            text = v.decode("utf-8", "replace") if isinstance(v, bytes) else v
            try:
                f[o].attrs[a] = _mangle_text(text, rng)
            except (UnicodeEncodeError, ValueError):
                f[o].attrs[a] = b"\xff\xfe"
            return f"mangle-json {o}@{a}"
        f[o].attrs[a] = [np.int64(-7), np.float64(1e308), "text", np.arange(4),
                         np.bool_(True)][int(rng.integers(5))]
        return f"retype-attr {o}@{a}"


# ---- the child process -----------------------------------------------------------------------
def check_one(path, data):
    """'error' for ModelFormatError, 'ok' for a model that runs (and resumes)."""
    from nnviz.io import ModelFormatError, load_model
    from nnviz.train import Trainer
    try:
        loaded = load_model(path)
    except ModelFormatError as e:
        assert str(e).startswith(f"{path}: "), str(e)
        return "error"
    model = loaded.model
    out = model.predict_logits(data.x_test)
    assert out.shape[0] == len(data.x_test)
    if loaded.meta["training"] and tuple(model.input_shape) == data.input_shape \
            and out.shape[1:] == (3,):
        tr = Trainer(model, data, batch_size=4)
        try:
            tr.load_state_dict(loaded.meta["training"])
        except Exception as e:
            # the file loaded, but its training state did not fit: that must have been
            # caught by load_model
            raise AssertionError("load_model accepted a training state the trainer rejects") from e
    return "ok"


def worker(base, workdir, first, count, seed):
    import numba
    numba.set_num_threads(1)
    data = make_data()
    with open(base, "rb") as fh:
        raw = fh.read()
    inv = inventory(base)
    for i in range(first, first + count):
        rng = np.random.default_rng([seed, i])
        p = os.path.join(workdir, f"case{i}.h5")
        try:
            if i < N_BYTE:
                kind, blob = byte_variant(raw, rng)
                with open(p, "wb") as fh:
                    fh.write(blob)
            else:
                kind = h5_variant(base, p, inv, rng)
        except Exception as e:      # the edit itself failed (e.g. h5py refused): skip it
            print(f"SKIP {i} {type(e).__name__}", flush=True)
            continue
        print(f"START {i} {kind}", flush=True)
        t0 = time.perf_counter()
        try:
            res = check_one(p, data)
        except BaseException:
            res = "FAIL " + " | ".join(traceback.format_exc().splitlines()[-6:])
        dt = time.perf_counter() - t0
        if dt > CASE_BUDGET_S:
            res = f"FAIL slow {dt:.1f}s ({res})"
        print(f"DONE {i} {res}", flush=True)
        os.unlink(p)


def run_all(base, workdir, total, seed=SEED):
    """Run cases [0, total) in child processes; a crash or hang is recorded and skipped."""
    results, skipped, problems = {}, 0, []
    nxt, deadline = 0, time.monotonic() + TOTAL_BUDGET_S
    env = dict(os.environ, PYTHONHASHSEED="0")
    while nxt < total:
        left = deadline - time.monotonic()
        if left <= 0:
            problems.append(f"out of time at case {nxt}")
            break
        proc = _run_child(base, workdir, nxt, total - nxt, seed, env, left)
        started, last = None, nxt - 1
        for line in proc["stdout"].splitlines():
            parts = line.split(" ", 2)
            if parts[0] == "START":
                started = int(parts[1])
            elif parts[0] == "DONE":
                results[int(parts[1])] = parts[2]
                last, started = int(parts[1]), None
            elif parts[0] == "SKIP":
                skipped += 1
                last = int(parts[1])
        if proc["rc"] == 0:
            break
        where = started if started is not None else last + 1
        problems.append(f"case {where}: child {'timed out' if proc['timeout'] else 'died'} "
                        f"(rc {proc['rc']}): {proc['stderr'][-800:]}")
        nxt = where + 1
    return results, skipped, problems


def _run_child(base, workdir, first, count, seed, env, left):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", str(base), str(workdir),
           str(first), str(count), str(seed)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=left)
        return {"rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr, "timeout": False}
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        return {"rc": -9, "stdout": out, "stderr": err, "timeout": True}


# ---- the test ------------------------------------------------------------------------------
def test_damaged_files_fail_cleanly(tmp_path):
    base = make_base(tmp_path / "base.h5")
    work = tmp_path / "cases"
    work.mkdir()
    total = N_BYTE + N_H5
    t0 = time.monotonic()
    results, skipped, problems = run_all(base, work, total)
    failures = {i: r for i, r in results.items() if r not in ("ok", "error")}
    counts = {k: sum(r == k for r in results.values()) for k in ("ok", "error")}
    print(f"fuzz: {len(results)} cases, {counts}, {skipped} skipped, "
          f"{time.monotonic() - t0:.1f}s, problems: {problems}")
    assert not problems, problems
    assert not failures, dict(list(failures.items())[:10])
    assert len(results) >= 500
    assert counts["error"] >= 200          # most damage is detected


# ---- hostile files (issue 20): made on purpose, not by random damage ---------------------------
KERNEL = "model_weights/conv2d/conv2d/kernel:0"


def _hostile(base, tmp_path, edit, name="hostile.h5"):
    import shutil

    import h5py
    p = tmp_path / name
    shutil.copy(base, p)
    with h5py.File(p, "r+") as f:
        edit(f, tmp_path)
    return p


def _refused(path, *needles):
    """load_model raises ModelFormatError naming the file and the reason, in a bounded time.

    A FIFO that h5py opened would block for ever: a writer end is opened to release it, and
    the test fails instead of hanging."""
    import threading

    from nnviz.io import ModelFormatError, load_model
    box = {}

    def run():
        try:
            box["ok"] = load_model(path)
        except ModelFormatError as e:
            box["err"] = str(e)
        except BaseException as e:     # reported below
            box["other"] = repr(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(30)
    if t.is_alive():
        for fifo in _FIFOS:
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        raise AssertionError(f"load_model({path}) hung")
    assert "err" in box, box
    assert box["err"].startswith(f"{path}: "), box["err"]
    for n in needles:
        assert n in box["err"], (n, box["err"])
    return box["err"]


_FIFOS = []


def _fifo(path):
    os.mkfifo(path)
    _FIFOS.append(str(path))
    return path


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return make_base(tmp_path_factory.mktemp("hostile") / "base.h5")


def _replace_kernel(f, **kw):
    ds = f[KERNEL]
    shape, dtype = ds.shape, ds.dtype
    del f[KERNEL]
    f.create_dataset(KERNEL, shape=shape, dtype=dtype, **kw)
    return f[KERNEL]


@pytest.mark.parametrize("keep_crc", [False, True])
def test_external_storage_is_refused(base, tmp_path, keep_crc):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n" * 8)

    def edit(f, _):
        n = int(np.prod(f[KERNEL].shape)) * 4
        ds = _replace_kernel(f, external=[(str(secret), 0, n)])
        if keep_crc:     # an attacker who recomputed the checksum gains nothing
            from nnviz.io.tree import crc32
            ds.attrs["nnviz_crc32"] = np.uint32(crc32(np.frombuffer(secret.read_bytes()[:n], "<f4")))
    _refused(_hostile(base, tmp_path, edit), "external storage", "refused")


def test_external_storage_in_history_and_on_a_fifo_is_refused(base, tmp_path):
    fifo = _fifo(tmp_path / "pipe")

    def edit(f, _):
        f["nnviz/extra"].create_dataset("x", shape=(16,), dtype="u1", external=[(str(fifo), 0, 16)]) \
            if "nnviz/extra" in f else f.create_group("nnviz/extra").create_dataset(
                "x", shape=(16,), dtype="u1", external=[(str(fifo), 0, 16)])
    _refused(_hostile(base, tmp_path, edit), "external storage")


@pytest.mark.parametrize("target", ["model", "fifo", "passwd"])
def test_external_links_are_refused(base, tmp_path, target):
    import h5py
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as g:
        g.create_dataset("k", data=np.ones((3, 3, 1, 2), np.float32))
    dest = {"model": str(other), "fifo": str(_fifo(tmp_path / "linkpipe")), "passwd": "/etc/passwd"}[target]

    def edit(f, _):
        del f[KERNEL]
        f[KERNEL] = h5py.ExternalLink(dest, "/k")
    _refused(_hostile(base, tmp_path, edit), "external link")


def test_any_hdf5_model_format_is_checked_before_its_reader(tmp_path):
    """A Keras-layout file (no nnviz group): the registry refuses external data for every format."""
    import h5py
    p = tmp_path / "keras.h5"
    with h5py.File(p, "w") as f:
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"layers": []}})
        g = f.create_group("model_weights/dense/dense")
        g.create_dataset("kernel:0", shape=(4, 2), dtype="f4", external=[("/etc/passwd", 0, 32)])
    _refused(p, "external storage")


def test_a_fifo_named_like_a_model_is_refused(tmp_path):
    _refused(_fifo(tmp_path / "m.h5"), "not a regular file")


def test_a_device_is_refused():
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    _refused("/dev/zero", "not a regular file")


def test_many_small_compressed_arrays_are_refused_whole(base, tmp_path):
    """600 arrays of 1 MiB zeros, gzip-compressed to ~1 KiB each: each array passes a
    per-array check, together they would take 600 MiB. The file budget counts them all."""
    def edit(f, _):
        g = f["nnviz"].require_group("extra")
        for i in range(600):
            g.create_dataset(f"a{i}", data=np.zeros(1 << 18, np.float32), compression="gzip",
                             chunks=(1 << 18,))
    p = _hostile(base, tmp_path, edit)
    assert p.stat().st_size < 8 << 20
    _refused(p, "declare", "bytes in all")


def test_a_huge_declared_layer_fails_before_allocating(base, tmp_path):
    import tracemalloc

    def edit(f, _):
        spec = json.loads(f["nnviz"].attrs["model_spec"])
        spec["layers"][-1]["out_features"] = 10 ** 6
        f["nnviz"].attrs["model_spec"] = json.dumps(spec)
    p = _hostile(base, tmp_path, edit)
    tracemalloc.start()
    try:
        _refused(p, "model_spec", "(1000000, 18)", "more than")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 << 20, peak      # Dense(10**6) on 18 inputs would take 72+ MB at once


def test_a_spec_of_too_many_layers_is_refused_with_a_short_message(base, tmp_path):
    from nnviz.engine.spec import MAX_LAYERS

    def edit(f, _):
        spec = json.loads(f["nnviz"].attrs["model_spec"])
        spec["layers"] = [{"type": "ReLU"}] * (MAX_LAYERS + 1) + spec["layers"]
        del f["nnviz"].attrs["model_spec"]
        f["nnviz"].create_dataset("model_spec", data=json.dumps(spec), dtype=h5_str())
    err = _refused(_hostile(base, tmp_path, edit), f"more than {MAX_LAYERS:,} layers")
    assert len(err) < 1000


def h5_str():
    import h5py
    return h5py.string_dtype("utf-8")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weights_are_reported_at_load_time(base, tmp_path, bad):
    from nnviz.io.tree import crc32

    def edit(f, _):
        ds = f[KERNEL]
        a = ds[()]
        a.flat[3] = bad
        ds[...] = a
        ds.attrs["nnviz_crc32"] = np.uint32(crc32(a))
    _refused(_hostile(base, tmp_path, edit), "conv2d/kernel:0", "NaN or infinite")


@pytest.mark.parametrize("key, value", [
    ("input_shape", 5), ("class_names", 7), ("class_names", {"a": 1}), ("name", [1]),
    ("class_names", json.loads("[" * 900 + "]" * 900)), ("normalization", "x")])
def test_odd_dataset_attributes_are_one_error(base, tmp_path, key, value):
    def edit(f, _):
        f["nnviz/dataset"].attrs[key] = json.dumps(value)
    _refused(_hostile(base, tmp_path, edit), f"nnviz/dataset attribute {key!r}")


if __name__ == "__main__" and len(sys.argv) == 7 and sys.argv[1] == "--worker":
    worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
