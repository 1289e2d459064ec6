"""grpo-rm: post-train representation models with GRPO-RM (arXiv:2511.15256) or cross-entropy."""

from .config import DataArguments, ModelArguments, ObjectiveArguments, RunConfig, TrainingArguments
from .evaluation import evaluate_run
from .modeling import EncoderWithHead, build_model
from .objective import cross_entropy_loss, grpo_rm_loss
from .training import train

__version__ = "0.1.0"

__all__ = [
    "DataArguments",
    "EncoderWithHead",
    "ModelArguments",
    "ObjectiveArguments",
    "RunConfig",
    "TrainingArguments",
    "build_model",
    "cross_entropy_loss",
    "evaluate_run",
    "grpo_rm_loss",
    "train",
]
