"""Text classification (one text, or a pair): any transformers text encoder, pooled, with a linear head.

Batches are tokenized per batch and padded to their longest text (dynamic padding);
``group_by_length`` batches texts of similar length together, as HF Trainer's option does.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch.utils.data import DataLoader
from transformers.trainer_pt_utils import LengthGroupedSampler

from ..config import RunConfig
from ..data import TextDataset, load_text_classification_splits
from ..processing import TextProcessing
from ..seeding import generator_for
from .base import ClassificationTask


class EpochLengthGroupedSampler(LengthGroupedSampler):
    """HF's length-grouped order (random megabatches of 50 batches, each sorted by length: shuffled, yet
    little padding), drawn from (seed, epoch) so that a resumed epoch sees the same order."""

    def __init__(self, batch_size: int, lengths: list[int], seed: int):
        super().__init__(batch_size, lengths=lengths)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        self.generator = generator_for(self.seed, self.epoch)
        return super().__iter__()


class TextClassificationTask(ClassificationTask):
    name = "text-classification"
    aliases = ("sentence-classification",)
    modality = "text"

    def load_splits(self):
        return load_text_classification_splits(self.config.data)

    @classmethod
    def random_augmentation(cls, config: RunConfig) -> Optional[str]:
        return None  # texts are read as they are; group_by_length changes only the order, which the sampler keeps

    def dataset(self, split: str, processor: TextProcessing, train: bool = False) -> TextDataset:
        return TextDataset(self.splits, split)

    def collate(self, processor: TextProcessing):
        def collate(examples: list) -> dict:
            texts, labels = zip(*examples)
            columns = list(zip(*texts))  # one tuple of strings per text column
            inputs = processor(columns[0], columns[1] if len(columns) > 1 else None)
            return {"inputs": inputs, "labels": torch.tensor(labels)}

        return collate

    def dummy_inputs(self, processor: TextProcessing) -> dict[str, torch.Tensor]:
        pair = ["a sentence"] if len(self.splits.input_columns) > 1 else None
        return processor(["a sentence"], pair)

    def train_loader(self, processor: TextProcessing) -> DataLoader:
        if not self.config.data.group_by_length:
            return super().train_loader(processor)
        dataset = self.dataset("train", processor, train=True)
        batch_size = self.config.training.per_device_train_batch_size
        sampler = EpochLengthGroupedSampler(batch_size, processor.lengths(*dataset.texts()), self.config.training.seed)
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=self.collate(processor),
                          **self.loader_options())
