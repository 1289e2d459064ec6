"""Datasets (images, masks, texts) and image transforms."""

from .digits import load_digits_dataset
from .loading import (
    ClassificationSplits,
    ImageDataset,
    load_classification_splits,
    load_labelled_splits,
    load_raw_dataset,
    other_dataset_arguments,
    same_dataset,
)
from .text import TextDataset, load_text_classification_splits
from .transforms import EvalTransform, TrainTransform

__all__ = [
    "ClassificationSplits",
    "EvalTransform",
    "ImageDataset",
    "TextDataset",
    "TrainTransform",
    "load_classification_splits",
    "load_digits_dataset",
    "load_labelled_splits",
    "load_raw_dataset",
    "load_text_classification_splits",
    "other_dataset_arguments",
    "same_dataset",
]
