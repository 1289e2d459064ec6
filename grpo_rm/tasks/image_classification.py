"""Image classification: one label per image, random-resized-crop training, center-crop evaluation."""

from __future__ import annotations

from typing import Optional

import torch
from torch.utils.data import default_collate

from ..config import RunConfig
from ..data import EvalTransform, ImageDataset, TrainTransform, load_classification_splits
from ..processing import ImageProcessing
from .base import ClassificationTask


def image_collate(examples: list) -> dict:
    """(pixel_values, label or mask) pairs -> ``{"inputs": {"pixel_values": [N, 3, H, W]}, "labels": ...}``."""
    pixel_values, labels = default_collate(examples)
    return {"inputs": {"pixel_values": pixel_values}, "labels": labels}


def image_dummy_inputs(processor: ImageProcessing) -> dict[str, torch.Tensor]:
    return {"pixel_values": torch.zeros(1, 3, processor.image_size, processor.image_size)}


class ImageClassificationTask(ClassificationTask):
    name = "image-classification"
    aliases = ("classification",)
    modality = "image"

    def load_splits(self):
        return load_classification_splits(self.config.data)

    @classmethod
    def random_augmentation(cls, config: RunConfig) -> Optional[str]:
        data = config.data
        if list(data.random_resized_crop_scale) == [1.0, 1.0] and data.hflip_prob == 0:
            return None
        return "set random_resized_crop_scale 1.0 1.0 and hflip_prob 0"

    def dataset(self, split: str, processor: ImageProcessing, train: bool = False) -> ImageDataset:
        data = self.config.data
        transform = (TrainTransform(processor, data.random_resized_crop_scale, hflip_prob=data.hflip_prob) if train
                     else EvalTransform(processor))
        return ImageDataset(self.splits, split, transform, seed=self.config.training.seed if train else None)

    def collate(self, processor: ImageProcessing):
        return image_collate

    def dummy_inputs(self, processor: ImageProcessing) -> dict[str, torch.Tensor]:
        return image_dummy_inputs(processor)
