"""The one training loop, its state, checkpoints and pre-emption handling."""

from .checkpoints import TrainingPreempted
from .loop import train
from .state import TrainState

__all__ = ["TrainState", "TrainingPreempted", "train"]
