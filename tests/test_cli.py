"""The headless CLI: JSON summary, progress, and one-line errors with exit code 2."""
import json

import pytest

from nnviz.cli import main

KEYS = {"train_loss", "train_accuracy", "test_loss", "test_accuracy", "epochs", "steps",
        "seconds", "samples_per_second", "backend"}


def test_train_json_last_line(capsys):
    rc = main(["train", "--model", "mlp2", "--data", "xor", "--epochs", "3", "--json",
               "--backend", "cpu"])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 0
    summary = json.loads(out[-1])
    assert set(summary) >= KEYS
    assert summary["epochs"] == 3 and summary["backend"] == "cpu"
    assert summary["steps"] > 0 and summary["samples_per_second"] > 0
    assert summary["test_accuracy"] > 0.9   # xor is easy for two hidden layers


def test_train_default_model_on_shapes_subset(capsys):
    rc = main(["train", "--epochs", "1", "--limit", "640", "--json"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and summary["steps"] == 10     # 640 samples, batch 64


def test_train_model_json_file(tmp_path, capsys):
    spec = {"name": "tiny", "input_shape": [2],
            "layers": [{"type": "Dense", "out_features": 4}, {"type": "ReLU"},
                       {"type": "Dense", "out_features": 2}]}
    p = tmp_path / "tiny.json"
    p.write_text(json.dumps(spec))
    assert main(["train", "--model", str(p), "--data", "circle", "--epochs", "1", "--json"]) == 0


@pytest.mark.parametrize("argv, needle", [
    (["train", "--model", "nosuchpreset", "--data", "xor"], "unknown preset 'nosuchpreset'"),
    (["train", "--data", "nosuchdata"], "nosuchdata"),
    (["train", "--model", "mlp2", "--data", "xor", "--batch-size", "100000"], "batch size 100000"),
    (["train", "--model", "lenet5", "--data", "xor"], "layer 0 (Conv2D)"),
])
def test_errors_are_one_line_exit_2(argv, needle, capsys):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("nnviz: error: ") and needle in err, err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_malformed_model_json(tmp_path, capsys):
    p = tmp_path / "bad.json"
    p.write_text('{"input_shape": [2], "layers": [{"type": "Dense", "out_features": 2},]}')
    assert main(["train", "--model", str(p), "--data", "xor"]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and "malformed JSON at line 1" in err
    p.write_text('{"input_shape": [2], "layers": [{"type": "Dens", "out_features": 2}]}')
    assert main(["train", "--model", str(p), "--data", "xor"]) == 2
    assert "unknown layer type 'Dens'" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["train", "--lr", "0"], ["train", "--lr", "-1"],
                                  ["train", "--epochs", "x"], ["train", "--optimizer", "rmsprop"]])
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_divergence_exit_3_keeps_last_good_model(tmp_path, capsys):
    out = tmp_path / "m.h5"
    rc = main(["train", "--model", "mlp2", "--data", "spiral", "--optimizer", "sgd", "--lr", "10",
               "--loss", "mse", "--epochs", "5", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 3
    assert "diverged" in err and "learning rate 10" in err
    assert len(err.strip().splitlines()) == 1, err    # one line: no numpy overflow warnings
    assert out.exists()
    import numpy as np

    from nnviz.io import load_model
    m = load_model(out).model
    assert all(np.isfinite(p).all() for p in m.parameters())
