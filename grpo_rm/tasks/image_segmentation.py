"""Semantic segmentation: a label per pixel, mIoU, whole-image or sliding-window inference, prediction pictures."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from accelerate import Accelerator

from ..config import DataArguments, ModelArguments, RunConfig
from ..data import same_dataset
from ..data.segmentation import SegmentationDataset, load_segmentation_splits
from ..data.transforms import SegmentationEvalTransform, SegmentationTrainTransform
from ..evaluation import evaluate_segmenter, predict_segmentation
from ..files import PREDICTION_PANEL_NAME
from ..models import EncoderWithHead, SegmentationHead
from ..models.encoders import Encoder
from ..processing import ImageProcessing
from ..reporting import prediction_panel
from .base import Task
from .image_classification import image_collate, image_dummy_inputs


class ImageSegmentationTask(Task):
    name = "image-segmentation"
    aliases = ("semantic-segmentation", "segmentation")
    modality = "image"
    primary_metric = "mean_iou"
    metric_label = "mIoU"

    def __init__(self, config: RunConfig):
        super().__init__(config)
        self.ignore_index = config.data.ignore_index

    def load_splits(self):
        return load_segmentation_splits(self.config.data)

    @classmethod
    def make_head(cls, args: ModelArguments, encoder: Encoder, num_labels: int) -> SegmentationHead:
        return SegmentationHead(encoder.hidden_size, num_labels, args.seg_num_layers, args.seg_batchnorm)

    @classmethod
    def random_augmentation(cls, config: RunConfig) -> Optional[str]:
        return f"{cls.name} crops its training images at random whatever seg_scale_range and hflip_prob are"

    def dataset(self, split: str, processor: ImageProcessing, train: bool = False) -> SegmentationDataset:
        data = self.config.data
        transform = (SegmentationTrainTransform(processor, data.seg_scale_range, data.hflip_prob, data.ignore_index)
                     if train else SegmentationEvalTransform(processor))
        return SegmentationDataset(getattr(self.splits, split), self.splits.image_column, self.splits.mask_column,
                                   len(self.class_names), transform, split, data.ignore_index, data.reduce_labels,
                                   seed=self.config.training.seed if train else None)

    def collate(self, processor: ImageProcessing):
        return image_collate

    def dummy_inputs(self, processor: ImageProcessing) -> dict[str, torch.Tensor]:
        return image_dummy_inputs(processor)

    def setup_evaluation(self, processor: ImageProcessing, accelerator: Accelerator) -> None:
        # Images keep their own sizes in evaluation: each process predicts its own share, in batches of
        # same-size images (or of sliding windows), so no image is padded further than on its own.
        self.eval_datasets = {split: self.dataset(split, processor) for split in ("validation", "test")}

    def evaluate(self, model, split: str, accelerator: Accelerator, show_progress: bool = True,
                 predictions_dir: Optional[Path] = None) -> dict:
        evaluation = self.config.evaluation
        return evaluate_segmenter(accelerator.unwrap_model(model), self.eval_datasets[split], accelerator,
                                  self.ignore_index, evaluation.seg_inference, evaluation.slide_stride, split,
                                  show_progress, predictions_dir, self.config.training.per_device_eval_batch_size,
                                  self.config.data.dataloader_num_workers)

    @classmethod
    def figures(cls, run_dirs: Sequence[str], output_dir: Path, labels: Sequence[str]) -> list[Path]:
        return [cls.visualize(run_dirs, None, str(output_dir), labels=labels)]

    @classmethod
    def visualize(cls, run_dirs: Sequence[str], dataset_name: Optional[str], output_dir: str, num_images: int = 4,
                  split: str = "test", labels: Optional[Sequence[str]] = None) -> Path:
        """Write ``predictions.png``: input, ground truth and each run's prediction for the first images of a split."""
        models = [EncoderWithHead.from_pretrained(run) for run in run_dirs]
        for run, model in zip(run_dirs, models):
            if model.class_names != models[0].class_names:
                raise ValueError(f"{run} and {run_dirs[0]} were trained on different classes")
        configs = [RunConfig.from_run_dir(run) for run in run_dirs]
        data_args = configs[0].data
        if dataset_name is not None and not same_dataset(dataset_name, data_args.dataset_name):
            data_args = DataArguments(dataset_name=dataset_name, ignore_index=data_args.ignore_index)
        splits = load_segmentation_splits(data_args)
        names = labels or [f"{config.objective.method} ({Path(run).name})" for run, config in zip(run_dirs, configs)]
        raw = SegmentationDataset(getattr(splits, split), splits.image_column, splits.mask_column,
                                  len(splits.class_names), lambda image, mask, generator: (image, mask), split,
                                  data_args.ignore_index, data_args.reduce_labels)
        count = min(num_images, len(raw))
        images, masks = zip(*(raw[i] for i in range(count)))
        predictions = {}
        with torch.no_grad():
            for name, model, config in zip(names, models, configs):
                model.eval()
                transform = SegmentationEvalTransform(model.processor)
                predictions[name] = []
                for image, mask in zip(images, masks):
                    pixels, _ = transform(image, mask)
                    logits = predict_segmentation(model, pixels, config.evaluation.seg_inference,
                                                  config.evaluation.slide_stride)
                    logits = F.interpolate(logits[None], size=mask.shape, mode="bilinear", align_corners=False)[0]
                    predictions[name].append(logits.argmax(dim=0).numpy())
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        return prediction_panel(images, masks, predictions, models[0].class_names,
                                Path(output_dir) / PREDICTION_PANEL_NAME, data_args.ignore_index)
