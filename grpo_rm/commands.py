"""Run-level entry points above the tasks: evaluate a saved run, draw its predictions.

Each reads a run directory through ``RunConfig.from_run_dir`` and its model through
``EncoderWithHead.from_pretrained``, and asks the run's task for everything task-specific.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from .config import DataArguments, RunConfig
from .data import same_dataset
from .evaluation import result_metrics
from .files import EVAL_RESULTS_NAME, PREDICTIONS_DIR, write_json_atomic
from .models import EncoderWithHead, read_head_config
from .runtime import make_accelerator
from .tasks import task_class


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
    max_seq_length: Optional[int] = None,
) -> dict:
    """Evaluate a saved grpo-rm model on a dataset's test split; writes ``eval_results.json``.

    Data settings the run was trained with (columns, class subset, max_eval_samples,
    data_seed, train_val_split, ignore_index) and its mixed precision are reused unless
    overridden, so the same command reproduces what the run reported.
    """
    model = EncoderWithHead.from_pretrained(model_name_or_path, image_size=image_size, max_seq_length=max_seq_length)
    config = RunConfig.from_run_dir(model_name_or_path)
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
    task = task_class(model.task)(config)
    if task.class_names != model.class_names:
        raise ValueError(
            f"dataset {data_args.dataset_name!r} has classes {task.class_names}, but the model in "
            f"{model_name_or_path} was trained on {model.class_names}"
        )
    accelerator = make_accelerator(use_cpu=use_cpu, mixed_precision=mixed_precision or config.training.mixed_precision)
    processor = model.processor
    model = accelerator.prepare(model)
    task.setup_evaluation(processor, accelerator)
    metrics = task.evaluate(model, "test", accelerator,
                            predictions_dir=Path(output_dir) / PREDICTIONS_DIR if output_dir else None)
    results = {**result_metrics("eval", metrics), "eval_dataset": data_args.dataset_name,
               **{f"eval_{key}": getattr(processor, key) for key in ("image_size", "max_seq_length")
                  if hasattr(processor, key)}}
    if output_dir is not None and accelerator.is_main_process:
        write_json_atomic(Path(output_dir) / EVAL_RESULTS_NAME, results)
    return results


def visualize_runs(run_dirs: Sequence[str], dataset_name: Optional[str], output_dir: str, num_images: int = 4,
                   split: str = "test", labels: Optional[Sequence[str]] = None) -> Path:
    """The runs' task draws their predictions side by side (segmentation: the paper's Figure 2)."""
    tasks = set()
    for run in run_dirs:
        head_config = read_head_config(run)
        if head_config is None:
            raise FileNotFoundError(f"{run} is not a grpo-rm run (it has no head_config.json)")
        tasks.add(task_class(head_config["task"]).name)
    if len(tasks) != 1:
        raise ValueError(f"runs {list(run_dirs)} are of different tasks {sorted(tasks)}")
    return task_class(tasks.pop()).visualize(run_dirs, dataset_name, output_dir, num_images, split, labels)
