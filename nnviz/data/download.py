"""Download MNIST, Fashion-MNIST and CIFAR-10 from their standard public mirrors.

Each file is streamed to ``<file>.part``; an existing ``.part`` is resumed with
an HTTP Range request; the md5 is checked against the published checksum and
the file is renamed into place only when whole and correct.
"""

from __future__ import annotations

import hashlib
import os
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


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fetch(url: str, dest: Path, md5: str | None, progress, timeout: float) -> None:
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "nnviz"})
    if start:
        req.add_header("Range", f"bytes={start}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and start:  # .part already complete (or bogus): verify below
            resp = None
        else:
            raise DatasetError(f"{url}: HTTP error {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise DatasetError(f"{url}: download failed ({getattr(e, 'reason', e)})") from None
    if resp is not None:
        with resp:
            if start and resp.status != 206:
                start = 0  # server ignored the Range request: start over
            length = resp.headers.get("Content-Length")
            total = start + int(length) if length and length.isdigit() else None
            done = start
            try:
                with open(part, "ab" if start else "wb") as out:
                    if progress:
                        progress(dest.name, done, total)
                    while True:
                        block = resp.read(CHUNK)
                        if not block:
                            break
                        out.write(block)
                        done += len(block)
                        if progress:
                            progress(dest.name, done, total)
            except (urllib.error.URLError, OSError) as e:
                raise DatasetError(f"{url}: download interrupted after {done} bytes ({e}); "
                                   f"run the command again to resume from {part}") from None
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
             md5: dict | None = None, timeout: float = 60.0) -> list[Path]:
    """Download dataset ``name`` into ``<data_dir>/<folder>/``; returns the file paths.

    ``progress(file_name, bytes_done, bytes_total_or_None)`` is called while
    streaming.  ``base_url`` replaces the mirror; ``md5`` maps file names to
    checksums replacing the published ones (used by the tests).  Files already
    present with the right checksum are not fetched again.
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
    for fname, digest in sums.items():
        dest = folder / fname
        if dest.is_file() and (not digest or _md5(dest) == digest.lower()):
            if progress:
                size = dest.stat().st_size
                progress(fname, size, size)
        else:
            _fetch(base + fname, dest, digest, progress, timeout)
        paths.append(dest)
    return paths
