"""The worker processes: one JSON request a line on stdin, one JSON reply a line on stdout.

Requests: init, setup (build + warm up + size a block), block (time one block), info,
solo (a "worker" figure, nnviz only), quit. Every reply carries ok, pid and whether the
other engine got loaded into this process (has_torch / has_numba).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np

from .workloads import calibrate, child_env, timed


# ---- in the worker process ---------------------------------------------------------------
def _setup(side, msg):
    """Build the figure, warm it up (compilation, buffers, caches), size a block."""
    side.fn, side.k = None, 1
    fn, spec = side.build(msg["fig"])
    for _ in range(3):
        fn()
    side.k = calibrate(fn, float(msg["block_s"]))
    side.fn = fn
    loaded = [m for m in side.forbidden if m in sys.modules]
    if loaded:
        raise RuntimeError(f"{', '.join(loaded)} was imported into the {side.role} worker")
    return {"spec": spec, "k": side.k}


def _block(side, msg):
    if side.fn is None:
        raise RuntimeError("no figure set up")
    return {"sec": timed(side.fn, side.k)}


def _dispatch(side, msg):
    cmd = msg.get("cmd")
    if cmd == "setup":
        return _setup(side, msg)
    if cmd == "block":
        return _block(side, msg)
    if cmd in ("init", "info", "solo") and hasattr(side, cmd):
        return getattr(side, cmd)(msg)
    raise ValueError(f"unknown request {cmd!r} for the {side.role} worker")


def _jsonable(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def _side(role):
    if role == "nnviz":
        from .nnviz_side import NnvizSide
        return NnvizSide()
    from .torch_side import TorchSide
    return TorchSide()


def serve(role):
    """Worker main loop: one JSON request a line on stdin, one JSON reply a line on the
    original stdout. Anything else the worker prints goes to stderr."""
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the driver decides when to stop
    try:
        side, broken = _side(role), None
    except Exception as e:  # reported on every request
        side, broken = None, f"{type(e).__name__}: {e}"
    foreign = "torch" if role == "nnviz" else "numba"
    for line in sys.stdin:
        msg = json.loads(line)
        if msg.get("cmd") == "quit":
            break
        try:
            if broken:
                raise RuntimeError(broken)
            reply = dict(_dispatch(side, msg), ok=True)
        except Exception as e:
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}",
                     "error_type": type(e).__name__}
        reply["pid"] = os.getpid()
        reply["has_" + foreign] = foreign in sys.modules
        try:
            replies.write(json.dumps(reply, default=_jsonable) + "\n")
            replies.flush()
        except (BrokenPipeError, OSError):   # the driver has gone
            break


# ---- the driver's side of a worker ----------------------------------------------------------
class WorkerError(RuntimeError):
    """A request failed in a worker; the message is the worker's 'Type: message'."""

    def __init__(self, msg, error_type=None):
        super().__init__(msg)
        self.error_type = error_type


class Worker:
    def __init__(self, role, foreign):
        self.role, self.foreign = role, foreign   # foreign: role -> saw the other engine loaded
        # A session of its own: Ctrl-C reaches only the driver, which then shuts the
        # workers down; a worker whose driver died reads end-of-file and exits.
        self.proc = subprocess.Popen(
            [sys.executable, "-c", f"from nnviz.bench.worker import serve; serve({role!r})"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=child_env(), text=True,
            encoding="utf-8", start_new_session=True)
        self.pid = self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def call(self, **msg):
        try:
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (BrokenPipeError, OSError, ValueError):
            line = ""
        if not line:
            try:
                code = self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                code = self.proc.wait()
            raise WorkerError(f"RuntimeError: the {self.role} worker exited (code {code})")
        r = json.loads(line)
        seen = bool(r.get("has_torch") or r.get("has_numba"))
        self.foreign[self.role] = self.foreign.get(self.role, False) or seen
        if not r.get("ok"):
            raise WorkerError(r.get("error", "failed"), r.get("error_type"))
        return r

    def close(self):
        p = self.proc
        try:
            if p.poll() is None:
                p.stdin.write('{"cmd": "quit"}\n')
                p.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass
        try:
            p.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        finally:
            p.stdout.close()


class Workers:
    """The nnviz worker and (unless --no-torch or nothing needs it) the torch worker;
    one that dies is started again for the next figure."""

    def __init__(self, backend, want_torch):
        self.backend, self.want_torch = backend, want_torch
        self._nnviz = self._torch = None
        self.nnviz_info, self.torch_info = {}, None
        self.pids = {"nnviz": None, "torch": None}
        self.foreign = {}    # "nnviz": torch was loaded there; "torch": numba was loaded there

    def start(self):
        self._nnviz = self._new("nnviz")
        if self.want_torch:              # both import at once; torch waits for the thread count
            self._torch = self._new("torch")
        self._init_nnviz()
        if self._torch is not None:
            self._init_torch()

    def _new(self, role):
        w = Worker(role, self.foreign)
        self.pids[role] = w.pid
        return w

    def _init_nnviz(self):
        r = self._nnviz.call(cmd="init", backend=self.backend)
        self.nnviz_info = {k: r.get(k) for k in ("numba", "numba_threads", "backend", "numba_target")}

    def _init_torch(self):
        try:
            r = self._torch.call(cmd="init", threads=self.nnviz_info["numba_threads"])
        except WorkerError as e:
            print(f"nnviz bench: the PyTorch worker failed ({e}); nnviz column only",
                  file=sys.stderr)
            r = {"torch": None}
        if r.get("torch") is None:       # not installed: the PyTorch column stays empty
            self._torch.close()
            self._torch, self.want_torch = None, False
        else:
            self.torch_info = {k: r.get(k) for k in ("torch", "torch_threads",
                                                      "torch_cpu_capability")}

    def nnviz(self):
        if not self._nnviz.alive():
            self._nnviz.close()
            self._nnviz = self._new("nnviz")
            self._init_nnviz()
        return self._nnviz

    def torch(self):
        if self._torch is not None and not self._torch.alive():
            self._torch.close()
            self._torch = self._new("torch")
            self._init_torch()
        return self._torch

    def threading_layer(self):
        """Numba's threading layer in the nnviz worker (None before any parallel kernel)."""
        if self._nnviz is None or not self._nnviz.alive():
            return None
        try:
            return self._nnviz.call(cmd="info").get("numba_threading_layer")
        except WorkerError:
            return None

    def close(self):
        for w in (self._nnviz, self._torch):
            if w is not None:
                w.close()
        self._nnviz = self._torch = None
