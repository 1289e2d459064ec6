"""Frozen features (extracted once, cached) and what they are worth: weighted kNN and softmax regression.

Takes data in (``LabelledData``), never tasks: reading a dataset is the tasks' job."""

from .features import FeatureExtractor, FeatureSet, LabelledData, cached_training_loader, extract_features
from .protocols import evaluate_representation, knn_evaluation, linear_probe_evaluation

__all__ = [
    "FeatureExtractor",
    "FeatureSet",
    "LabelledData",
    "cached_training_loader",
    "evaluate_representation",
    "extract_features",
    "knn_evaluation",
    "linear_probe_evaluation",
]
