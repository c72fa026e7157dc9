"""A finished run is never lost (issue 20): --out checked before training, failed saves
fall back to another file, SIGINT/SIGTERM save what there is, temporaries of killed saves are
cleaned, --resume applies the settings given. Divergence includes a runaway loss."""
import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from nnviz.cli import main
from nnviz.io import load_model

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["train", "--model", "mlp2", "--data", "xor", "--epochs", "1"]


def run_cli(argv, capsys):
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:
        rc = e.code
    out = capsys.readouterr()
    return rc, out.out, out.err.strip()


def one_error_line(rc, err, *needles):
    assert rc == 2, (rc, err)
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("nnviz: error: "), err
    for n in needles:
        assert n in err, (n, err)


# ---- settings checked before training --------------------------------------------------------
@pytest.mark.parametrize("out, needle", [("", "file name is empty"), ("  ", "file name is empty"),
                                         ("newdir/", "names a folder"),
                                         ("missing/m.h5", "does not exist")])
def test_bad_out_is_refused_before_training(tmp_path, monkeypatch, capsys, out, needle):
    monkeypatch.chdir(tmp_path)
    rc, stdout, err = run_cli(QUICK + ["--out", out], capsys)
    one_error_line(rc, err, needle)
    assert "epoch" not in stdout and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("seed", ["-1", "99999999999999999999999", str(2 ** 63)])
def test_seed_out_of_range_is_refused(capsys, seed):
    rc, _, err = run_cli(QUICK + ["--seed", seed], capsys)
    one_error_line(rc, err, "--seed", "2**63-1")


def test_largest_seed_trains_and_saves(tmp_path, capsys):
    out = tmp_path / "m.h5"
    rc, _, err = run_cli(QUICK + ["--seed", str(2 ** 63 - 1), "--out", out], capsys)
    assert rc == 0, err
    assert load_model(out).meta["training"]["config"]["seed"] == 2 ** 63 - 1


def test_unwritable_folder_is_found_before_training(tmp_path, monkeypatch, capsys):
    import tempfile

    def refuse(*a, **kw):
        raise PermissionError(errno.EACCES, "Permission denied")
    monkeypatch.setattr(tempfile, "mkstemp", refuse)     # what a read-only folder answers
    rc, stdout, err = run_cli(QUICK + ["--out", tmp_path / "m.h5"], capsys)
    one_error_line(rc, err, "cannot write in folder", "Permission denied")
    assert "epoch" not in stdout


# ---- a failed save: one line and a fallback file ---------------------------------------------
def _fail_saves_to(monkeypatch, target, err_no):
    import nnviz.io.h5model as h5m
    real = h5m.atomic_path

    @contextmanager
    def failing(path, mode=None):
        with real(path, mode) as tmp:
            yield tmp
            if Path(path) == Path(target):
                raise OSError(err_no, os.strerror(err_no))
    monkeypatch.setattr(h5m, "atomic_path", failing)


@pytest.mark.parametrize("err_no", [errno.ENOSPC, errno.EROFS, errno.EPERM])
def test_failed_save_writes_a_fallback_file(tmp_path, monkeypatch, capsys, err_no):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    out = tmp_path / "m.h5"
    _fail_saves_to(monkeypatch, out, err_no)
    rc, _, err = run_cli(QUICK + ["--out", out], capsys)
    one_error_line(rc, err, f"cannot save {out} ({os.strerror(err_no)})", "saved the model to")
    rescued = Path(err.split("saved the model to ")[1].split(" instead")[0])
    assert rescued.parent == tmp_path / "home"
    assert load_model(rescued).meta["training"]["steps"] > 0
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]


def _mount_tmpfs(path, size):
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True)
    if r.returncode:
        pytest.skip("cannot mount a tmpfs here (not root?)")


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "256k")
    yield disk
    subprocess.run(["umount", str(disk)], check=False)


