"""grpo-rm: post-train representation models with GRPO-RM (arXiv:2511.15256) or cross-entropy."""

from importlib.metadata import PackageNotFoundError, version

from .commands.compare import run_comparison
from .commands.evaluate import evaluate_run
from .commands.train import run_training
from .commands.visualize import visualize_runs
from .config import DataArguments, ModelArguments, ObjectiveArguments, RunConfig, TrainingArguments
from .methods import CrossEntropyMethod, GrpoRmMethod
from .models import EncoderWithHead
from .objective import cross_entropy_loss, grpo_rm_loss
from .tasks import TASKS, Task, build_model, build_task
from .training import TrainOutput, train

try:
    __version__ = version("grpo-rm")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "unknown"

__all__ = [
    "CrossEntropyMethod",
    "DataArguments",
    "EncoderWithHead",
    "GrpoRmMethod",
    "ModelArguments",
    "ObjectiveArguments",
    "RunConfig",
    "TASKS",
    "Task",
    "TrainOutput",
    "TrainingArguments",
    "build_model",
    "build_task",
    "cross_entropy_loss",
    "evaluate_run",
    "grpo_rm_loss",
    "run_comparison",
    "run_training",
    "train",
    "visualize_runs",
]
