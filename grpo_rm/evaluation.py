"""Evaluation loops (classification top-1, segmentation mIoU) and the ``grpo-rm eval`` entry point."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import gather_object
from PIL import Image
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .config import CONFIG_FILE_NAME, DataArguments, RunConfig
from .files import write_json_atomic
from .metrics import confusion_matrix, segmentation_scores
from .modeling import EncoderWithHead
from .runtime import make_accelerator

logger = logging.getLogger(__name__)


@torch.no_grad()
def evaluate_classifier(
    model: torch.nn.Module, loader: DataLoader, accelerator: Accelerator, description: str = "eval",
    show_progress: bool = True, predictions_dir: Optional[Path] = None,
) -> dict[str, float]:
    """Top-1 accuracy and cross-entropy (whatever the training objective) over a whole split.

    With ``predictions_dir``, ``predictions.json`` lists the label and prediction of every example in order.
    """
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    count = 0
    saved: list[dict] = []
    bar = tqdm(loader, desc=description, leave=False, disable=not (show_progress and accelerator.is_local_main_process))
    for pixel_values, labels in bar:
        with accelerator.autocast():
            logits = model(pixel_values)
        logits, labels = accelerator.gather_for_metrics((logits.float(), labels))
        predictions = logits.argmax(dim=-1)
        correct += (predictions == labels).sum()
        if predictions_dir is not None:  # per-example lists only when they are written
            saved += [{"label": t, "prediction": p} for t, p in zip(labels.tolist(), predictions.tolist())]
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").double()
        count += labels.numel()
    model.train(was_training)
    if count == 0:
        raise ValueError(f"the {description} split is empty")
    if predictions_dir is not None and accelerator.is_main_process:
        write_json_atomic(Path(predictions_dir) / "predictions.json", [{"index": i, **p} for i, p in enumerate(saved)])
    return {"accuracy": float(correct / count), "loss": float(loss_sum / count), "samples": count}


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
        return model(padded[None])[0, :, :height, :width]
    if mode != "slide":
        raise ValueError(f"seg_inference={mode!r} is not 'whole' or 'slide'")
    window = model.preprocessing.image_size
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
            logits[:, top : top + window, left : left + window] += model(crop[None])[0]
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
    from .reporting import voc_colormap

    image = Image.fromarray(prediction.to(torch.uint8).cpu().numpy())
    image.putpalette([channel for color in voc_colormap(256) for channel in color])
    name = f"{index:05d}.png"
    image.save(directory / name)
    return {"index": index, "prediction": name, **dataset.sources(index)}


def visualize_runs(run_dirs: Sequence[str], dataset_name: Optional[str], output_dir: str, num_images: int = 4,
                   split: str = "test", labels: Optional[Sequence[str]] = None) -> Path:
    """Write ``predictions.png``: input, ground truth and each run's prediction for the first images of a split."""
    from .data.segmentation import SegmentationDataset, load_segmentation_splits
    from .data.transforms import SegmentationEvalTransform
    from .reporting import prediction_panel

    models = [EncoderWithHead.from_pretrained(run) for run in run_dirs]
    for run, model in zip(run_dirs, models):
        if model.task != "segmentation":
            raise ValueError(f"{run} is a {model.task} model; visualize shows segmentation predictions")
        if model.class_names != models[0].class_names:
            raise ValueError(f"{run} and {run_dirs[0]} were trained on different classes")
    data_args = _run_config(run_dirs[0]).data
    if dataset_name is not None and not same_dataset(dataset_name, data_args.dataset_name):
        data_args = DataArguments(dataset_name=dataset_name, ignore_index=data_args.ignore_index)
    splits = load_segmentation_splits(data_args)
    names = labels or [_run_label(run) for run in run_dirs]
    inference = [_run_config(run).evaluation for run in run_dirs]
    raw = SegmentationDataset(getattr(splits, split), splits.image_column, splits.mask_column, len(splits.class_names),
                              lambda image, mask: (image, mask), split, data_args.ignore_index, data_args.reduce_labels)
    count = min(num_images, len(raw))
    images, masks = zip(*(raw[i] for i in range(count)))
    predictions = {}
    with torch.no_grad():
        for name, model, evaluation in zip(names, models, inference):
            model.eval()
            transform = SegmentationEvalTransform(model.preprocessing)
            predictions[name] = []
            for image, mask in zip(images, masks):
                pixels, _ = transform(image, mask)
                logits = predict_segmentation(model, pixels, evaluation.seg_inference, evaluation.slide_stride)
                logits = F.interpolate(logits[None], size=mask.shape, mode="bilinear", align_corners=False)[0]
                predictions[name].append(logits.argmax(dim=0).numpy())
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    return prediction_panel(images, masks, predictions, models[0].class_names, Path(output_dir) / "predictions.png",
                            data_args.ignore_index)


