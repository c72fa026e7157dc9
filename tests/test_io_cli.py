"""`nnviz train --out/--resume`, `nnviz eval`, `nnviz info` end to end through the io API."""
import json

import numpy as np
import pytest

import nnviz.cli as cli
from nnviz.data.dataset import Dataset
from nnviz.io import load_model


def _xor():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (160, 2)).astype(np.float32)
    y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(np.int64)
    return Dataset(name="xor", x_train=x[:120], y_train=y[:120], x_test=x[120:],
                   y_test=y[120:], class_names=["0", "1"])


@pytest.fixture(autouse=True)
def toy_data(monkeypatch):
    """Use the real dataset loader when it exists; otherwise a local XOR set."""
    try:
        from nnviz.data import load_dataset
        load_dataset("xor")
    except Exception:
        monkeypatch.setattr(cli, "_load_data", lambda args: _xor())


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_save_resume_eval_info(tmp_path, capsys):
    m = tmp_path / "m.h5"
    code, out, err = run(capsys, "train", "--data", "xor", "--epochs", "2", "--backend", "cpu",
                         "--out", str(m), "--json")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    first = load_model(m)
    steps = first.meta["training"]["steps"]
    assert steps == summary["steps"] and first.meta["training"]["epoch"] == 2
    assert first.meta["dataset"]["name"] == "xor"

    code, out, err = run(capsys, "train", "--resume", str(m), "--data", "xor", "--epochs", "1",
                         "--backend", "cpu", "--out", str(m))
    assert code == 0, err
    again = load_model(m)
    assert again.meta["training"]["epoch"] == 3
    assert again.meta["training"]["steps"] == steps * 3 // 2
    assert len(again.meta["history"]["epochs"]["epoch"]) == 3

    code, out, err = run(capsys, "eval", str(m), "--data", "xor", "--json", "--backend", "cpu")
    assert code == 0, err
    ev = json.loads(out)
    assert ev["data"] == "xor" and 0 <= ev["test_accuracy"] <= 1

    code, out, err = run(capsys, "info", str(m))
    assert code == 0 and "3 epochs" in out and "xor" in out
    code, out, err = run(capsys, "info", str(m), "--json")
    info = json.loads(out)
    assert info["training"]["epochs"] == 3 and info["kind"] == "file"
    code, out, err = run(capsys, "info", "lenet5", "--json")
    assert code == 0 and json.loads(out)["param_count"] == 61706


@pytest.mark.parametrize("command", [["eval", "{p}", "--data", "xor"], ["info", "{p}"],
                                     ["train", "--resume", "{p}", "--data", "xor"]])
@pytest.mark.parametrize("content", [b"not a model", b"", None])
def test_bad_file_is_one_line_and_exit_2(tmp_path, capsys, command, content):
    p = tmp_path / "bad.h5"
    if content is not None:
        p.write_bytes(content)
    code, out, err = run(capsys, *[a.format(p=p) for a in command])
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"nnviz: error: {p}: "), lines[0]
