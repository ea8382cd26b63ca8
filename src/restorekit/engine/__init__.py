"""The training engine: one loop for every method, checkpoints, logging."""

from restorekit.engine.trainer import TrainingInterrupted, TrainResult, learning_rate, train

__all__ = ["TrainResult", "TrainingInterrupted", "learning_rate", "train"]
