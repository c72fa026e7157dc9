"""download(): full, resumed (HTTP Range) and checksum-mismatch cases against a local server;
and the ``nnviz datasets`` sub-commands."""

import argparse
import hashlib
import http.server
import json
import threading
import time

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


# ---- misbehaving servers (issue 20): one DatasetError line each, bounded in time and size --------
class _Raw(threading.Thread):
    """A loopback TCP server answering every connection with `behave(conn, request_bytes)`."""

    def __init__(self, behave):
        import socket
        super().__init__(daemon=True)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.behave, self.stop = behave, threading.Event()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/files/"

    def run(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                try:
                    req = conn.recv(65536)
                    self.behave(conn, req, self)
                except OSError:
                    pass

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.join(5)
        self.sock.close()


def _bad_status(conn, req, srv):
    conn.sendall(b"HTTQ/9.9 banana\r\n\r\n")


def _short_chunked(conn, req, srv):
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"10\r\n0123456789abcdef\r\n400\r\nonly a few bytes")


def _endless(conn, req, srv):
    conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
    block = b"\0" * 65536
    while not srv.stop.is_set():
        conn.sendall(block)


def _trickle(conn, req, srv):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
    while not srv.stop.is_set():
        conn.sendall(b"x")
        time.sleep(0.05)


def _redirect_loop(conn, req, srv):
    conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: " + srv.url.encode() + b"again\r\n"
                 b"Content-Length: 0\r\n\r\n")


ONE = {"t10k-labels-idx1-ubyte.gz": ""}    # one file, no checksum: the server's answer is the test


@pytest.mark.parametrize("behave, needles, kw", [
    (_bad_status, ["not valid HTTP", "BadStatusLine"], {}),
    (_short_chunked, ["download interrupted", "IncompleteRead", "resume"], {}),
    (_endless, ["more than 1,000,000 bytes"], {"max_bytes": 1_000_000}),
    (_trickle, ["too slow", "deadline"], {"deadline_s": 1.5}),
    (_redirect_loop, ["too many redirects"], {}),
])
def test_misbehaving_servers_are_one_error(tmp_path, behave, needles, kw):
    with _Raw(behave) as srv:
        t0 = time.monotonic()
        with pytest.raises(DatasetError) as info:
            download("mnist", tmp_path, base_url=srv.url, md5=ONE, timeout=5, **kw)
        assert time.monotonic() - t0 < 30      # bounded: a real hang breaks it, noise does not
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(srv.url), msg
    for n in needles:
        assert n in msg, (n, msg)
    part = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz.part"
    assert not part.exists() or part.stat().st_size <= 1_000_000


def test_published_size_caps_the_body(tmp_path, monkeypatch):
    from nnviz.data import download as dl
    monkeypatch.setitem(dl.SIZES, "train-images-idx3-ubyte.gz", 5000)   # the first file fetched
    with _Raw(_endless) as srv, pytest.raises(DatasetError, match="more than 10,000 bytes"):
        download("mnist", tmp_path, base_url=srv.url, timeout=5)


def test_a_folder_at_the_destination_is_one_error(tmp_path, server):
    (tmp_path / "mnist" / "train-images-idx3-ubyte.gz").mkdir(parents=True)
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz: exists and is not a file"):
        download("mnist", tmp_path, base_url=server, md5=MD5)
    (tmp_path / "mnist" / "train-images-idx3-ubyte.gz").rmdir()
    (tmp_path / "mnist" / "train-images-idx3-ubyte.gz.part").mkdir()
    with pytest.raises(DatasetError, match=r"\.part: exists and is not a file"):
        download("mnist", tmp_path, base_url=server, md5=MD5)


def test_ctrl_c_during_download_is_one_line_and_resumable(tmp_path, capsys, server, monkeypatch):
    from nnviz.data import cli as dcli
    from nnviz.data import download as dl
    monkeypatch.setitem(dl.SOURCES, "mnist", (server, MD5, "mnist"))

    class Interrupting(dcli._Bar):
        def __call__(self, fname, done, total):
            super().__call__(fname, done, total)
            if done:
                raise KeyboardInterrupt
    monkeypatch.setattr(dcli, "_Bar", Interrupting)
    rc = run_datasets(_parse(["datasets", "download", "mnist", "--data-dir", str(tmp_path)]))
    err = capsys.readouterr().err
    assert rc == 130
    last = err.strip().splitlines()[-1]
    assert last.startswith("nnviz: download interrupted") and "Traceback" not in err, err
    assert (tmp_path / "mnist" / f"{next(iter(MD5))}.part").exists()
