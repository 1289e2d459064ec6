"""The task registry: HF pipeline names, the older aliases, and what compare reads without loading data."""

import pytest

from grpo_rm.tasks import TASKS, frozen_feature_task, task_class


def test_names_and_aliases_resolve_to_one_task():
    assert task_class("classification") is task_class("image-classification")
    assert task_class("segmentation") is task_class("semantic-segmentation") is task_class("image-segmentation")
    assert task_class("text-classification").modality == "text"
    assert set(TASKS) == {"image-classification", "image-segmentation", "text-classification"}


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(ValueError, match="task='detection' is not one of: image-classification"):
        task_class("detection")


def test_frozen_features_read_the_classification_task_of_the_encoders_modality():
    assert frozen_feature_task("image").name == "image-classification"
    assert frozen_feature_task("text").name == "text-classification"
    assert task_class("image-segmentation").primary_metric == "mean_iou"
