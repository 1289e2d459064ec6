"""Evaluate a classifier on a split, and the ``grpo-rm eval`` entry point."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .config import CONFIG_FILE_NAME, DataArguments, RunConfig
from .data import EvalTransform, ImageDataset, load_classification_splits
from .files import write_json_atomic
from .modeling import ImageClassifier
from .runtime import make_accelerator

logger = logging.getLogger(__name__)


@torch.no_grad()
def evaluate_classifier(
    model: torch.nn.Module, loader: DataLoader, accelerator: Accelerator, description: str = "eval",
    show_progress: bool = True,
) -> dict[str, float]:
    """Top-1 accuracy and cross-entropy (whatever the training objective) over a whole split."""
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    count = 0
    bar = tqdm(loader, desc=description, leave=False, disable=not (show_progress and accelerator.is_local_main_process))
    for pixel_values, labels in bar:
        with accelerator.autocast():
            logits = model(pixel_values)
        logits, labels = accelerator.gather_for_metrics((logits.float(), labels))
        correct += (logits.argmax(dim=-1) == labels).sum()
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").double()
        count += labels.numel()
    model.train(was_training)
    if count == 0:
        raise ValueError(f"the {description} split is empty")
    return {"accuracy": float(correct / count), "loss": float(loss_sum / count), "samples": count}


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
) -> dict[str, float]:
    """Evaluate a saved grpo-rm model on a dataset's test split; writes ``eval_results.json``.

    Data settings the run was trained with (columns, class subset, max_eval_samples,
    data_seed, train_val_split) and its mixed precision are reused unless overridden,
    so the same command reproduces the accuracy the run reported.
    """
    model = ImageClassifier.from_pretrained(model_name_or_path, image_size=image_size)
    run_config = _run_config(model_name_or_path)
    data_args = run_config.data
    if mixed_precision is None:
        mixed_precision = run_config.training.mixed_precision
    if dataset_name is not None and not same_dataset(dataset_name, data_args.dataset_name):
        # A new dataset: the run's column names and class subset belong to the old one.
        data_args = DataArguments(dataset_name=dataset_name, data_seed=data_args.data_seed)
    for key, value in (data_overrides or {}).items():
        setattr(data_args, key, value)
    splits = load_classification_splits(data_args)
    if splits.class_names != model.class_names:
        raise ValueError(
            f"dataset {data_args.dataset_name!r} has classes {splits.class_names}, but the model in "
            f"{model_name_or_path} was trained on {model.class_names}"
        )
    accelerator = make_accelerator(use_cpu=use_cpu, mixed_precision=mixed_precision)
    dataset = ImageDataset(splits.test, splits.image_column, splits.label_column, EvalTransform(model.preprocessing), "test")
    loader = eval_loader(dataset, per_device_eval_batch_size, data_args.dataloader_num_workers)
    model, loader = accelerator.prepare(model, loader)
    metrics = evaluate_classifier(model, loader, accelerator, description="test")
    results = {
        "eval_accuracy": metrics["accuracy"],
        "eval_loss": metrics["loss"],
        "eval_samples": metrics["samples"],
        "eval_dataset": data_args.dataset_name,
        "eval_image_size": accelerator.unwrap_model(model).preprocessing.image_size,
    }
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
