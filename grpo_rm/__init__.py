"""grpo-rm: post-train representation models with GRPO-RM (arXiv:2511.15256) or cross-entropy.

The names below are imported when first used (PEP 562), so that ``import grpo_rm`` and the ``grpo-rm``
commands load only the libraries they need (``grpo-rm env`` starts in a second, not ten).
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("grpo-rm")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "unknown"

# public name -> the module that defines it
_EXPORTS = {
    "run_comparison": "grpo_rm.commands.compare",
    "evaluate_run": "grpo_rm.commands.evaluate",
    "run_training": "grpo_rm.commands.train",
    "visualize_runs": "grpo_rm.commands.visualize",
    "DataArguments": "grpo_rm.config",
    "ModelArguments": "grpo_rm.config",
    "ObjectiveArguments": "grpo_rm.config",
    "RunConfig": "grpo_rm.config",
    "TrainingArguments": "grpo_rm.config",
    "CrossEntropyMethod": "grpo_rm.methods",
    "GrpoRmMethod": "grpo_rm.methods",
    "EncoderWithHead": "grpo_rm.models",
    "cross_entropy_loss": "grpo_rm.objective",
    "grpo_rm_loss": "grpo_rm.objective",
    "TASKS": "grpo_rm.tasks",
    "Task": "grpo_rm.tasks",
    "build_model": "grpo_rm.tasks",
    "build_task": "grpo_rm.tasks",
    "TrainOutput": "grpo_rm.training",
    "train": "grpo_rm.training",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # what static tools see; at run time __getattr__ imports on first use
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


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'grpo_rm' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
