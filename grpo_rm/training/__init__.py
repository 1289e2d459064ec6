"""The one training loop, its state, checkpoints and pre-emption handling."""

from .checkpoints import PREEMPTED_EXIT_CODE, TrainingPreempted
from .loop import TrainOutput, train
from .state import TrainState

__all__ = ["PREEMPTED_EXIT_CODE", "TrainOutput", "TrainState", "TrainingPreempted", "train"]
