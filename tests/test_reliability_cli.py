"""Every file the CLI opens and every setting it accepts, given bad: exit 2 with ONE line
``nnviz: error: ...`` naming the thing and what was wrong, never a traceback.
Divergence: exit 3, one line, the last good model kept with --out."""
import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from nnviz.cli import main
from nnviz.io import load_model


def run_cli(argv, capsys):
    """(exit code, stderr) of the CLI run in-process; argparse's SystemExit counts too."""
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code
    return rc, capsys.readouterr().err


def assert_one_line_error(rc, err, *needles):
    assert rc == 2, (rc, err)
    err = err.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("nnviz: error: "), err
    for n in needles:
        assert n in err, (n, err)


# ---- files --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    f = {}

    def js(name, obj):
        p = d / name
        p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
        f[name] = p

    js("malformed.json", '{"input_shape": [2], "layers": [{"type": "Dense"')
    js("list.json", [1, 2, 3])
    js("unknown_type.json", {"input_shape": [2], "layers": [{"type": "Swish"}]})
    js("unknown_param.json", {"input_shape": [2], "layers": [
        {"type": "Dense", "out_features": 2, "units_typo": 4}]})
    js("unknown_activation.json", {"input_shape": [2], "layers": [
        {"type": "Dense", "out_features": 2, "activation": "swishy"}]})
    js("kernel7.json", {"input_shape": [1, 5, 5], "layers": [
        {"type": "Conv2D", "out_channels": 2, "kernel_size": 7},
        {"type": "Flatten"}, {"type": "Dense", "out_features": 2}]})
    js("bad_value.json", {"input_shape": [2], "layers": [{"type": "Dense", "out_features": -3},
                                                          {"type": "ReLU"},
                                                          {"type": "Dense", "out_features": 2}]})
    js("wrong_input.json", {"input_shape": [3], "layers": [{"type": "Dense", "out_features": 2}]})

    rng = np.random.default_rng(0)
    with h5py.File(d / "five.h5", "w") as h:          # a valid 5x5 greyscale dataset
        h["x_train"] = rng.integers(0, 255, (40, 5, 5), dtype=np.uint8)
        h["y_train"] = rng.integers(0, 2, 40)
        h["x_test"] = rng.integers(0, 255, (10, 5, 5), dtype=np.uint8)
        h["y_test"] = rng.integers(0, 2, 10)
    f["five.h5"] = d / "five.h5"
    raw = (d / "five.h5").read_bytes()
    (d / "truncated_data.h5").write_bytes(raw[: len(raw) // 2])
    f["truncated_data.h5"] = d / "truncated_data.h5"
    (d / "garbage_data.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(200))
    f["garbage_data.h5"] = d / "garbage_data.h5"
    with h5py.File(d / "no_labels.h5", "w") as h:
        h["x_train"] = np.zeros((4, 2), np.float32)
    f["no_labels.h5"] = d / "no_labels.h5"

    (d / "not_hdf5.h5").write_text("this is not a model\n")
    f["not_hdf5.h5"] = d / "not_hdf5.h5"
    good = d / "good.h5"
    assert main(["train", "--model", "mlp1", "--data", "xor", "--epochs", "1",
                 "--out", str(good)]) == 0
    f["good.h5"] = good
    raw = good.read_bytes()
    (d / "truncated_model.h5").write_bytes(raw[: len(raw) // 2])
    f["truncated_model.h5"] = d / "truncated_model.h5"
    with h5py.File(d / "other.h5", "w") as h:          # valid HDF5, not an nnviz model
        h["x"] = np.arange(3)
    f["other.h5"] = d / "other.h5"

    (d / "empty_folder").mkdir()
    f["empty_folder"] = d / "empty_folder"
    (d / "empty_classes" / "cat").mkdir(parents=True)
    (d / "empty_classes" / "dog").mkdir()
    f["empty_classes"] = d / "empty_classes"
    (d / "notes.txt").write_text("hello")
    f["notes.txt"] = d / "notes.txt"
    f["dir"] = d
    return f


MODEL_JSON_CASES = [
    ("malformed.json", ["xor"], ["malformed.json", "malformed JSON at line 1"]),
    ("list.json", ["xor"], ["list.json", "must be a JSON object"]),
    ("unknown_type.json", ["xor"], ["layer 0", "unknown layer type 'Swish'"]),
    ("unknown_param.json", ["xor"], ["layer 0 (Dense)", "unknown parameter", "units_typo"]),
    ("unknown_activation.json", ["xor"], ["layer 0 (Dense)", "unknown parameter", "activation"]),
    ("kernel7.json", ["five.h5"], ["layer 0 (Conv2D)", "kernel 7x7", "5x5"]),
    ("bad_value.json", ["xor"], ["layer 0", "Dense", "out_features", "-3"]),
    ("wrong_input.json", ["xor"], ["wrong_input.json", "input_shape (3,)", "(2,)"]),
]


@pytest.mark.parametrize("name, data, needles", MODEL_JSON_CASES,
                         ids=[c[0] for c in MODEL_JSON_CASES])
def test_bad_model_json(files, name, data, needles, capsys):
    data_arg = str(files[data[0]]) if data[0] in files else data[0]
    rc, err = run_cli(["train", "--model", str(files[name]), "--data", data_arg, "--epochs", "1"],
                      capsys)
    assert_one_line_error(rc, err, *needles)


def test_missing_model_json_and_unknown_preset(files, tmp_path, capsys):
    rc, err = run_cli(["train", "--model", str(tmp_path / "gone.json"), "--data", "xor"], capsys)
    assert_one_line_error(rc, err, "gone.json")
    rc, err = run_cli(["train", "--model", "resnet9000", "--data", "xor"], capsys)
    assert_one_line_error(rc, err, "unknown preset 'resnet9000'", "mlp2")
    rc, err = run_cli(["info", "resnet9000"], capsys)
    assert_one_line_error(rc, err, "resnet9000")


SAVED_MODEL_CASES = [
    ("not_hdf5.h5", "not a readable HDF5 file"),
    ("truncated_model.h5", "not a readable HDF5 file"),
    ("other.h5", "nnviz"),
]


@pytest.mark.parametrize("cmd", ["eval", "info", "resume"])
@pytest.mark.parametrize("name, reason", SAVED_MODEL_CASES, ids=[c[0] for c in SAVED_MODEL_CASES])
def test_bad_saved_model(files, cmd, name, reason, capsys):
    path = str(files[name])
    argv = {"eval": ["eval", path, "--data", "xor"], "info": ["info", path],
            "resume": ["train", "--resume", path, "--data", "xor", "--epochs", "1"]}[cmd]
    rc, err = run_cli(argv, capsys)
    assert_one_line_error(rc, err, path, reason)


def test_saved_model_missing_or_folder(files, tmp_path, capsys):
    rc, err = run_cli(["eval", str(tmp_path / "nope.h5"), "--data", "xor"], capsys)
    assert_one_line_error(rc, err, "nope.h5", "no such file")
    rc, err = run_cli(["eval", str(files["dir"]), "--data", "xor"], capsys)
    assert_one_line_error(rc, err, str(files["dir"]), "folder")


def test_saved_model_on_data_of_another_shape(files, capsys):
    rc, err = run_cli(["eval", str(files["good.h5"]), "--data", str(files["five.h5"])], capsys)
    assert_one_line_error(rc, err, "(1, 5, 5)", "(2,)")
    rc, err = run_cli(["train", "--resume", str(files["good.h5"]), "--data",
                       str(files["five.h5"]), "--epochs", "1"], capsys)
    assert_one_line_error(rc, err, "(1, 5, 5)", "(2,)")


# ---- datasets -------------------------------------------------------------------------------
def test_unknown_dataset_name(capsys):
    rc, err = run_cli(["train", "--data", "imagenet-22k"], capsys)
    assert_one_line_error(rc, err, "imagenet-22k", "no such dataset", "mnist")


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "cifar10"])
def test_downloadable_set_missing_says_where_and_how(name, tmp_path, capsys):
    where = tmp_path / "no-data-here"
    rc, err = run_cli(["train", "--data", name, "--data-dir", str(where)], capsys)
    assert_one_line_error(rc, err, str(where / name), f"nnviz datasets download {name}")


def test_mnist_missing_with_default_data_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NNVIZ_DATA_DIR", str(tmp_path / "ud"))
    rc, err = run_cli(["train", "--data", "mnist"], capsys)
    assert_one_line_error(rc, err, str(tmp_path / "ud" / "mnist"), "download")


@pytest.mark.parametrize("name, needles", [
    ("truncated_data.h5", ["truncated_data.h5", "HDF5"]),
    ("garbage_data.h5", ["garbage_data.h5", "HDF5"]),
    ("no_labels.h5", ["no_labels.h5", "y_train"]),
    ("empty_folder", ["empty_folder", "no class sub-folders"]),
    ("empty_classes", ["empty_classes", "no images"]),
    ("notes.txt", ["notes.txt", "unknown file type"]),
])
def test_bad_dataset_files(files, name, needles, capsys):
    rc, err = run_cli(["train", "--data", str(files[name]), "--epochs", "1"], capsys)
    assert_one_line_error(rc, err, *needles)


# ---- settings -------------------------------------------------------------------------------
@pytest.mark.parametrize("args, needles", [
    (["--batch-size", "100000"], ["batch size 100000", "200 training samples"]),
    (["--batch-size", "0"], ["--batch-size", "> 0"]),
    (["--batch-size", "abc"], ["--batch-size", "'abc'"]),
    (["--lr", "0"], ["--lr", "> 0"]),
    (["--lr", "-0.1"], ["--lr", "> 0"]),
    (["--lr", "nan"], ["--lr", "nan"]),
    (["--lr", "inf"], ["--lr", "finite", "inf"]),
    (["--weight-decay", "-0.01"], ["--weight-decay", ">= 0"]),
    (["--weight-decay", "nan"], ["--weight-decay", "finite", "nan"]),
    (["--l1", "-1"], ["--l1", ">= 0"]),
    (["--l1", "inf"], ["--l1", "finite", "inf"]),
    (["--momentum", "1.5", "--optimizer", "sgd"], ["--momentum", "< 1"]),
    (["--momentum", "-0.5"], ["--momentum", ">= 0"]),
    (["--epochs", "0"], ["--epochs", "> 0"]),
    (["--limit", "0"], ["--limit", "> 0"]),
    (["--optimizer", "rmsprop"], ["--optimizer", "rmsprop"]),
    (["--loss", "hinge"], ["--loss", "hinge"]),
    (["--backend", "tpu"], ["--backend", "tpu"]),
])
def test_bad_settings(args, needles, capsys):
    rc, err = run_cli(["train", "--model", "mlp1", "--data", "xor", *args], capsys)
    assert_one_line_error(rc, err, *needles)


def test_unknown_command_and_option(capsys):
    rc, err = run_cli(["frobnicate"], capsys)
    assert_one_line_error(rc, err, "frobnicate")
    rc, err = run_cli(["train", "--learning-rate", "1"], capsys)
    assert_one_line_error(rc, err, "--learning-rate")


def test_out_path_checked_before_training(files, tmp_path, capsys):
    rc, err = run_cli(["train", "--data", "xor", "--out", str(tmp_path / "no" / "m.h5")], capsys)
    assert_one_line_error(rc, err, "--out", str(tmp_path / "no"), "does not exist")
    rc, err = run_cli(["train", "--data", "xor", "--out", str(tmp_path)], capsys)
    assert_one_line_error(rc, err, "--out", "is a folder")


def _has_cuda():
    try:
        from numba import cuda
        return bool(cuda.is_available())
    except Exception:
        return False


@pytest.mark.skipif(_has_cuda(), reason="a CUDA GPU is present")
@pytest.mark.parametrize("cmd", [["train", "--data", "xor", "--epochs", "1"], ["eval", "GOOD"]])
def test_cuda_backend_without_gpu(files, cmd, capsys):
    argv = [str(files["good.h5"]) if a == "GOOD" else a for a in cmd] + ["--backend", "cuda"]
    rc, err = run_cli(argv, capsys)
    assert_one_line_error(rc, err, "cuda", "no CUDA GPU", "--backend cpu")


# ---- divergence -------------------------------------------------------------------------------
def test_divergence_exit_3_one_line_keeps_last_good(tmp_path, capsys):
    out = tmp_path / "m.h5"
    # mse makes lr 1e6 overflow within a few steps whatever the initialisation
    rc = main(["train", "--model", "mlp2", "--data", "spiral", "--optimizer", "sgd",
               "--loss", "mse", "--lr", "1e6", "--epochs", "5", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 3, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("nnviz: training diverged at step ")
    assert "learning rate 1e+06" in err and "saved the last good state (step" in err and str(out) in err
    loaded = load_model(out)
    assert all(np.isfinite(v).all() for v in loaded.model.state().values())


# ---- a real process: nothing but the one line on stderr -----------------------------------------
@pytest.mark.parametrize("argv, code, needle", [
    (["eval", "NOT_HDF5"], 2, "not a readable HDF5 file"),
    (["train", "--lr", "0"], 2, "--lr"),
    (["train", "--model", "mlp2", "--data", "spiral", "--optimizer", "sgd", "--loss", "mse",
      "--lr", "1e6", "--epochs", "3"], 3, "diverged"),
])
def test_real_process_stderr_is_one_line(files, argv, code, needle):
    argv = [str(files["not_hdf5.h5"]) if a == "NOT_HDF5" else a for a in argv]
    env = dict(os.environ, PYTHONWARNINGS="default")
    r = subprocess.run([sys.executable, "-m", "nnviz", *argv], capture_output=True, text=True,
                       timeout=300, env=env)
    err = r.stderr.strip()
    assert r.returncode == code, err
    assert "Traceback" not in err and "Warning" not in err, err
    assert len(err.splitlines()) == 1 and needle in err, err


# ---- issue 20: file contents reach the terminal escaped; odd attributes are one line ----------
@pytest.fixture
def saved_with_classes(tmp_path):
    from nnviz.data import make_toy
    from nnviz.data.dataset import Dataset
    toy = make_toy("xor")
    data = Dataset(name="toy\x1b]0;pwned\x07", x_train=toy.x_train, y_train=toy.y_train,
                   x_test=toy.x_test, y_test=toy.y_test,
                   class_names=["\x1b[31mred\x1b[0m", "back\rspace"])
    from nnviz.engine import load_preset
    from nnviz.io import save_model
    return save_model(tmp_path / "m.h5", load_preset("mlp1", input_shape=(2,), num_classes=2),
                      dataset=data)


def test_info_prints_escape_sequences_escaped(saved_with_classes, capsys):
    assert main(["info", str(saved_with_classes)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "\x07" not in out
    assert "\\x1b[31mred\\x1b[0m" in out and "back\\rspace" in out and "toy\\x1b]0;pwned\\x07" in out
    assert main(["info", "--json", str(saved_with_classes)]) == 0
    raw = capsys.readouterr().out
    assert "\x1b" not in raw
    assert json.loads(raw)["dataset"]["class_names"][0] == "\x1b[31mred\x1b[0m"


@pytest.mark.parametrize("key, value", [("input_shape", 5), ("class_names", 7),
                                        ("class_names", {"a": 1}),
                                        ("class_names", json.loads("[" * 900 + "]" * 900))])
def test_info_on_odd_dataset_attributes_is_one_line(saved_with_classes, capsys, key, value):
    with h5py.File(saved_with_classes, "r+") as f:
        f["nnviz/dataset"].attrs[key] = json.dumps(value)
    rc, err = run_cli(["info", str(saved_with_classes)], capsys)
    assert_one_line_error(rc, err, f"nnviz/dataset attribute {key!r}")
    assert len(err) < 1200


def test_error_lines_are_escaped_and_short(tmp_path, capsys):
    bad = tmp_path / ("x\x1b[2J" + "y" * 3000 + ".json")     # no such file: the name is echoed
    rc, err = run_cli(["info", str(bad)], capsys)
    assert_one_line_error(rc, err)
    assert "\x1b" not in err and len(err) < 1100


@pytest.mark.parametrize("kind, needle", [("fifo", "FIFO"), ("deep", "RecursionError"),
                                          ("big", "larger than")])
def test_hostile_model_json(tmp_path, capsys, kind, needle):
    p = tmp_path / "m.json"
    if kind == "fifo":
        os.mkfifo(p)      # read_text() would wait for a writer for ever
    elif kind == "deep":
        p.write_text("[" * 100_000)
    else:
        from nnviz.engine.spec import MAX_SPEC_BYTES
        p.write_bytes(b" " * (MAX_SPEC_BYTES + 1))
    rc, err = run_cli(["train", "--model", str(p), "--data", "xor"], capsys)
    assert_one_line_error(rc, err, "m.json", needle)


def test_model_json_with_too_many_layers(tmp_path, capsys):
    from nnviz.engine.spec import MAX_LAYERS
    p = tmp_path / "many.json"
    p.write_text(json.dumps({"input_shape": [2], "layers": [{"type": "ReLU"}] * MAX_LAYERS
                             + [{"type": "Dense", "out_features": 2}]}))
    rc, err = run_cli(["train", "--model", str(p), "--data", "xor"], capsys)
    assert_one_line_error(rc, err, f"more than {MAX_LAYERS:,} layers")
