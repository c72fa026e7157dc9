"""The bench's report: the machine, targets met, and the table."""
from __future__ import annotations

import os
import platform
import subprocess

import numpy as np

from .figure import Figure


def machine_info(nnviz_info=None, torch_info=None):
    """This machine, with what the workers reported: numba and its thread count from the
    nnviz worker, torch and its thread count from the torch worker."""
    info = {"python": platform.python_version(), "numpy": np.__version__,
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                info["cpu"] = line.split(":", 1)[1].strip()
    except OSError:
        pass
    from ..engine.backend.cpu_target import cpu_flags
    info["vector_extensions"] = cpu_flags()
    for k, v in (nnviz_info or {}).items():
        if k != "backend":
            info[k] = v
    info.update(torch_info or {})
    return info


def met(fig: Figure, a, t):
    """(ratio or None, target met or None) for nnviz value a and PyTorch value t."""
    if a is None or fig.target is None:
        return None, None
    kind, target = fig.target
    if kind == "min":
        return None, a >= target
    if kind == "ratio":
        if t is None:
            return None, None
        ratio = a / t if fig.higher_is_better else t / a
        return ratio, ratio >= target
    return (t / a if (t and a) else None), a <= target


def target_text(fig: Figure) -> str:
    if fig.target is None:
        return "–"
    kind, target = fig.target
    if kind == "ratio":
        return f">= {target:g}x PyTorch"
    if kind == "min":
        return f">= {target:g} {fig.unit}"
    return f"<= {target:g} {fig.unit}"


def _fmt(v, unit):
    if v is None:
        return "–"
    if unit == "x":
        return f"{v:.2f}"
    if unit in ("ms", "s", "MB"):
        return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"
    return f"{v:,.0f}"


def _isolation_text(result):
    iso, pids = result.get("isolation", {}), result.get("processes", {})
    has_torch = iso.get("nnviz_process_has_torch")
    out = (f"processes: nnviz in pid {pids.get('nnviz')} "
           f"({'WITH torch loaded, not what a user gets' if has_torch else 'torch not loaded'})")
    has_numba = iso.get("torch_process_has_numba")
    if has_numba is None:
        return out + ", PyTorch not run"
    return (out + f", PyTorch in pid {pids.get('torch')} "
            f"({'WITH numba loaded' if has_numba else 'numba not loaded'})")


def _vector_text(m):
    """The CPU's vector extensions and what each engine's kernels were built or chosen for:
    the ratios differ between AVX2 and AVX-512 machines."""
    ext = ", ".join(m.get("vector_extensions") or []) or "unknown"
    out = f"vector extensions: CPU {ext}; Numba compiles for {m.get('numba_target') or '?'}"
    if m.get("torch_cpu_capability"):
        out += f"; PyTorch kernels {m['torch_cpu_capability']}"
    return out


def table(result):
    m = result["machine"]
    head = (f"nnviz bench on {m['cpu']} ({m['cores']} cores), numpy {m['numpy']}, numba "
            f"{m.get('numba', '?')}, torch {m.get('torch', 'not used')}; median of "
            f"{result['repeats']} interleaved repeats, each engine in its own process")
    head += "\n" + _vector_text(m)
    cols = ["benchmark", "unit", "nnviz", "PyTorch", "ratio", "target", "met?"]
    lines = []
    for r in result["rows"] if "rows" in result else result["results"]:
        ratio = "–" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        ok = "–" if r["met"] is None else ("yes" if r["met"] else "NO")
        if r.get("error"):
            ok = "error: " + r["error"][:60]
        lines.append([r["name"], r["unit"], _fmt(r["nnviz"], r["unit"]),
                      _fmt(r["pytorch"], r["unit"]), ratio, r["target"], ok])
    widths = [max(len(c), *(len(l[i]) for l in lines)) if lines else len(c)
              for i, c in enumerate(cols)]
    fmt = lambda row: "| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |"
    out = [head, "", fmt(cols), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [fmt(l) for l in lines]
    for k, v in result.get("extra", {}).items():
        out.append(f"{k}: {v}")
    out.append("ratio: nnviz/PyTorch for throughput, PyTorch/nnviz for times (higher = nnviz faster)")
    if "isolation" in result:
        out.append(_isolation_text(result))
    return "\n".join(out)
