"""The catalogue of `nnviz bench` figures, in table order, and `--only` selection.

To add a figure group: write a module here with `FIGURES = [Figure(...), ...]` (see
`figure.Figure` for where a figure runs) and add it to GROUPS. `--only NAME` selects every
figure whose name starts with NAME, so figures of one group share a prefix.
"""
from __future__ import annotations

from . import app_figures, engine_figures, explain_figures, extra
from .figure import Figure

GROUPS: dict[str, list[Figure]] = {
    "engine": engine_figures.FIGURES,     # beside PyTorch
    "extra": extra.FIGURES,               # data, start-up, memory
    "app": app_figures.FIGURES,           # the app's live views against the trainer alone
    "explain": explain_figures.FIGURES,   # nnviz.explain on LeNet-5
}
FIGURES: dict[str, Figure] = {f.name: f for group in GROUPS.values() for f in group}


def select(only: str | None, quick: bool) -> list[str]:
    """Figure names for `--only` (comma-separated prefixes) or the default set."""
    if not only:
        return [n for n, f in FIGURES.items() if f.default and (f.quick or not quick)]
    out: list[str] = []
    for tok in (t.strip() for t in only.split(",")):
        if not tok:
            continue
        hits = [n for n in FIGURES if n == tok or n.startswith(tok)]
        if not hits:
            raise ValueError(f"unknown benchmark {tok!r}; known: {', '.join(FIGURES)}")
        out.extend(h for h in hits if h not in out)
    return out
