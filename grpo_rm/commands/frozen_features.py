"""What ``knn``, ``linear-probe`` and ``train`` share: reading datasets for an encoder's frozen features and
running the representation protocols on them (``grpo_rm.representation``)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Optional, Sequence

from accelerate import PartialState

from ..config import (
    DataArguments,
    EvaluationArguments,
    ModelArguments,
    RunConfig,
    TrainingArguments,
    check_values,
    field_options_parser,
)
from ..data import other_dataset_arguments
from ..files import FROZEN_FEATURE_RESULTS_NAMES, write_json_atomic
from ..models import EncoderWithHead
from ..representation import FeatureExtractor, evaluate_representation, knn_evaluation, linear_probe_evaluation
from ..runtime import make_accelerator
from ..tasks import labelled_data

PROTOCOLS = {"knn": knn_evaluation, "linear_probe": linear_probe_evaluation}


def evaluate_model_representation(model: EncoderWithHead, config: RunConfig) -> dict:
    """Frozen-feature kNN and softmax regression of a trained model's encoder, in memory, on ``eval_datasets``.

    Every process takes part: each extracts its share of the features in the run's process group (no process
    waits idle in a collective while another computes), and each then fits the same classifiers on the same
    gathered features, to the same results.
    """
    if not config.evaluation.eval_datasets:
        return {}
    args = config.evaluation
    extractor = FeatureExtractor.for_model(model, str(Path(config.training.output_dir).resolve()), args.feature_type,
                                           args.feature_cache_dir, show_progress=not config.training.disable_tqdm)
    try:
        datasets = [labelled_data(extractor.modality, data_args, extractor.processor,
                                  config.training.per_device_eval_batch_size)
                    for data_args in other_dataset_arguments(config.data, args.eval_datasets)]
        return evaluate_representation(extractor, datasets, args)
    finally:
        extractor.restore_mode()


def representation_summary(representation: dict) -> dict:
    """What ``all_results.json`` keeps of ``representation_results.json``: each dataset's kNN top-1 (per k) and
    softmax-regression top-1 on its test split, and both on its validation split (what comparisons select on)."""
    return {dataset: {"knn_accuracy": result["knn"]["knn_accuracy"],
                      "linear_probe_accuracy": result["linear_probe"]["linear_probe_accuracy"],
                      "knn_validation_accuracy": result["knn"]["knn_validation_accuracy"],
                      "linear_probe_validation_accuracy": result["linear_probe"]["selected"]["validation_accuracy"]}
            for dataset, result in representation.items()}


def evaluate_frozen_features(model_name_or_path: str, data_args: DataArguments, protocol: str,
                             args: EvaluationArguments, output_dir: Optional[str] = None, batch_size: int = 64,
                             image_size: Optional[int] = None, max_seq_length: Optional[int] = None) -> dict:
    """``grpo-rm knn`` / ``grpo-rm linear-probe``: one protocol on one dataset; writes ``<protocol>_results.json``.

    Under torchrun the processes share the feature extraction.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol={protocol!r} is not one of {list(PROTOCOLS)}")
    make_accelerator()  # forms torchrun's process group, also on a machine without accelerator
    extractor = FeatureExtractor.from_pretrained(model_name_or_path, args.feature_type, image_size, max_seq_length,
                                                 args.feature_cache_dir)
    data = labelled_data(extractor.modality, data_args, extractor.processor, batch_size)
    if protocol == "knn":
        results = knn_evaluation(extractor, data, args.knn_k, args.knn_temperature)
    else:
        results = linear_probe_evaluation(extractor, data, args.probe_learning_rates, args.probe_weight_decays,
                                          args.probe_epochs)
    results = {"model_name_or_path": model_name_or_path, "dataset_name": data_args.dataset_name, **results}
    if output_dir and PartialState().is_main_process:
        write_json_atomic(Path(output_dir) / FROZEN_FEATURE_RESULTS_NAMES[protocol], results)
    return results


def frozen_feature_parser(command: str, description: str, evaluation_fields: Sequence[str],
                          aliases: dict[str, Sequence[str]]) -> argparse.ArgumentParser:
    parents = [
        field_options_parser(ModelArguments, ["model_name_or_path", "image_size", "max_seq_length"],
                             required=["model_name_or_path"],
                             help_overrides={"model_name_or_path": "Hub id, save_pretrained folder, grpo-rm run, "
                                                                   "or an alias (minilm)."}),
        field_options_parser(DataArguments, ["dataset_name", "dataset_config_name", "image_column_name",
                                             "text_column_names", "label_column_name", "max_train_samples",
                                             "max_eval_samples", "train_val_split", "data_seed"],
                             required=["dataset_name"]),
        field_options_parser(TrainingArguments, ["output_dir", "per_device_eval_batch_size"],
                             help_overrides={"output_dir": "Where the JSON results go."}),
        field_options_parser(EvaluationArguments, ["feature_type", "feature_cache_dir", *evaluation_fields],
                             aliases=aliases),
    ]
    return argparse.ArgumentParser(prog=f"grpo-rm {command}", description=description, parents=parents)


def run_frozen_feature_command(args: argparse.Namespace, protocol: str) -> None:
    values = vars(args)
    check_values(values, "command line")
    data_args = DataArguments(**section_values(DataArguments, values))
    evaluation_args = EvaluationArguments(**section_values(EvaluationArguments, values))
    results = evaluate_frozen_features(args.model_name_or_path, data_args, protocol, evaluation_args,
                                       args.output_dir, args.per_device_eval_batch_size, args.image_size,
                                       args.max_seq_length)
    print(json.dumps(results, indent=2))


def section_values(section: type, values: dict) -> dict:
    """The entries of ``values`` that are fields of ``section``."""
    names = {f.name for f in dataclasses.fields(section)}
    return {key: value for key, value in values.items() if key in names}
