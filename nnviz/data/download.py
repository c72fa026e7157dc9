"""Download MNIST, Fashion-MNIST and CIFAR-10 from their standard public mirrors.

Each file is streamed to ``<file>.part``; an existing ``.part`` is resumed with
an HTTP Range request; the md5 is checked against the published checksum and
the file is renamed into place only when whole and correct.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from .dataset import DatasetError

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/"

MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
CIFAR10_MD5 = {"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"}

SOURCES = {  # name -> (base URL, {file: md5}, sub-folder of data_dir)
    "mnist": (MNIST_URL, MNIST_MD5, "mnist"),
    "fashion-mnist": (FASHION_MNIST_URL, FASHION_MNIST_MD5, "fashion-mnist"),
    "cifar10": (CIFAR10_URL, CIFAR10_MD5, "cifar10"),
}
CHUNK = 1 << 16
# Published sizes: a file may be at most twice that (an endless body once wrote 5 GB)
SIZES = {"train-images-idx3-ubyte.gz": 26_421_880, "train-labels-idx1-ubyte.gz": 29_515,
         "t10k-images-idx3-ubyte.gz": 4_422_102, "t10k-labels-idx1-ubyte.gz": 5_148,
         "cifar-10-python.tar.gz": 170_498_071}     # the larger of MNIST and Fashion-MNIST
DEFAULT_MAX = 1 << 30
DEADLINE_S = 3 * 3600.0   # the whole download: a 1 byte/s server never times out otherwise


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _one_line(text) -> str:
    return " ".join(str(text).split())


def _open(url: str, req, timeout: float):
    try:
        return urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code in (301, 302, 303, 307, 308):     # urllib gave up following them
            raise DatasetError(f"{url}: too many redirects (HTTP {e.code}); the mirror is "
                               f"misconfigured, try again later") from None
        raise
    except (urllib.error.URLError, OSError) as e:
        raise DatasetError(f"{url}: download failed ({_one_line(getattr(e, 'reason', e))})") from None
    except http.client.HTTPException as e:    # bad status line, connection dropped in headers
        raise DatasetError(f"{url}: the server's answer is not valid HTTP "
                           f"({type(e).__name__}: {_one_line(e)[:200]})") from None


def _fetch(url: str, dest: Path, md5: str | None, progress, timeout: float, max_bytes: int,
           deadline: float) -> None:
    part = dest.with_name(dest.name + ".part")
    for p in (dest, part):
        if p.exists() and not p.is_file():
            raise DatasetError(f"{p}: exists and is not a file (a folder?); remove it and try again")
    start = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "nnviz"})
    if start:
        req.add_header("Range", f"bytes={start}-")
    try:
        resp = _open(url, req, timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and start:  # .part already complete (or bogus): verify below
            resp = None
        else:
            raise DatasetError(f"{url}: HTTP error {e.code} {_one_line(e.reason)}") from None
    if resp is not None:
        with resp:
            if start and resp.status != 206:
                start = 0  # server ignored the Range request: start over
            length = resp.headers.get("Content-Length")
            total = start + int(length) if length and length.isdigit() else None
            if total is not None and total > max_bytes:
                raise DatasetError(f"{url}: the server announces {total:,} bytes, more than the "
                                   f"{max_bytes:,} this file can be")
            done = start
            try:
                with open(part, "ab" if start else "wb") as out:
                    if progress:
                        progress(dest.name, done, total)
                    while True:
                        if time.monotonic() > deadline:
                            raise DatasetError(f"{url}: the download is too slow (deadline passed "
                                               f"after {done:,} bytes); run the command again to "
                                               f"resume from {part}")
                        block = resp.read1(CHUNK)    # what has arrived: a trickle cannot stall us
                        if not block:
                            break
                        if done + len(block) > max_bytes:
                            raise DatasetError(f"{url}: the server sent more than {max_bytes:,} "
                                               f"bytes, more than this file can be; stopped")
                        out.write(block)
                        done += len(block)
                        if progress:
                            progress(dest.name, done, total)
            except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
                raise DatasetError(f"{url}: download interrupted after {done:,} bytes "
                                   f"({type(e).__name__}: {_one_line(e)[:200]}); run the command "
                                   f"again to resume from {part}") from None
            if total is not None and done < total:
                raise DatasetError(f"{url}: connection closed after {done} of {total} bytes; "
                                   f"run the command again to resume from {part}")
    if md5:
        got = _md5(part)
        if got != md5.lower():
            part.unlink(missing_ok=True)
            raise DatasetError(f"{dest}: md5 checksum mismatch (got {got}, expected {md5}); "
                               f"the partial file was deleted, try again")
    os.replace(part, dest)


def download(name: str, data_dir, progress=None, base_url: str | None = None,
             md5: dict | None = None, timeout: float = 60.0, deadline_s: float = DEADLINE_S,
             max_bytes: int | None = None) -> list[Path]:
    """Download dataset ``name`` into ``<data_dir>/<folder>/``; returns the file paths.

    ``progress(file_name, bytes_done, bytes_total_or_None)`` is called while
    streaming.  ``base_url`` replaces the mirror; ``md5`` maps file names to
    checksums replacing the published ones (used by the tests).  Files already
    present with the right checksum are not fetched again.  ``timeout`` bounds each wait
    for data, ``deadline_s`` the whole download; a file may be at most twice its published
    size (``max_bytes`` for others, default 1 GiB).
    """
    if name not in SOURCES:
        raise DatasetError(f"dataset name: {name!r} cannot be downloaded "
                           f"(downloadable: {', '.join(SOURCES)})")
    url0, sums, sub = SOURCES[name]
    sums = {**sums, **(md5 or {})}
    base = (base_url or url0).rstrip("/") + "/"
    folder = Path(data_dir).expanduser() / sub
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DatasetError(f"{folder}: cannot create folder ({e.strerror or e})") from None
    paths = []
    deadline = time.monotonic() + deadline_s
    for fname, digest in sums.items():
        dest = folder / fname
        published = fname in SIZES and digest and digest in (
            table.get(fname) for table in (MNIST_MD5, FASHION_MNIST_MD5, CIFAR10_MD5))
        cap = max_bytes or (2 * SIZES[fname] if published else DEFAULT_MAX)
        if dest.is_file() and (not digest or _md5(dest) == digest.lower()):
            if progress:
                size = dest.stat().st_size
                progress(fname, size, size)
        else:
            _fetch(base + fname, dest, digest, progress, timeout, cap, deadline)
        paths.append(dest)
    return paths
