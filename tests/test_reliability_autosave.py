"""Autosave: a loadable checkpoint every N epochs, crash detection, consistent saves mid-run."""
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from nnviz.data.dataset import Dataset
from nnviz.engine import model_from_spec
from nnviz.io import load_model
from nnviz.io.autosave import MARKER_NAME, Autosaver, default_autosave_dir, find_crash_checkpoint, read_marker
from nnviz.train import Trainer

SPEC = {"name": "tiny-mlp", "input_shape": [2], "layers": [
    {"type": "Dense", "out_features": 8}, {"type": "Tanh"}, {"type": "Dense", "out_features": 2}]}


def make_trainer(n_train=64, **kw):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n_train + 16, 2)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    data = Dataset(name="xorish", x_train=x[:n_train], y_train=y[:n_train], x_test=x[n_train:],
                   y_test=y[n_train:], class_names=["a", "b"])
    hp = dict(optimizer="adam", lr=0.01, batch_size=16)
    hp.update(kw)
    return Trainer(model_from_spec(SPEC, seed=1), data, **hp)


def dead_pid():
    """A pid that certainly belongs to no running process (a child we waited for)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_default_folder_is_under_user_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("NNVIZ_AUTOSAVE_DIR", raising=False)
    monkeypatch.setenv("NNVIZ_DATA_DIR", str(tmp_path / "data"))
    assert default_autosave_dir() == tmp_path / "data" / "autosave"
    monkeypatch.setenv("NNVIZ_AUTOSAVE_DIR", str(tmp_path / "elsewhere"))
    assert default_autosave_dir() == tmp_path / "elsewhere"


def test_marker_written_at_start(tmp_path):
    saver = Autosaver(every_epochs=2, folder=tmp_path, workspace="playground")
    m = read_marker(tmp_path)
    assert m["pid"] == os.getpid() and m["clean_exit"] is False
    assert abs(m["started"] - time.time()) < 60
    assert saver.checkpoint_path() == tmp_path / "playground-checkpoint.h5"


def test_autosave_every_n_epochs_writes_loadable_file(tmp_path):
    tr = make_trainer()
    saver = Autosaver(every_epochs=2, folder=tmp_path, workspace="play ground/1")
    path = saver.checkpoint_path()
    assert path.parent == tmp_path and "/" not in path.name[:-3]
    saved_at = []
    for _ in range(5):
        tr.run_epoch()
        if saver.on_epoch_end(tr) is not None:
            saved_at.append(tr.epoch)
            loaded = load_model(path)
            assert loaded.meta["training"]["epoch"] == tr.epoch
            assert loaded.meta["training"]["steps"] == tr.steps
            for k, v in tr.model.state().items():
                np.testing.assert_array_equal(loaded.model.state()[k], v)
    assert saved_at == [2, 4]
    assert saver.saves == 2 and saver.last_error is None
    # calling twice for the same epoch does not write again
    assert saver.on_epoch_end(tr) is None
    # disabled: nothing written
    saver.enabled = False
    tr.run_epoch()
    tr.run_epoch()
    assert saver.on_epoch_end(tr) is None and saver.saves == 2


def test_resume_from_checkpoint_continues_training(tmp_path):
    tr = make_trainer()
    saver = Autosaver(every_epochs=1, folder=tmp_path)
    tr.run_epoch()
    path = saver.save_now(tr)
    loaded = load_model(path)
    tr2 = Trainer(loaded.model, tr.dataset, optimizer="adam", lr=0.01, batch_size=16)
    tr2.load_state_dict(loaded.meta["training"])
    assert tr2.steps == tr.steps and tr2.optimizer.t == tr.optimizer.t
    for _ in range(3):
        a, _ = tr.step()
        b, _ = tr2.step()
        assert a == pytest.approx(b, rel=1e-5)


def test_save_now_never_writes_nonfinite_weights(tmp_path):
    tr = make_trainer()
    saver = Autosaver(folder=tmp_path)
    good = saver.save_now(tr)
    before = good.read_bytes()
    p = tr.model.parameters()[0]
    p[...] = np.nan
    assert saver.save_now(tr) is None
    assert isinstance(saver.last_error, ArithmeticError)
    assert good.read_bytes() == before          # the good checkpoint survives
    with pytest.raises(ArithmeticError):
        saver.save_now(tr, raise_errors=True)


def test_save_failure_is_kept_not_raised(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    saver = Autosaver(folder=blocker / "sub", start=False)
    tr = make_trainer()
    tr.run_epoch()
    assert saver.on_epoch_end(tr) is None
    assert isinstance(saver.last_error, OSError)


def test_simulated_crash_is_detected(tmp_path):
    tr = make_trainer()
    saver = Autosaver(folder=tmp_path, workspace="inspector")
    tr.run_epoch()
    ck = saver.on_epoch_end(tr)
    assert ck is not None
    # while this session runs, its own checkpoint is not a crash
    assert find_crash_checkpoint(tmp_path) == []
    # the process dies: its marker stays with clean_exit false and a pid that is gone
    m = read_marker(tmp_path)
    m["pid"] = dead_pid()
    (tmp_path / MARKER_NAME).write_text(json.dumps(m))
    assert find_crash_checkpoint(tmp_path) == [ck]
    load_model(find_crash_checkpoint(tmp_path)[0])   # and it is loadable


def test_crash_in_a_real_subprocess_is_detected(tmp_path):
    code = f"""