def test_a_really_full_disk(small_disk, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    filler = small_disk / "filler"      # 16 KiB left: the probe passes, the model (54 KB) does not fit
    filler.write_bytes(b"\0" * (240 << 10))
    out = small_disk / "m.h5"
    rc, _, err = run_cli(QUICK + ["--out", out], capsys)
    one_error_line(rc, err, "No space left on device", "saved the model to")
    rescued = Path(err.split("saved the model to ")[1].split(" instead")[0])
    assert load_model(rescued).model.param_count() > 0
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]


def test_a_read_only_mount_is_found_before_training(small_disk, capsys):
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    rc, stdout, err = run_cli(QUICK + ["--out", small_disk / "m.h5"], capsys)
    one_error_line(rc, err, "cannot write in folder", "Read-only file system")
    assert "epoch" not in stdout


# ---- temporaries of killed saves -------------------------------------------------------------
_SAVER = textwrap.dedent("""
    import sys, time
    import h5py, numpy as np
    from nnviz.io.atomic import atomic_path
    target, first = sys.argv[1], True
    while True:
        with atomic_path(target) as tmp, h5py.File(tmp, "w") as f:
            if first:
                print("saving", flush=True)    # inside the first save: the kill lands in one
                first = False
            for i in range(40):            # a save that takes a while (80 ms and more)
                f.create_dataset(f"a{i}", data=np.full(2000, i, np.float32))
                f.flush()
                time.sleep(0.002)
""")


def test_killed_saves_leave_temporaries_that_the_next_save_removes(tmp_path):
    from nnviz.engine import load_preset
    from nnviz.io import save_model
    target = tmp_path / "m.h5"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    rng = np.random.default_rng(0)
    kills, left = 10, 0
    for i in range(kills):
        p = subprocess.Popen([sys.executable, "-c", _SAVER, str(target)], stdout=subprocess.PIPE,
                             env=env, text=True)
        assert p.stdout.readline().strip() == "saving"
        time.sleep(float(rng.uniform(0.0, 0.06)))
        p.send_signal(signal.SIGKILL if i % 2 == 0 else signal.SIGTERM)
        p.wait(timeout=30)
        p.stdout.close()
        # what this kill left (the next child's first save already removes the one before)
        left += len([q for q in tmp_path.iterdir() if q.name.endswith(".tmp")])
    assert left, "no kill landed inside a save: the test proves nothing"
    own = tmp_path / ".other.h5.nnviz12-abcdefgh.tmp"   # a live process's file is kept
    own.write_bytes(b"x")
    os.utime(own)
    save_model(target, load_preset("mlp1", input_shape=(2,), num_classes=2))
    still = sorted(q.name for q in tmp_path.iterdir() if q.name.endswith(".tmp"))
    # pid 12 is not running here (or is someone else's: kept either way is fine)
    assert set(still) <= {own.name}, still
    assert load_model(target).model.param_count() == 82
    print(f"kill loop: {kills} kills, {left} temporaries left, all removed by the next save")


def test_a_live_temporary_is_kept(tmp_path):
    from nnviz.io.atomic import clean_stale
    alive = tmp_path / f".m.h5.nnviz{os.getppid()}-abcdefgh.tmp"    # our parent runs
    dead = tmp_path / ".m.h5.nnviz999999999-abcdefgh.tmp"           # no such pid
    user = tmp_path / "notes.tmp"                                    # not ours
    for p in (alive, dead, user):
        p.write_bytes(b"x")
    assert clean_stale(tmp_path) == [dead.name]
    assert alive.exists() and user.exists()