def _run_label(run_dir: str) -> str:
    config = _run_config(run_dir)
    return f"{config.objective.method} ({Path(run_dir).name})"


def eval_loader(dataset: ImageDataset, batch_size: int, num_workers: int) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)


def evaluate_run(
    model_name_or_path: str,
    output_dir: Optional[str] = None,
    dataset_name: Optional[str] = None,
    image_size: Optional[int] = None,
    per_device_eval_batch_size: int = 64,
    mixed_precision: Optional[str] = None,
    use_cpu: bool = False,
    data_overrides: Optional[dict] = None,
    evaluation_overrides: Optional[dict] = None,
) -> dict:
    """Evaluate a saved grpo-rm model on a dataset's test split; writes ``eval_results.json``.

    Data settings the run was trained with (columns, class subset, max_eval_samples,
    data_seed, train_val_split, ignore_index) and its mixed precision are reused unless
    overridden, so the same command reproduces what the run reported.
    """
    from .tasks import build_task, result_metrics  # tasks builds on this module's evaluation loops

    model = EncoderWithHead.from_pretrained(model_name_or_path, image_size=image_size)
    config = _run_config(model_name_or_path)
    data_args = config.data
    if dataset_name is not None and not same_dataset(dataset_name, data_args.dataset_name):
        # A new dataset: the run's column names and class subset belong to the old one.
        # The label conventions (ignore_index, reduce_labels) stay those the model was trained with.
        data_args = DataArguments(dataset_name=dataset_name, data_seed=data_args.data_seed,
                                  ignore_index=data_args.ignore_index, reduce_labels=data_args.reduce_labels)
    for key, value in (data_overrides or {}).items():
        setattr(data_args, key, value)
    for key, value in (evaluation_overrides or {}).items():
        setattr(config.evaluation, key, value)
    config.data = data_args
    config.model.task = model.task
    config.training.per_device_eval_batch_size = per_device_eval_batch_size
    task = build_task(config)
    if task.class_names != model.class_names:
        raise ValueError(
            f"dataset {data_args.dataset_name!r} has classes {task.class_names}, but the model in "
            f"{model_name_or_path} was trained on {model.class_names}"
        )
    accelerator = make_accelerator(use_cpu=use_cpu, mixed_precision=mixed_precision or config.training.mixed_precision)
    preprocessing = model.preprocessing
    model = accelerator.prepare(model)
    task.setup_evaluation(preprocessing, accelerator)
    metrics = task.evaluate(model, "test", accelerator,
                            predictions_dir=Path(output_dir) / "test_predictions" if output_dir else None)
    results = {**result_metrics("eval", metrics), "eval_dataset": data_args.dataset_name,
               "eval_image_size": preprocessing.image_size}
    if output_dir is not None and accelerator.is_main_process:
        write_json_atomic(Path(output_dir) / "eval_results.json", results)
    return results


def same_dataset(first: str, second: str) -> bool:
    """Whether two dataset names denote the same data (``data/x``, ``./data/x/`` and ``/abs/data/x`` do)."""
    paths = [Path(name).expanduser() for name in (first, second)]
    if all(path.exists() for path in paths):
        return paths[0].resolve() == paths[1].resolve()
    return first == second


def _run_config(model_path: str) -> RunConfig:
    config_file = Path(model_path) / CONFIG_FILE_NAME
    return RunConfig.from_yaml(config_file) if config_file.is_file() else RunConfig()
