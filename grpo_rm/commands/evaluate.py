"""``grpo-rm eval``: evaluate a saved run on a dataset's test split, reproducing what it reported.

It reads the run directory through ``RunConfig.from_run_dir`` and its model through
``EncoderWithHead.from_pretrained``, and asks the run's task for everything task-specific.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional

from ..config import (
    DataArguments,
    EvaluationArguments,
    ModelArguments,
    RunConfig,
    TrainingArguments,
    check_values,
    field_options_parser,
)
from ..data import same_dataset
from ..evaluation import result_metrics
from ..files import EVAL_RESULTS_NAME, PREDICTIONS_DIR, write_json_atomic
from ..models import EncoderWithHead
from ..runtime import make_accelerator
from ..tasks import task_class
from .frozen_features import section_values
from . import COMMANDS

HELP = COMMANDS["eval"].help


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


def build_parser() -> argparse.ArgumentParser:
    parents = [
        field_options_parser(ModelArguments, ["model_name_or_path", "image_size", "max_seq_length"],
                             required=["model_name_or_path"],
                             help_overrides={"model_name_or_path": "A grpo-rm run (or best_model) directory."}),
        field_options_parser(DataArguments, ["dataset_name", "max_eval_samples", "image_column_name",
                                             "text_column_names", "label_column_name", "mask_column_name",
                                             "ignore_index", "reduce_labels"],
                             from_run=["dataset_name", "max_eval_samples", "ignore_index", "reduce_labels"],
                             help_overrides={"dataset_name": "Dataset to evaluate on."}),
        field_options_parser(TrainingArguments, ["output_dir", "per_device_eval_batch_size", "use_cpu",
                                                 "mixed_precision"],
                             from_run=["mixed_precision"],
                             help_overrides={"output_dir": "Where eval_results.json goes."}),
        field_options_parser(EvaluationArguments, ["seg_inference", "slide_stride"],
                             from_run=["seg_inference", "slide_stride"],
                             help_overrides={"slide_stride": "Sliding-window stride in pixels."}),
    ]
    return argparse.ArgumentParser(prog="grpo-rm eval", description=HELP, parents=parents)


def main(args: argparse.Namespace) -> None:
    check_values(vars(args), "command line")
    given = {key: value for key, value in vars(args).items() if value is not None}
    results = evaluate_run(
        args.model_name_or_path,
        output_dir=args.output_dir,
        dataset_name=args.dataset_name,
        image_size=args.image_size,
        per_device_eval_batch_size=args.per_device_eval_batch_size,
        mixed_precision=args.mixed_precision,
        use_cpu=args.use_cpu,
        data_overrides={key: value for key, value in section_values(DataArguments, given).items()
                        if key != "dataset_name"},
        evaluation_overrides=section_values(EvaluationArguments, given),
        max_seq_length=args.max_seq_length,
    )
    print(json.dumps(results, indent=2))
