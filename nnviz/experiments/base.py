"""What every side-by-side experiment shares: its options, its two arms, and the runner that
trains them in turn on the same data (Qt-free; the app's worker thread drives a runner)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from nnviz.data import Dataset
from nnviz.engine import Sequential
from nnviz.train import Trainer


class ExperimentError(ValueError):
    """An experiment's option is wrong; the message names the option and what was expected."""


@dataclass
class Arm:
    """One of the networks of an experiment and the trainer that trains it."""
    key: str                  # a short name used in metrics: "plain", "residual", "mlp", "cnn"
    label: str                # what the plots' legends say
    model: Sequential
    trainer: Trainer


@dataclass
class Series:
    """(step, value) pairs kept bounded: past max_points, every second old point is dropped."""
    max_points: int = 4000
    steps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    every: int = 1

    def add(self, step: int, value: float) -> None:
        if step % self.every:
            return
        self.steps.append(int(step))
        self.values.append(float(value))
        if len(self.steps) > self.max_points:
            self.steps, self.values = self.steps[1::2], self.values[1::2]
            self.every *= 2

    def truncate(self, step: int) -> None:
        keep = sum(1 for s in self.steps if s <= step)
        del self.steps[keep:], self.values[keep:]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.steps, np.float64), np.asarray(self.values, np.float64)


Option = tuple[str, Any, Any]   # (kind, allowed or low, high): ("int", 1, 60), ("choice", (...), None)

# what every experiment trains with (Experiment.trainer reads them)
TRAINING_OPTIONS: dict[str, Option] = {
    "lr": ("float", 1e-6, 10.0), "optimizer": ("choice", ("sgd", "adam"), None),
    "batch_size": ("int", 1, 1024), "seed": ("int", 0, 2**31 - 1)}


class Experiment(ABC):
    """An experiment: data, two arms on it, what is probed after each step, its numbers.

    Subclasses set the class attributes and implement dataset() and arms(); options are
    checked here so that a bad lesson file fails with one line naming the option.
    """
    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    caption: ClassVar[str] = ""
    diagnostic: ClassVar[str] = ""        # the extra view: "grad_norms" or "samples"
    OPTIONS: ClassVar[dict[str, Option]] = {}
    DEFAULTS: ClassVar[dict[str, Any]] = {}

    def __init__(self, **options: Any) -> None:
        self.options = self.check_options({**self.DEFAULTS, **options})

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(options) - set(cls.OPTIONS))
        if unknown:
            raise ExperimentError(f"{cls.name}: unknown option(s) {unknown}; known: {sorted(cls.OPTIONS)}")
        for key, value in options.items():
            kind, a, b = cls.OPTIONS[key]
            if kind == "choice":
                if value not in a:
                    raise ExperimentError(f"{key}: expected one of {', '.join(map(str, a))}, got {value!r}")
            elif kind == "int":
                if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not a <= value <= b:
                    raise ExperimentError(f"{key}: expected a whole number from {a} to {b}, got {value!r}")
            elif kind == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not np.isfinite(value) or not a <= value <= b):
                raise ExperimentError(f"{key}: expected a number from {a:g} to {b:g}, got {value!r}")
        return dict(options)

    def describe(self) -> str:
        """The caption for these options (the class's, unless a variant needs its own)."""
        return self.caption

    @property
    def seed(self) -> int:
        return int(self.options.get("seed", 0))

    @abstractmethod
    def dataset(self) -> Dataset:
        """The data both arms train on."""

    @abstractmethod
    def arms(self, data: Dataset) -> list[Arm]:
        """The networks, each with its trainer, built from the same seed."""

    def probe(self, arm: Arm) -> dict[str, np.ndarray]:
        """What is read off an arm after each step (copies); nothing by default."""
        return {}

    def metrics(self, run: SideBySide) -> dict[str, Any]:
        """The numbers a lesson states, after the steps run so far."""
        out: dict[str, Any] = {"steps": run.steps}
        for arm in run.arms:
            loss, acc = arm.trainer.evaluate("test")
            out[f"{arm.key}_test_loss"] = loss
            out[f"{arm.key}_test_accuracy"] = acc
        return out

    def trainer(self, model: Sequential, data: Dataset) -> Trainer:
        o = self.options
        # "off": every step runs layer by layer in both arms, so each layer's gradient is there to read
        return Trainer(model, data, loss="softmax_xent", optimizer=o.get("optimizer", "sgd"), lr=o["lr"],
                       batch_size=min(int(o.get("batch_size", 32)), len(data.y_train)), seed=self.seed,
                       fused="off")

    def build(self) -> SideBySide:
        data = self.dataset()
        return SideBySide(self, data, self.arms(data))


class SideBySide:
    """Steps every arm once per step(), in turn, so the arms always sit at the same step."""

    def __init__(self, experiment: Experiment, data: Dataset, arms: list[Arm]) -> None:
        self.experiment = experiment
        self.data = data
        self.arms = arms
        self.trainers = [a.trainer for a in arms]
        self.probes: dict[str, dict[str, np.ndarray]] = {a.key: experiment.probe(a) for a in arms}
        self.series: dict[str, dict[str, Series]] = {a.key: {} for a in arms}

    @property
    def steps(self) -> int:
        return self.trainers[0].steps

    @property
    def epoch(self) -> int:
        return self.trainers[0].epoch

    @property
    def lr(self) -> float:
        return self.trainers[0].lr

    def step(self) -> None:
        for arm in self.arms:
            tr = arm.trainer
            ep = tr.epoch
            tr.step()
            if tr.epoch != ep:
                tr.record_epoch()
            probe = self.experiment.probe(arm)
            self.probes[arm.key] = probe
            series = self.series[arm.key]
            for name, value in probe.items():
                if np.ndim(value) == 0:         # scalars are kept over time, arrays only the latest
                    series.setdefault(name, Series()).add(tr.steps, float(value))

    def run(self, n: int, should_stop: Callable[[], bool] | None = None) -> None:
        for _ in range(int(n)):
            if should_stop is not None and should_stop():
                return
            self.step()

    def restore_last_good(self) -> int:
        steps = min([t.restore_last_good() for t in self.trainers])
        for series in self.series.values():
            for s in series.values():
                s.truncate(steps)
        return steps

    def metrics(self) -> dict[str, Any]:
        return self.experiment.metrics(self)
