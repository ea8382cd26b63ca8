"""The training engine: one loop for every method and data kind."""

from restorekit.engine.schedule import learning_rate
from restorekit.engine.trainer import TrainingInterrupted, TrainResult, train

__all__ = ["TrainResult", "TrainingInterrupted", "learning_rate", "train"]
