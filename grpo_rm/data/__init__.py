"""Datasets and image transforms."""

from .digits import load_digits_dataset
from .loading import ClassificationSplits, ImageDataset, load_classification_splits, load_raw_dataset
from .transforms import EvalTransform, TrainTransform

__all__ = [
    "ClassificationSplits",
    "EvalTransform",
    "ImageDataset",
    "TrainTransform",
    "load_classification_splits",
    "load_digits_dataset",
    "load_raw_dataset",
]
