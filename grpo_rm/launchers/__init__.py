"""Where a comparison's rows run: in this process, several local processes with a thread budget, or submitit jobs
(SLURM, or submitit's local executor). A row is a ``grpo-rm train`` with a config file, nothing more."""

from .local import InProcessLauncher, LocalLauncher, visible_gpus
from .rows import Outcome, Progress, Row
from .slurm import SlurmArguments, SubmititLauncher, TrainRow

__all__ = ["InProcessLauncher", "LocalLauncher", "Outcome", "Progress", "Row", "SlurmArguments", "SubmititLauncher",
           "TrainRow", "visible_gpus"]
