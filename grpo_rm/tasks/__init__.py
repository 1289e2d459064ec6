"""Tasks as plug-ins: a task is one module here plus one entry in ``TASKS``.

Names follow HF pipeline names; the older ``classification`` / ``segmentation`` stay as aliases.
"""

from __future__ import annotations

from typing import Sequence

import dataclasses
from pathlib import Path

from ..config import DataArguments, ModelArguments, RunConfig
from ..models import EncoderWithHead
from ..representation import LabelledData
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


def labelled_data(modality: str, data_args: DataArguments, processor, batch_size: int = 64) -> LabelledData:
    """A dataset's labelled splits as frozen-feature evaluation reads them, through the task that reads labelled
    examples of ``modality``: unaugmented loaders in the order of the split, and each split's cache key."""
    task_cls = frozen_feature_task(modality)
    task = task_cls(RunConfig(model=ModelArguments(task=task_cls.name), data=data_args))
    splits = ("train", "validation", "test")
    return LabelledData(
        name=data_args.dataset_name,
        class_names=list(task.class_names),
        loaders={split: task.eval_loader(split, processor, batch_size) for split in splits},
        cache_keys={split: _feature_cache_key(data_args, split, getattr(task.splits, split)) for split in splits},
        validation_source=task.validation_source,
    )


def _feature_cache_key(data_args: DataArguments, split: str, rows) -> dict:
    """What identifies a split's examples: the data settings that change them, and the split's files and rows (a
    folder regenerated in place changes its fingerprint)."""
    data = dataclasses.asdict(data_args)
    if Path(data_args.dataset_name).exists():
        data["dataset_name"] = str(Path(data_args.dataset_name).resolve())
    for unused in ("random_resized_crop_scale", "hflip_prob", "dataloader_num_workers", "group_by_length",
                   "text_column_names"):
        data.pop(unused)
    # Text columns change the features; image keys stay as they were so that image caches stay valid.
    if data_args.text_column_names:
        data["text_column_names"] = data_args.text_column_names
    return {"data": data, "split": split, "fingerprint": getattr(rows, "_fingerprint", None), "rows": len(rows)}


__all__ = ["EVAL_SPLITS", "TASKS", "ClassificationTask", "Task", "build_model", "build_task", "frozen_feature_task", "labelled_data", "task_class"]
