"""grpo-rm: post-train representation models with GRPO-RM (arXiv:2511.15256) or cross-entropy."""

from .config import DataArguments, ModelArguments, ObjectiveArguments, RunConfig, TrainingArguments
from .commands import evaluate_run, visualize_runs
from .models import EncoderWithHead
from .objective import cross_entropy_loss, grpo_rm_loss
from .tasks import TASKS, Task, build_model, build_task
from .training import train

__version__ = "0.1.0"

__all__ = [
    "DataArguments",
    "EncoderWithHead",
    "ModelArguments",
    "ObjectiveArguments",
    "RunConfig",
    "TASKS",
    "Task",
    "TrainingArguments",
    "build_model",
    "build_task",
    "cross_entropy_loss",
    "evaluate_run",
    "grpo_rm_loss",
    "train",
    "visualize_runs",
]
