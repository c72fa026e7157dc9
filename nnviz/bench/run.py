"""The driver: `nnviz bench` selects figures, has the workers time them, prints the report."""
from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
from dataclasses import dataclass, field

from .figure import Figure
from .figures import FIGURES, select
from .report import machine_info, met, table, target_text
from .worker import WorkerError, Workers


@dataclass
class Settings:
    quick: bool = False
    no_torch: bool = False
    extra: dict = field(default_factory=dict)   # extra figures; "_"-keys are the run's own scratch

    @property
    def repeats(self) -> int:
        return 3 if self.quick else 7

    @property
    def block_s(self) -> float:       # length of one timed block per engine
        return 0.08 if self.quick else 0.3


def _paired(fig: Figure, st: Settings, pool: Workers):
    """(nnviz value, PyTorch value or None, PyTorch error or None) of a paired figure."""
    plan = fig.run()
    nw = pool.nnviz()
    plan["spec"] = nw.call(cmd="setup", fig=plan, block_s=st.block_s)["spec"]
    workers, terr = [nw], None
    tw = pool.torch()
    if tw is not None:
        try:
            tw.call(cmd="setup", fig=plan, block_s=st.block_s)
            workers.append(tw)
        except WorkerError as e:         # the nnviz figure still stands
            terr = f"PyTorch: {e}"
    times = [[] for _ in workers]
    for _ in range(st.repeats):          # interleaved: nnviz, PyTorch, nnviz, ...
        for i, w in enumerate(workers):
            times[i].append(w.call(cmd="block")["sec"])
    med = [statistics.median(t) for t in times]
    t = fig.value(plan, med[1]) if len(med) > 1 else None
    return fig.value(plan, med[0]), t, terr


def _run_one(fig: Figure, st: Settings, pool: Workers):
    """(nnviz value, PyTorch value, error of the PyTorch side or None)."""
    if fig.where == "paired":
        return _paired(fig, st, pool)
    if fig.where == "worker":
        r = pool.nnviz().call(cmd="solo", name=fig.name, quick=st.quick)
        st.extra.update(r.get("extra") or {})
        return r["value"], None, None
    return fig.run(st), None, None


def run_bench(args) -> int:
    st = Settings(quick=bool(getattr(args, "quick", False)),
                  no_torch=bool(getattr(args, "no_torch", False)))
    want_json = bool(getattr(args, "json", False))
    try:
        names = select(getattr(args, "only", None), st.quick)
    except ValueError as e:
        print(f"nnviz: error: {e}", file=sys.stderr)
        return 2
    # The torch worker only when a figure compares with PyTorch.
    pool = Workers(getattr(args, "backend", None) or "cpu",
                   want_torch=not st.no_torch and any(FIGURES[n].where == "paired" for n in names))
    try:
        try:
            pool.start()
        except WorkerError as e:
            print(f"nnviz: error: {e}", file=sys.stderr)
            return 2 if e.error_type == "BackendError" else 1
        rows = []
        for name in names:
            fig = FIGURES[name]
            try:
                a, t, err = _run_one(fig, st, pool)
            except Exception as e:  # one failing figure must not hide the others
                a, t = None, None
                err = str(e) if isinstance(e, WorkerError) else f"{type(e).__name__}: {e}"
            ratio, ok = met(fig, a, t)
            row = {"name": name, "description": fig.description, "unit": fig.unit, "nnviz": a,
                   "pytorch": t, "ratio": ratio, "target": target_text(fig), "met": ok}
            if err:
                row["error"] = err
            rows.append(row)
            if not want_json:
                print(f"  {name}: done", file=sys.stderr)
        layer = pool.threading_layer()
    finally:
        pool.close()
        cache = st.extra.get("_cache_dir")
        if cache:
            shutil.rmtree(cache, ignore_errors=True)
    info = machine_info(pool.nnviz_info, pool.torch_info)
    if layer:
        info["numba_threading_layer"] = layer
    extra = {k: v for k, v in st.extra.items() if not k.startswith("_")}
    result = {"machine": info, "backend": pool.nnviz_info.get("backend"), "quick": st.quick,
              "repeats": st.repeats, "results": rows, "extra": extra,
              "isolation": {"nnviz_process_has_torch": pool.foreign.get("nnviz", False),
                            "torch_process_has_numba": pool.foreign.get("torch")},
              "processes": {"bench": os.getpid(), **pool.pids}}
    if want_json:
        print(json.dumps(result))
        return 0
    print(table(result))
    return 0
