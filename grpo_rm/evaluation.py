"""Evaluation loops: classification (top-1, macro-F1, cross-entropy) and segmentation (mIoU), across processes.

Both take batches as the tasks make them (``{"inputs": {...}, "labels": ...}``) or, for
segmentation, one image at a time; neither asks which modality it runs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import gather_object
from PIL import Image
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .files import write_json_atomic
from .metrics import confusion_matrix, macro_f1, segmentation_scores
from .reporting import voc_colormap

logger = logging.getLogger(__name__)


@torch.no_grad()
def evaluate_classifier(
    model: torch.nn.Module, loader: DataLoader, accelerator: Accelerator, num_classes: int, description: str = "eval",
    show_progress: bool = True, predictions_dir: Optional[Path] = None,
) -> dict[str, float]:
    """Top-1 accuracy, macro-F1 and cross-entropy (whatever the training objective) over a whole split.

    With ``predictions_dir``, ``predictions.json`` lists the label and prediction of every example in order.
    """
    was_training = model.training
    model.eval()
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=accelerator.device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    count = 0
    saved: list[dict] = []
    bar = tqdm(loader, desc=description, leave=False, disable=not (show_progress and accelerator.is_local_main_process))
    for batch in bar:
        with accelerator.autocast():
            logits = model(**batch["inputs"])
        logits, labels = accelerator.gather_for_metrics((logits.float(), batch["labels"]))
        predictions = logits.argmax(dim=-1)
        confusion += confusion_matrix(predictions, labels, num_classes, ignore_index=-100)
        if predictions_dir is not None:  # per-example lists only when they are written
            saved += [{"label": t, "prediction": p} for t, p in zip(labels.tolist(), predictions.tolist())]
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").double()
        count += labels.numel()
    model.train(was_training)
    if count == 0:
        raise ValueError(f"the {description} split is empty")
    if predictions_dir is not None and accelerator.is_main_process:
        write_json_atomic(Path(predictions_dir) / "predictions.json", [{"index": i, **p} for i, p in enumerate(saved)])
    accuracy = float(confusion.diagonal().sum().double() / count)
    return {"accuracy": accuracy, "macro_f1": macro_f1(confusion.cpu()), "loss": float(loss_sum / count),
            "samples": count}


def predict_segmentation(model, pixel_values: torch.Tensor, mode: str = "whole",
                         stride: Optional[int] = None) -> torch.Tensor:
    """Logits [C, H, W] for one normalised image [3, H, W] of any size.

    ``whole``: pad right/bottom to a multiple of the patch size, predict, crop back.
    ``slide``: average the logits of ``image_size`` windows taken every ``stride`` pixels.
    """
    patch = model.encoder.patch_size
    height, width = pixel_values.shape[-2:]
    if mode == "whole":
        padded = F.pad(pixel_values, (0, -width % patch, 0, -height % patch))
        return model(pixel_values=padded[None])[0, :, :height, :width]
    if mode != "slide":
        raise ValueError(f"seg_inference={mode!r} is not 'whole' or 'slide'")
    window = model.processor.image_size
    stride = stride or max(patch, window * 2 // 3)
    if not 0 < stride <= window:
        raise ValueError(f"slide_stride {stride} must be in (0, image_size={window}], or some pixels get no window")
    padded = F.pad(pixel_values, (0, max(0, window - width), 0, max(0, window - height)))
    full_h, full_w = padded.shape[-2:]
    logits = torch.zeros(len(model.class_names), full_h, full_w, device=pixel_values.device)
    counts = torch.zeros(1, full_h, full_w, device=pixel_values.device)
    tops = sorted({*range(0, full_h - window + 1, stride), full_h - window})
    lefts = sorted({*range(0, full_w - window + 1, stride), full_w - window})
    for top in tops:
        for left in lefts:
            crop = padded[:, top : top + window, left : left + window]
            logits[:, top : top + window, left : left + window] += model(pixel_values=crop[None])[0]
            counts[:, top : top + window, left : left + window] += 1
    return (logits / counts)[:, :height, :width]


@torch.no_grad()
def evaluate_segmenter(model, dataset, accelerator: Accelerator, ignore_index: int = 255, mode: str = "whole",
                       stride: Optional[int] = None, description: str = "eval", show_progress: bool = True,
                       predictions_dir: Optional[Path] = None) -> dict:
    """mIoU, mAcc, aAcc and per-class IoU from one confusion matrix over the whole split.

    Each process takes its own share of images (no padding duplicates), predictions are
    upsampled to the original mask resolution, and the matrices are summed across processes.
    With ``predictions_dir``, every predicted mask is saved there as a palette PNG, and
    ``index.json`` maps each file to its image and ground-truth mask.
    """
    was_training = model.training
    model.eval()
    num_classes = len(model.class_names)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=accelerator.device)
    saved = []
    if predictions_dir is not None:
        Path(predictions_dir).mkdir(parents=True, exist_ok=True)
    with accelerator.split_between_processes(list(range(len(dataset)))) as indices:
        bar = tqdm(indices, desc=description, leave=False, disable=not (show_progress and accelerator.is_local_main_process))
        for index in bar:
            pixel_values, mask = dataset[index]
            with accelerator.autocast():
                logits = predict_segmentation(model, pixel_values.to(accelerator.device), mode, stride)
            logits = F.interpolate(logits[None].float(), size=mask.shape, mode="bilinear", align_corners=False)[0]
            prediction = logits.argmax(dim=0)
            confusion += confusion_matrix(prediction, mask.to(accelerator.device), num_classes, ignore_index)
            if predictions_dir is not None:
                saved.append(_save_prediction(prediction, Path(predictions_dir), index, dataset))
    model.train(was_training)
    confusion = accelerator.reduce(confusion, reduction="sum")
    if predictions_dir is not None:
        entries = sorted(gather_object(saved), key=lambda entry: entry["index"])
        if accelerator.is_main_process:
            write_json_atomic(Path(predictions_dir) / "index.json", entries)
    return {**segmentation_scores(confusion.cpu()), "samples": len(dataset)}


def _save_prediction(prediction: torch.Tensor, directory: Path, index: int, dataset) -> dict:
    image = Image.fromarray(prediction.to(torch.uint8).cpu().numpy())
    image.putpalette([channel for color in voc_colormap(256) for channel in color])
    name = f"{index:05d}.png"
    image.save(directory / name)
    return {"index": index, "prediction": name, **dataset.sources(index)}


def result_metrics(prefix: str, metrics: dict, scalars_only: bool = False) -> dict:
    """``{"accuracy": ...}`` -> ``{"eval_accuracy": ...}``; lists (per-class values) kept unless ``scalars_only``."""
    return {f"{prefix}_{key}": value for key, value in metrics.items()
            if not (scalars_only and isinstance(value, list))}
