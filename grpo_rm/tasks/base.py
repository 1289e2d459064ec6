"""The task interface: everything that differs between tasks, behind one class, so the loop never asks.

A task loads and splits its data, builds its model (encoder of its modality + its head),
turns examples into batches ``{"inputs": {...}, "labels": ...}`` that the model takes as
``model(**batch["inputs"])``, evaluates a model on ``validation`` or ``test``, and names its
primary metric. ``compare`` and ``visualize`` read the class attributes without loading data.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional, Sequence

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader, Dataset

from ..config import ModelArguments, RunConfig
from ..evaluation import evaluate_classifier
from ..models import ClassificationHead, EncoderWithHead, assemble_model
from ..models.encoders import Encoder

EVAL_SPLITS = ("validation", "test")
Batch = dict[str, Any]


class Task(ABC):
    name: ClassVar[str]  # HF pipeline name
    aliases: ClassVar[tuple[str, ...]] = ()
    modality: ClassVar[str]  # what the encoder reads: "image" or "text"
    primary_metric: ClassVar[str]  # validation metric for best-model selection, e.g. "accuracy"
    metric_label: ClassVar[str]  # how tables name it, e.g. "top-1"
    # Other test metrics that comparison tables show next to it: (results key without "eval_", table name).
    secondary_metrics: ClassVar[tuple[tuple[str, str], ...]] = ()
    # Whether frozen-feature kNN / softmax regression can run on this task's own data (labelled examples).
    frozen_features: ClassVar[bool] = False
    ignore_index: int = -100

    def __init__(self, config: RunConfig):
        self.config = config
        self.splits = self.load_splits()
        self.class_names = self.splits.class_names
        self.validation_source = self.splits.validation_source
        self.eval_loaders: dict[str, DataLoader] = {}

    # --- what each task defines ---
    @abstractmethod
    def load_splits(self):
        """Train / validation / test splits with ``class_names``, ``validation_source`` and ``sizes()``."""

    @classmethod
    @abstractmethod
    def make_head(cls, args: ModelArguments, encoder: Encoder, num_labels: int) -> torch.nn.Module:
        """A new head for this task on ``encoder``."""

    @abstractmethod
    def dataset(self, split: str, processor, train: bool = False) -> Dataset:
        """Examples of a split; ``train`` adds the training augmentation."""

    @classmethod
    @abstractmethod
    def random_augmentation(cls, config: RunConfig) -> Optional[str]:
        """None when ``config``'s training examples are the same every epoch; otherwise what to set to make them so (or
        why nothing can), for the errors of options that need it (``cache_frozen_features``)."""

    @abstractmethod
    def collate(self, processor) -> Callable[[list], Batch]:
        """Examples -> ``{"inputs": {...}, "labels": ...}``."""

    @abstractmethod
    def dummy_inputs(self, processor) -> dict[str, torch.Tensor]:
        """One small input, to find parameters that the forward pass never reaches."""

    @abstractmethod
    def evaluate(self, model, split: str, accelerator: Accelerator, show_progress: bool = True,
                 predictions_dir: Optional[Path] = None) -> dict:
        """This task's metrics of ``model`` on ``split`` (after ``setup_evaluation``)."""

    @classmethod
    def figures(cls, run_dirs: Sequence[str], output_dir: Path, labels: Sequence[str]) -> list[Path]:
        """Pictures ``compare`` adds to its report for this task (one run per row); none by default."""
        return []

    @classmethod
    def visualize(cls, run_dirs: Sequence[str], dataset_name: Optional[str], output_dir: str, num_images: int = 4,
                  split: str = "test", labels: Optional[Sequence[str]] = None) -> Path:
        raise ValueError(f"{cls.name} runs have no prediction pictures; visualize shows segmentation predictions")

    # --- shared ---
    @classmethod
    def model_for(cls, args: ModelArguments, class_names: Sequence[str]) -> EncoderWithHead:
        """This task's model on ``args.model_name_or_path`` for ``class_names`` (no data needed)."""
        return assemble_model(args, class_names, cls.name, cls.modality,
                              lambda encoder, num_labels: cls.make_head(args, encoder, num_labels))

    def build_model(self) -> EncoderWithHead:
        return self.model_for(self.config.model, self.class_names)

    def sizes(self) -> dict[str, int]:
        return self.splits.sizes()

    def train_loader(self, processor) -> DataLoader:
        return DataLoader(self.dataset("train", processor, train=True),
                          batch_size=self.config.training.per_device_train_batch_size, shuffle=True,
                          collate_fn=self.collate(processor), **self.loader_options())

    def eval_loader(self, split: str, processor, batch_size: Optional[int] = None) -> DataLoader:
        return DataLoader(self.dataset(split, processor), shuffle=False,
                          batch_size=batch_size or self.config.training.per_device_eval_batch_size,
                          collate_fn=self.collate(processor), **self.loader_options())

    def loader_options(self) -> dict:
        """Workers prefetch 4 batches each; pinned memory speeds copies to a GPU. Workers are not
        persistent: a persistent worker keeps its copy of the dataset, and with it the epoch that
        keys each sample's augmentation."""
        workers = self.config.data.dataloader_num_workers
        return {"num_workers": workers, "pin_memory": torch.cuda.is_available(),
                **({"prefetch_factor": 4} if workers > 0 else {})}

    def setup_evaluation(self, processor, accelerator: Accelerator) -> None:
        for split in EVAL_SPLITS:
            self.eval_loaders[split] = accelerator.prepare(self.eval_loader(split, processor))


class ClassificationTask(Task):
    """One label per example: a pooled-token head, top-1 / macro-F1 / cross-entropy evaluation."""

    primary_metric = "accuracy"
    metric_label = "top-1"
    secondary_metrics = (("macro_f1", "macro-F1"),)
    frozen_features = True

    @classmethod
    def make_head(cls, args: ModelArguments, encoder: Encoder, num_labels: int) -> ClassificationHead:
        return ClassificationHead(encoder.hidden_size, num_labels, args.head_type,
                                  args.pooling or encoder.default_pooling, args.mlp_hidden_dim)

    def evaluate(self, model, split: str, accelerator: Accelerator, show_progress: bool = True,
                 predictions_dir: Optional[Path] = None) -> dict:
        return evaluate_classifier(model, self.eval_loaders[split], accelerator, len(self.class_names), split,
                                   show_progress, predictions_dir)
