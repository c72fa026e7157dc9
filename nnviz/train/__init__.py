"""Training loop shared by the CLI and the GUI (no Qt here)."""
from .history import History
from .trainer import Trainer, TrainerError, TrainingDiverged, accuracy

__all__ = ["Trainer", "TrainerError", "TrainingDiverged", "History", "accuracy"]