import os
import numpy as np
from nnviz.data.dataset import Dataset
from nnviz.engine import model_from_spec
from nnviz.train import Trainer
from nnviz.io.autosave import Autosaver
spec = {SPEC!r}
x = np.random.default_rng(0).standard_normal((40, 2)).astype(np.float32)
y = (x[:, 0] > 0).astype(np.int64)
d = Dataset(name='d', x_train=x[:32], y_train=y[:32], x_test=x[32:], y_test=y[32:], class_names=['a', 'b'])
tr = Trainer(model_from_spec(spec), d, batch_size=8)
s = Autosaver(folder={str(tmp_path)!r}, workspace='play')
tr.run_epoch(); s.on_epoch_end(tr)
os._exit(9)   # dies without mark_clean_exit
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 9, r.stderr
    found = find_crash_checkpoint(tmp_path)
    assert [p.name for p in found] == ["play-checkpoint.h5"]


def test_clean_exit_is_not_a_crash(tmp_path):
    tr = make_trainer()
    saver = Autosaver(folder=tmp_path)
    tr.run_epoch()
    assert saver.on_epoch_end(tr) is not None
    saver.mark_clean_exit()
    m = read_marker(tmp_path)
    assert m["clean_exit"] is True
    m["pid"] = dead_pid()
    (tmp_path / MARKER_NAME).write_text(json.dumps(m))
    assert find_crash_checkpoint(tmp_path) == []


def test_other_running_session_is_not_a_crash(tmp_path):
    tr = make_trainer()
    Autosaver(folder=tmp_path).save_now(tr)
    m = read_marker(tmp_path)
    m["pid"] = os.getppid()            # alive, not us
    m["proc_start"] = None
    (tmp_path / MARKER_NAME).write_text(json.dumps(m))
    assert find_crash_checkpoint(tmp_path) == []


def test_no_marker_or_garbage_marker(tmp_path):
    assert find_crash_checkpoint(tmp_path) == []
    assert find_crash_checkpoint(tmp_path / "missing") == []
    tr = make_trainer()
    s = Autosaver(folder=tmp_path)
    ck = s.save_now(tr)
    (tmp_path / MARKER_NAME).write_bytes(b"\x00garbage{")
    assert find_crash_checkpoint(tmp_path) == [ck]


def test_bad_every_epochs():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError):
            Autosaver(every_epochs=bad, start=False)


def test_save_from_another_thread_is_consistent(tmp_path):
    """A save taken while training runs in another thread has weights and
    optimizer state from the same step (trainer.steps == optimizer.t)."""
    tr = make_trainer(n_train=256, optimizer="adam", batch_size=8)
    saver = Autosaver(folder=tmp_path)
    stop = threading.Event()
    errors = []

    def train():
        try:
            while not stop.is_set():
                with saver.lock:          # step boundary
                    tr.step()
        except Exception as e:            # pragma: no cover - reported below
            errors.append(e)

    th = threading.Thread(target=train)
    th.start()
    try:
        checked = 0
        deadline = time.time() + 20
        while checked < 8 and time.time() < deadline:
            time.sleep(0.02)
            path = saver.save_now(tr, raise_errors=True)
            loaded = load_model(path)
            st = loaded.meta["training"]
            assert st["steps"] == st["optimizer"]["t"], st
            # the weights in the file are those of that step: reload and compare a
            # forward pass with a trainer restored at the same step
            assert st["steps"] > 0
            checked += 1
    finally:
        stop.set()
        th.join(30)
    assert not errors and checked >= 3


def test_weights_match_optimizer_state_in_saved_file(tmp_path):
    """Resuming from a save taken mid-run gives the same next step as the live trainer
    had at that point: weights and optimizer state belong together."""
    tr = make_trainer(n_train=256, optimizer="adam", batch_size=8)
    saver = Autosaver(folder=tmp_path)
    for _ in range(7):
        tr.step()
    path = saver.save_now(tr)
    expect_loss, _ = tr.step()
    loaded = load_model(path)
    tr2 = Trainer(loaded.model, tr.dataset, optimizer="adam", lr=0.01, batch_size=8)
    tr2.load_state_dict(loaded.meta["training"])
    assert tr2.steps == tr2.optimizer.t == 7
    got, _ = tr2.step()
    assert got == pytest.approx(expect_loss, rel=1e-6)


def test_min_interval_throttles_epoch_saves(tmp_path):
    tr = make_trainer()
    saver = Autosaver(every_epochs=1, folder=tmp_path, min_interval_s=3600)
    tr.run_epoch()
    assert saver.on_epoch_end(tr) is not None
    tr.run_epoch()
    assert saver.on_epoch_end(tr) is None and saver.saves == 1   # too soon
    assert saver.save_now(tr) is not None                        # explicit saves always run
