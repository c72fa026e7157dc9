"""download(): full, resumed (HTTP Range) and checksum-mismatch cases against a local server;
and the ``nnviz datasets`` sub-commands."""

import argparse
import hashlib
import http.server
import json
import threading

import pytest

from nnviz.data import DatasetError
from nnviz.data.cli import add_datasets_parser, run_datasets
from nnviz.data.download import MNIST_MD5, download

FILES = {name: bytes(range(256)) * (40 + i) for i, name in enumerate(MNIST_MD5)}
MD5 = {name: hashlib.md5(data).hexdigest() for name, data in FILES.items()}


class _Handler(http.server.BaseHTTPRequestHandler):
    requests = []

    def log_message(self, *a):
        pass

    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1]
        data = FILES.get(name)
        rng = self.headers.get("Range")
        type(self).requests.append((name, rng))
        if data is None:
            self.send_error(404)
            return
        start = 0
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture()
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    _Handler.requests = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}/files/"
    httpd.shutdown()
    httpd.server_close()


def test_full_download(tmp_path, server):
    calls = []
    paths = download("mnist", tmp_path, progress=lambda *a: calls.append(a), base_url=server, md5=MD5)
    assert [p.name for p in paths] == list(MNIST_MD5)
    for p in paths:
        assert p.read_bytes() == FILES[p.name] and p.parent == tmp_path / "mnist"
        assert not p.with_name(p.name + ".part").exists()
    assert calls[-1][1] == calls[-1][2] == len(FILES[paths[-1].name])
    n = len(_Handler.requests)
    download("mnist", tmp_path, base_url=server, md5=MD5)  # already there: nothing fetched
    assert len(_Handler.requests) == n


def test_resumed_download(tmp_path, server):
    name = "train-labels-idx1-ubyte.gz"
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / (name + ".part")).write_bytes(FILES[name][:1000])
    download("mnist", tmp_path, base_url=server, md5=MD5)
    assert (folder / name).read_bytes() == FILES[name]
    assert (name, "bytes=1000-") in _Handler.requests


def test_checksum_mismatch(tmp_path, server):
    bad = dict(MD5, **{"t10k-images-idx3-ubyte.gz": "0" * 32})
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte.gz.*md5"):
        download("mnist", tmp_path, base_url=server, md5=bad)
    folder = tmp_path / "mnist"
    assert not (folder / "t10k-images-idx3-ubyte.gz").exists()
    assert not (folder / "t10k-images-idx3-ubyte.gz.part").exists()


def test_http_error_and_unknown_name(tmp_path, server):
    with pytest.raises(DatasetError, match="404"):
        download("mnist", tmp_path, base_url=server, md5=dict(MD5, **{"missing.gz": "0" * 32}))
    with pytest.raises(DatasetError, match="shapes"):
        download("shapes", tmp_path)


def _parse(argv):
    p = argparse.ArgumentParser(prog="nnviz")
    add_datasets_parser(p.add_subparsers(dest="command"))
    return p.parse_args(argv)


def test_cli_list_json(tmp_path, capsys):
    assert run_datasets(_parse(["datasets", "list", "--data-dir", str(tmp_path), "--json"])) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} >= {"mnist", "spiral", "shapes"}
    assert run_datasets(_parse(["datasets", "list", "--data-dir", str(tmp_path)])) == 0
    assert "fashion-mnist" in capsys.readouterr().out


def test_cli_download_error_and_progress(tmp_path, capsys, server, monkeypatch):
    assert run_datasets(_parse(["datasets", "download", "nope", "--data-dir", str(tmp_path)])) == 2
    err = capsys.readouterr().err
    assert err.startswith("nnviz: error: ") and err.count("\n") == 1 and "nope" in err
    from nnviz.data import download as dl

    monkeypatch.setitem(dl.SOURCES, "mnist", (server, MD5, "mnist"))
    assert run_datasets(_parse(["datasets", "download", "mnist", "--data-dir", str(tmp_path)])) == 0
    assert "100.0%" in capsys.readouterr().err
