"""One benchmark figure: what it measures, where it runs, and its target."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Figure:
    """`where` says who runs `run`:

    - "paired": both workers time calls of the same workload; `run()` returns it as plain
      data ({"kind": "train" | "grid" | "featuremaps", "spec": spec or preset name, ...}).
    - "worker": the nnviz worker calls `run(quick)` -> (value, {extra figures}); nnviz only.
    - "driver": this process calls `run(settings)` -> value, usually timing a fresh interpreter.
    """
    name: str
    unit: str                  # "img/s", "steps/s" (higher is better), "ms", "s", "MB", "x" (a ratio)
    description: str
    where: str
    run: Callable[..., Any]
    # ("ratio", r): nnviz/PyTorch >= r; ("max", v): nnviz <= v; ("min", v): nnviz >= v
    target: tuple[str, float] | None = None
    default: bool = True       # in a plain `nnviz bench`
    quick: bool = True         # in `nnviz bench --quick`

    @property
    def higher_is_better(self) -> bool:
        return self.unit.endswith("/s")

    def value(self, plan: dict, sec: float | None) -> float | None:
        """A paired figure's number from seconds per call."""
        if sec is None:
            return None
        if self.unit == "img/s":
            return plan["batch"] / sec
        if self.unit == "steps/s":
            return 1 / sec
        return sec * 1e3          # ms