# ---- SIGTERM / SIGINT during training --------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_training_saves_and_exits(tmp_path, sig):
    out = tmp_path / "m.h5"
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    p = subprocess.Popen([sys.executable, "-m", "nnviz", "train", "--model", "mlp2", "--data",
                          "spiral", "--epochs", "100000", "--out", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    for line in p.stdout:         # the first epoch ended: training is under way
        if line.startswith("epoch 1:"):
            break
    p.send_signal(sig)
    try:
        _, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == 128 + sig, (p.returncode, err)
    err = err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"stopped by {signal.Signals(sig).name} at step" in err and f"saved the model to {out}" in err
    steps = int(err.split("at step ")[1].split(";")[0].replace(",", ""))
    loaded = load_model(out)
    assert loaded.meta["training"]["steps"] == steps >= 1
    assert not [q for q in tmp_path.iterdir() if q.name.endswith(".tmp")]


# ---- divergence: a runaway loss, the whole last good state, resuming -------------------------
@pytest.mark.parametrize("argv", [
    ["--model", "mlp2", "--data", "spiral", "--lr", "1e30"],
    ["--model", "mlp1", "--data", "xor", "--optimizer", "adam", "--lr", "1e6"],
    ["--model", "mlp0", "--data", "moons", "--lr", "1e6"],
])
def test_runaway_loss_is_divergence(tmp_path, capsys, argv):
    out = tmp_path / "d.h5"
    rc, _, err = run_cli(["train", *argv, "--epochs", "3", "--out", out], capsys)
    assert rc == 3, err
    assert len(err.splitlines()) == 1 and "the loss ran away" in err, err
    good = int(err.split("last good state (step ")[1].split(")")[0])
    st = load_model(out).meta["training"]
    assert st["steps"] == good
    assert all(np.abs(a).max() < 1e3 for v in st["optimizer"]["slots"].values() for a in v)
    assert max(st["history"]["steps"]["step"], default=0) <= good


def test_last_good_state_is_whole_and_resume_applies_lr(tmp_path, capsys):
    """Diverge after 60 good steps; the saved state is the one of step 50 (weights, momentum,
    counters, history), and resuming it with a sane --lr trains on without diverging."""
    from nnviz.data import load_dataset
    from nnviz.engine import load_preset
    from nnviz.io import save_model
    from nnviz.train import Trainer, TrainingDiverged
    data = load_dataset("spiral")
    tr = Trainer(load_preset("mlp2", input_shape=(2,), num_classes=3), data, optimizer="sgd",
                 lr=0.05, momentum=0.9, batch_size=16)
    for _ in range(60):
        tr.step()
    good = tr._good[-1]
    tr.lr = 1e30
    with pytest.raises(TrainingDiverged, match="ran away"), np.errstate(all="ignore"):
        for _ in range(20):
            tr.step()
    assert tr.restore_last_good() == 50
    assert tr.steps == 50 and max(tr.history.steps["step"]) == 50
    assert all(np.array_equal(tr.model.state()[k], good["model"][k]) for k in good["model"])
    for a, b in zip(tr.optimizer.state_dict()["slots"]["velocity"], good["optimizer"]["slots"]["velocity"]):
        np.testing.assert_array_equal(a, b)
    out = save_model(tmp_path / "good.h5", tr.model, trainer=tr)
    rc, stdout, err = run_cli(["train", "--data", "spiral", "--resume", out, "--lr", "0.01",
                               "--epochs", "4", "--out", out], capsys)
    assert rc == 0, err
    assert "resuming" in stdout and "at step 50" in stdout and "sgd lr 0.01 momentum 0.9" in stdout
    st = load_model(out).meta["training"]
    assert st["config"]["optimizer"]["lr"] == 0.01 and st["steps"] > 50


def test_resume_switches_optimizer(tmp_path, capsys):
    out = tmp_path / "m.h5"
    assert run_cli(QUICK + ["--optimizer", "sgd", "--out", out], capsys)[0] == 0
    rc, stdout, err = run_cli(QUICK + ["--resume", out, "--optimizer", "adam", "--lr", "0.002",
                                       "--out", out], capsys)
    assert rc == 0, err
    assert "adam lr 0.002" in stdout
    cfg = load_model(out).meta["training"]["config"]["optimizer"]
    assert cfg["type"] == "Adam" and cfg["lr"] == 0.002


@pytest.mark.parametrize("preset, data, extra", [
    ("mlp0", "moons", []), ("mlp1", "xor", []), ("mlp2", "spiral", []), ("mlp2", "circle", []),
    ("mlp2", "gauss", ["--optimizer", "sgd", "--lr", "0.1", "--momentum", "0.9"]),
    ("lenet5", "shapes", ["--limit", "500"]), ("lenet5-relu", "shapes", ["--limit", "500"]),
    ("lab7-cnn", "color-shapes", ["--limit", "300"]),
])
def test_normal_recipes_never_trip_the_runaway_rule(capsys, preset, data, extra):
    """The presets' own settings (the CLI defaults per kind of data) train without a false alarm."""
    rc, _, err = run_cli(["train", "--model", preset, "--data", data, "--epochs", "2", *extra], capsys)
    assert rc == 0, err


# ---- no display -------------------------------------------------------------------------------
def test_no_display_is_one_line(monkeypatch, capsys):
    if not sys.platform.startswith("linux"):
        pytest.skip("the check is for X11/Wayland systems")
    for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(k, raising=False)
    rc, _, err = run_cli([], capsys)
    one_error_line(rc, err, "no display", "QT_QPA_PLATFORM=offscreen", "nnviz train")


def test_no_display_in_a_real_process():
    if not sys.platform.startswith("linux"):
        pytest.skip("the check is for X11/Wayland systems")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY",
                                                              "QT_QPA_PLATFORM")}
    env["PYTHONPATH"] = str(ROOT)
    p = subprocess.run([sys.executable, "-m", "nnviz"], capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 2, p
    assert p.stderr.startswith("nnviz: error: no display") and len(p.stderr.splitlines()) == 1


def _conv_trainer(**kw):
    """A small CNN (the layer-by-layer path, whose loss can be scripted)."""
    from nnviz.data.dataset import Dataset
    from nnviz.engine import model_from_spec
    from nnviz.train import Trainer
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 1, 4, 4)).astype(np.float32)
    y = rng.integers(0, 2, 64)
    data = Dataset(name="tiny", x_train=x[:48], y_train=y[:48], x_test=x[48:], y_test=y[48:],
                   class_names=["a", "b"])
    model = model_from_spec({"input_shape": [1, 4, 4], "layers": [
        {"type": "Conv2D", "out_channels": 2, "kernel_size": 3}, {"type": "Flatten"},
        {"type": "Dense", "out_features": 2}]})
    return Trainer(model, data, batch_size=4, **kw)


