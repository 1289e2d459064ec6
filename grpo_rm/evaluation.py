"""Evaluation loops: classification (top-1, macro-F1, cross-entropy) and segmentation (mIoU), across processes.

Both take batches as the tasks make them (``{"inputs": {...}, "labels": ...}``) or, for
segmentation, images of any size with their masks (batched here); neither asks which modality it runs.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import gather_object
from PIL import Image
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from .files import PREDICTIONS_INDEX_NAME, PREDICTIONS_NAME, write_json_atomic
from .objective import at_least_float32
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
        logits, labels = accelerator.gather_for_metrics((at_least_float32(logits), batch["labels"]))
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
        write_json_atomic(Path(predictions_dir) / PREDICTIONS_NAME, [{"index": i, **p} for i, p in enumerate(saved)])
    accuracy = float(confusion.diagonal().sum().double() / count)
    return {"accuracy": accuracy, "macro_f1": macro_f1(confusion.cpu()), "loss": float(loss_sum / count),
            "samples": count}


class _Image:
    """One image being predicted: its padded size, and its logits summed over its tiles as they come back."""

    def __init__(self, key, height: int, width: int, canvas: tuple[int, int], tiles: int):
        self.key, self.height, self.width, self.canvas = key, height, width, canvas
        self.tiles = self.waiting = tiles
        self.logits: Optional[torch.Tensor] = None
        self.counts: Optional[torch.Tensor] = None

    def add(self, top: int, left: int, output: torch.Tensor) -> Optional[torch.Tensor]:
        """Add one tile's logits [C, h, w]; the image's logits [C, H, W] once it has them all, else None."""
        if self.tiles == 1:  # the tile is the whole padded image: nothing to average
            return output[:, : self.height, : self.width]
        if self.logits is None:  # made at the first tile: only images with tiles in flight hold device memory
            self.logits = torch.zeros(output.shape[0], *self.canvas, device=output.device)
            self.counts = torch.zeros(1, *self.canvas, device=output.device)
        rows, columns = slice(top, top + output.shape[1]), slice(left, left + output.shape[2])
        self.logits[:, rows, columns] += output
        self.counts[:, rows, columns] += 1
        self.waiting -= 1
        return (self.logits / self.counts)[:, : self.height, : self.width] if self.waiting == 0 else None


def predict_segmentations(
    model, images: Iterable[tuple[Any, torch.Tensor]], mode: str = "whole", stride: Optional[int] = None,
    batch_size: int = 1, autocast: Callable[[], AbstractContextManager] = nullcontext,
) -> Iterator[tuple[Any, torch.Tensor]]:
    """``(key, logits [C, H, W])`` for each ``(key, pixel_values [3, H, W])`` of any size, as each image completes
    (not necessarily in input order).

    ``whole``: pad right/bottom to a multiple of the patch size, predict, crop back.
    ``slide``: average the logits of ``image_size`` windows taken every ``stride`` pixels.

    What goes through the model is a tile: the padded image, or one window. Only tiles of one size share a
    batch, since a ViT attends over its whole input and padding a tile further would change its logits;
    a batch holds up to ``batch_size`` tiles, of one image or of several, and an image's windows are
    summed in the same order whatever the batches. Tiles wait for batch-mates of their size while at most
    ``2 * batch_size`` are pending (bounded memory); past that the largest group goes through as it is.
    ``batch_size=1`` is one tile at a time.
    """
    patch, window = model.encoder.patch_size, model.processor.image_size
    if mode == "slide":
        stride = stride or max(patch, window * 2 // 3)
        if not 0 < stride <= window:
            raise ValueError(f"slide_stride {stride} must be in (0, image_size={window}], or some pixels get no window")
    elif mode != "whole":
        raise ValueError(f"seg_inference={mode!r} is not 'whole' or 'slide'")
    device = next(model.parameters()).device
    pending: dict[tuple[int, int], list] = {}  # tile size -> tiles (image, top, left, pixels) waiting for a batch

    def run(size: tuple[int, int]) -> Iterator[tuple[Any, torch.Tensor]]:
        tiles = pending.pop(size)
        with autocast():
            outputs = model(pixel_values=torch.stack([pixels for *_, pixels in tiles]).to(device))
        for (image, top, left, _), output in zip(tiles, outputs):
            logits = image.add(top, left, output)
            if logits is not None:
                yield image.key, logits

    for key, pixel_values in images:
        height, width = pixel_values.shape[-2:]
        if mode == "whole":
            padded = F.pad(pixel_values, (0, -width % patch, 0, -height % patch))
            size, corners = tuple(padded.shape[-2:]), [(0, 0)]
        else:
            padded = F.pad(pixel_values, (0, max(0, window - width), 0, max(0, window - height)))
            full_h, full_w = padded.shape[-2:]
            size = (window, window)
            corners = [(top, left) for top in sorted({*range(0, full_h - window + 1, stride), full_h - window})
                       for left in sorted({*range(0, full_w - window + 1, stride), full_w - window})]
        image = _Image(key, height, width, tuple(padded.shape[-2:]), len(corners))
        for top, left in corners:
            group = pending.setdefault(size, [])
            group.append((image, top, left, padded[:, top : top + size[0], left : left + size[1]]))
            if len(group) == batch_size:
                yield from run(size)
        while sum(map(len, pending.values())) > 2 * batch_size:
            yield from run(max(pending, key=lambda waiting: len(pending[waiting])))
    while pending:
        yield from run(next(iter(pending)))


def predict_segmentation(model, pixel_values: torch.Tensor, mode: str = "whole",
                         stride: Optional[int] = None) -> torch.Tensor:
    """Logits [C, H, W] for one normalised image [3, H, W] of any size, one tile at a time
    (``whole`` or ``slide``, as in ``predict_segmentations``)."""
    [(_, logits)] = predict_segmentations(model, [(None, pixel_values)], mode, stride)
    return logits


@torch.no_grad()
def evaluate_segmenter(model, dataset, accelerator: Accelerator, ignore_index: int = 255, mode: str = "whole",
                       stride: Optional[int] = None, description: str = "eval", show_progress: bool = True,
                       predictions_dir: Optional[Path] = None, batch_size: int = 1, num_workers: int = 0) -> dict:
    """mIoU, mAcc, aAcc and per-class IoU from one confusion matrix over the whole split.

    Each process takes its own share of images (no padding duplicates) and predicts them in batches
    of up to ``batch_size`` same-size tiles (``predict_segmentations``: each tile as it is predicted
    alone, up to the rounding of batched kernels), read ahead by ``num_workers`` loader workers.
    Predictions are upsampled to the original mask resolution, and the matrices are summed across processes.
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
        # One sample is one image and its mask: sizes differ, so the loader does not batch them.
        samples = DataLoader(Subset(dataset, indices), batch_size=None, num_workers=num_workers)
        images = (((index, mask), pixel_values) for index, (pixel_values, mask) in zip(indices, samples))
        predictions = predict_segmentations(model, images, mode, stride, batch_size, accelerator.autocast)
        bar = tqdm(predictions, total=len(indices), desc=description, leave=False,
                   disable=not (show_progress and accelerator.is_local_main_process))
        for (index, mask), logits in bar:
            logits = F.interpolate(at_least_float32(logits[None]), size=mask.shape, mode="bilinear", align_corners=False)[0]
            prediction = logits.argmax(dim=0)
            confusion += confusion_matrix(prediction, mask.to(accelerator.device), num_classes, ignore_index)
            if predictions_dir is not None:
                saved.append(_save_prediction(prediction, Path(predictions_dir), index, dataset))
    model.train(was_training)
    confusion = accelerator.reduce(confusion, reduction="sum")
    if predictions_dir is not None:
        entries = sorted(gather_object(saved), key=lambda entry: entry["index"])
        if accelerator.is_main_process:
            write_json_atomic(Path(predictions_dir) / PREDICTIONS_INDEX_NAME, entries)
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
