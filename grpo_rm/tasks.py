"""What differs between tasks for the one training loop: data, transforms, evaluation, metric names.

A task knows its splits and class names, builds the training dataset for a model's
preprocessing, and evaluates a model on ``validation`` or ``test``. The loop, the
optimizer and the method (``ce`` / ``grpo-rm``) are shared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from accelerate import Accelerator
from torch.utils.data import DataLoader, Dataset

from .backbones import Preprocessing
from .config import RunConfig
from .data import EvalTransform, ImageDataset, TrainTransform, load_classification_splits
from .data.segmentation import SegmentationDataset, load_segmentation_splits
from .data.transforms import SegmentationEvalTransform, SegmentationTrainTransform
from .evaluation import eval_loader, evaluate_classifier, evaluate_segmenter

EVAL_SPLITS = ("validation", "test")


class ClassificationTask:
    name = "classification"
    primary_metric = "accuracy"
    ignore_index = -100

    def __init__(self, config: RunConfig):
        self.config = config
        self.splits = load_classification_splits(config.data)
        self.class_names = self.splits.class_names
        self.validation_source = self.splits.validation_source
        self.loaders: dict[str, DataLoader] = {}

    def _dataset(self, split: str, transform) -> ImageDataset:
        return ImageDataset(getattr(self.splits, split), self.splits.image_column, self.splits.label_column,
                            transform, split)

    def train_dataset(self, preprocessing: Preprocessing) -> Dataset:
        data = self.config.data
        return self._dataset("train", TrainTransform(preprocessing, data.random_resized_crop_scale, hflip_prob=data.hflip_prob))

    def setup_evaluation(self, preprocessing: Preprocessing, accelerator: Accelerator) -> None:
        batch_size = self.config.training.per_device_eval_batch_size
        for split in EVAL_SPLITS:
            loader = eval_loader(self._dataset(split, EvalTransform(preprocessing)), batch_size,
                                 self.config.data.dataloader_num_workers)
            self.loaders[split] = accelerator.prepare(loader)

    def evaluate(self, model, split: str, accelerator: Accelerator, show_progress: bool = True,
                 predictions_dir: Optional[Path] = None) -> dict:
        return evaluate_classifier(model, self.loaders[split], accelerator, split, show_progress, predictions_dir)


class SegmentationTask:
    name = "segmentation"
    primary_metric = "mean_iou"

    def __init__(self, config: RunConfig):
        self.config = config
        self.splits = load_segmentation_splits(config.data)
        self.class_names = self.splits.class_names
        self.validation_source = self.splits.validation_source
        self.ignore_index = config.data.ignore_index
        self.eval_datasets: dict[str, SegmentationDataset] = {}

    def _dataset(self, split: str, transform) -> SegmentationDataset:
        data = self.config.data
        return SegmentationDataset(getattr(self.splits, split), self.splits.image_column, self.splits.mask_column,
                                   len(self.class_names), transform, split, data.ignore_index, data.reduce_labels)

    def train_dataset(self, preprocessing: Preprocessing) -> Dataset:
        data = self.config.data
        return self._dataset("train", SegmentationTrainTransform(preprocessing, data.seg_scale_range, data.hflip_prob,
                                                                 data.ignore_index))

    def setup_evaluation(self, preprocessing: Preprocessing, accelerator: Accelerator) -> None:
        for split in EVAL_SPLITS:
            self.eval_datasets[split] = self._dataset(split, SegmentationEvalTransform(preprocessing))

    def evaluate(self, model, split: str, accelerator: Accelerator, show_progress: bool = True,
                 predictions_dir: Optional[Path] = None) -> dict:
        evaluation = self.config.evaluation
        return evaluate_segmenter(accelerator.unwrap_model(model), self.eval_datasets[split], accelerator,
                                  self.ignore_index, evaluation.seg_inference, evaluation.slide_stride, split,
                                  show_progress, predictions_dir)


Task = Union[ClassificationTask, SegmentationTask]


def build_task(config: RunConfig) -> Task:
    return SegmentationTask(config) if config.model.task == "segmentation" else ClassificationTask(config)


def result_metrics(prefix: str, metrics: dict, scalars_only: bool = False) -> dict:
    """``{"accuracy": ...}`` -> ``{"eval_accuracy": ...}``; lists (per-class values) kept unless ``scalars_only``."""
    return {f"{prefix}_{key}": value for key, value in metrics.items()
            if not (scalars_only and isinstance(value, list))}
