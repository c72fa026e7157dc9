"""The experiments by name, and the numbers of a lesson's experiment step (for its `expect`)."""
from __future__ import annotations

from typing import Any

from .base import Experiment, ExperimentError
from .translation import Translation
from .vanishing import VanishingGradients

EXPERIMENTS: dict[str, type[Experiment]] = {c.name: c for c in (VanishingGradients, Translation)}
MAX_STEPS = 20000


def make_experiment(name: str, **options: Any) -> Experiment:
    cls = EXPERIMENTS.get(name)
    if cls is None:
        raise ExperimentError(f"experiment: expected one of {', '.join(EXPERIMENTS)}, got {name!r}")
    return cls(**options)


def split_state(state: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
    """A lesson's state -> (experiment name, its options, steps to train first)."""
    opts = {k: v for k, v in state.items() if k not in ("experiment", "train_steps")}
    n = state.get("train_steps", 0)
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_STEPS:
        raise ExperimentError(f"train_steps: expected a whole number from 0 to {MAX_STEPS}, got {n!r}")
    return state.get("experiment", "vanishing"), opts, n


def evaluate_state(state: dict[str, Any]) -> dict[str, Any]:
    """Build the experiment a lesson step names, train it train_steps steps, return its numbers."""
    name, opts, n = split_state(state)
    run = make_experiment(name, **opts).build()
    run.run(n)
    return run.metrics()
