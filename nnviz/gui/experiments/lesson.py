"""Lesson files for the Experiments tab: the experiment, its options and the steps trained first."""
from __future__ import annotations

from nnviz.experiments import ExperimentError, split_state
from nnviz.experiments.catalog import MAX_STEPS
from nnviz.lessons import LessonError


class ExperimentsAdapter:
    workspace = "experiments"

    def capture(self, ws) -> dict:
        exp = ws.experiment
        # a lesson replays its steps when opened: a very long run is saved as the longest it replays
        return {"experiment": exp.name, **exp.options, "train_steps": min(int(ws.run.steps), MAX_STEPS)}

    def apply(self, ws, state: dict) -> None:
        try:
            name, options, n = split_state(state)
            ws.load(name, options)
        except ExperimentError as e:
            raise LessonError(f"state.{e}") from None
        if n:
            ws.train_sync(n)
