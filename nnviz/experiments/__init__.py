"""Experiments: two networks trained side by side on the same data, with what to look at
(vanishing gradients and skip connections; translation and the pure CNN). Qt-free: the
app's Experiments tab drives a SideBySide runner from its worker thread."""
from .base import Arm, Experiment, ExperimentError, SideBySide
from .catalog import EXPERIMENTS, evaluate_state, make_experiment, split_state
from .translation import Translation
from .vanishing import VanishingGradients

__all__ = ["EXPERIMENTS", "Arm", "Experiment", "ExperimentError", "SideBySide", "Translation",
           "VanishingGradients", "evaluate_state", "make_experiment", "split_state"]
