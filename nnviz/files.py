"""Opening files someone handed us: regular files only; HDF5 files that stay inside themselves.

A FIFO or device opened for reading blocks or never ends, so only regular files are opened.
HDF5 can point outside the file (external links, external storage, virtual datasets): a
hostile model or dataset would then read /etc/passwd or a FIFO. Such files are refused
before any data is read. Callers turn FileRefused into their own error type.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_H5_OBJECTS = 100_000     # links + objects walked in one file; nnviz writes a few hundred


class FileRefused(ValueError):
    """The file is not something nnviz reads; the message is the reason (no path)."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def check_regular(path) -> None:
    """Raise FileRefused unless `path` (after symlinks) is a regular file; OSError if missing."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise FileRefused(f"is {_kind(mode)}, not a regular file")


def open_regular(path):
    """A binary reader for a regular file; FIFOs and devices are refused without blocking."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise FileRefused(f"is {_kind(mode)}, not a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path, limit: int) -> bytes:
    """The whole file, refusing it when it holds more than `limit` bytes."""
    with open_regular(path) as fh:
        # read(limit + 1) would reserve the whole limit up front, even for a small file
        size = os.fstat(fh.fileno()).st_size
        if size > limit:
            raise FileRefused(f"is larger than {limit:,} bytes")
        data = fh.read(size + 1)
    if len(data) > limit:
        raise FileRefused(f"is larger than {limit:,} bytes")
    return data


def open_h5(path):
    """h5py.File(path, "r") for a regular file only."""
    import h5py
    check_regular(Path(path))
    return h5py.File(path, "r")


def nbytes(shape, itemsize: int) -> int:
    """Bytes of an array of `shape`, in Python integers (no overflow)."""
    n = int(itemsize)
    for s in shape or ():
        n *= int(s)
    return n


def scan_h5(f, max_objects: int = MAX_H5_OBJECTS) -> int:
    """Refuse links and data outside the file; return the declared bytes of all datasets.

    The sum counts every dataset at its decompressed size, so a file of many small
    compressed arrays cannot pass a per-array check and still fill the memory. A structure
    too damaged to walk is refused too (h5py answers some with SystemError).
    """
    try:
        why, total = _scan(f, max_objects)
    except FileRefused:
        raise
    except Exception as e:      # whatever a damaged file makes h5py raise
        text = " ".join(str(e).split())[:200]
        raise FileRefused(f"damaged HDF5 structure ({type(e).__name__}: {text})") from None
    if why:
        raise FileRefused(why)
    return total


def _scan(f, max_objects):
    import h5py
    from h5py import h5l
    seen, total = [0], [0]

    def link(name, info):       # low level: no lookup by name inside the callback
        seen[0] += 1
        if seen[0] > max_objects:
            return f"holds more than {max_objects:,} objects"
        shown = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
        if info.type == h5l.TYPE_EXTERNAL:
            return f"{shown!r} is a link into another file (external link); refused"
        if info.type not in (h5l.TYPE_HARD, h5l.TYPE_SOFT):
            return f"{shown!r} is a user-defined link; refused"
        return None

    def obj(name, o):
        if isinstance(o, h5py.Dataset):
            if o.external:
                return f"dataset {name!r} keeps its data in external files (external storage); refused"
            if o.is_virtual:
                return f"dataset {name!r} is a virtual dataset mapping other files; refused"
            total[0] += nbytes(o.shape, o.dtype.itemsize)
        return None

    why = f.id.links.visit(link, info=True) or f.visititems(obj)
    return why, total[0]
