"""Tasks as plug-ins: a task is one module here plus one entry in ``TASKS``.

Names follow HF pipeline names; the older ``classification`` / ``segmentation`` stay as aliases.
"""

from __future__ import annotations

from typing import Sequence

from ..config import ModelArguments, RunConfig
from ..models import EncoderWithHead
from .base import EVAL_SPLITS, ClassificationTask, Task
from .image_classification import ImageClassificationTask
from .image_segmentation import ImageSegmentationTask
from .text_classification import TextClassificationTask

TASKS: dict[str, type[Task]] = {
    task.name: task for task in (ImageClassificationTask, ImageSegmentationTask, TextClassificationTask)
}


def task_class(name: str) -> type[Task]:
    """The task registered under ``name`` or one of its aliases."""
    for task in TASKS.values():
        if name == task.name or name in task.aliases:
            return task
    known = [f"{task.name} (alias {', '.join(task.aliases)})" if task.aliases else task.name for task in TASKS.values()]
    raise ValueError(f"task={name!r} is not one of: {'; '.join(known)}")


def build_task(config: RunConfig) -> Task:
    return task_class(config.model.task)(config)


def build_model(args: ModelArguments, class_names: Sequence[str]) -> EncoderWithHead:
    """The model of task ``args.task`` on encoder ``args.model_name_or_path`` for ``class_names``."""
    return task_class(args.task).model_for(args, class_names)


def frozen_feature_task(modality: str) -> type[Task]:
    """The task whose labelled data frozen-feature evaluation (kNN, softmax regression) reads for an encoder."""
    return next(task for task in TASKS.values() if task.frozen_features and task.modality == modality)


__all__ = ["EVAL_SPLITS", "TASKS", "ClassificationTask", "Task", "build_model", "build_task", "frozen_feature_task", "task_class"]