def _script_losses(tr, losses):
    real, seq = tr.loss.forward, iter(losses)
    tr.loss.forward = lambda out, y: (real(out, y), next(seq))[1]


def test_the_runaway_rule_needs_three_steps_far_above_the_first_loss():
    from nnviz.train import TrainingDiverged
    from nnviz.train.trainer import RUNAWAY_FACTOR, RUNAWAY_STEPS
    assert (RUNAWAY_FACTOR, RUNAWAY_STEPS) == (1e3, 3)
    tr = _conv_trainer()
    # first loss 0.5 -> the line is 1000 * max(0.5, 1) = 1000: spikes of one or two steps pass
    _script_losses(tr, [0.5, 0.7, 5000, 0.6, 999, 999, 999, 1001, 1e6, 0.4, 2000, 3000, 4000])
    for _ in range(10):
        tr.step()
    with pytest.raises(TrainingDiverged, match="ran away") as info:
        for _ in range(3):
            tr.step()
    assert info.value.step == 13 and tr._bad_since == 11


def test_restore_after_the_optimizer_changed_starts_fresh_slots():
    from nnviz.train import TrainingDiverged
    tr = _conv_trainer(optimizer="sgd", lr=0.05, momentum=0.9)
    for _ in range(30):
        tr.step()
    tr.set_optimizer("adam", lr=1e6)
    with pytest.raises(TrainingDiverged), np.errstate(all="ignore"):
        for _ in range(50):
            tr.step()
    assert tr.restore_last_good() == 25
    st = tr.optimizer.state_dict()
    assert st["config"]["type"] == "Adam" and st["config"]["lr"] == 1e6 and st["t"] == 0
    assert all(not a.any() for v in st["slots"].values() for a in v)
    assert all(np.isfinite(v).all() for v in tr.model.state().values())
