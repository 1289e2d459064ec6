"""Representation quality on frozen features: weighted kNN and softmax regression, per dataset.

Works on any encoder, image or text: a hub id, a ``save_pretrained`` folder or a grpo-rm run folder.
Every result records its protocol (k values, temperature, grid, feature type, image
size, split sizes) next to the numbers.

In a distributed run every process shares the feature extraction, then fits the classifiers on the
same gathered features: the results are the same on every process, and no process waits in a
collective while another computes (a process-group timeout on large data).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional, Sequence

from .config import DataArguments, EvaluationArguments
from .data import same_dataset
from .features import FeatureExtractor
from .files import write_json_atomic
from .probes import accuracy, knn_predict, sweep_softmax_regression
from .runtime import make_accelerator
from .tasks import Task


def knn_evaluation(extractor: FeatureExtractor, task: Task, k_values: Sequence[int], temperature: float) -> dict:
    train = extractor(task, "train")
    test = extractor(task, "test")
    predictions = knn_predict(train.features, train.labels, test.features, len(task.class_names),
                              k_values, temperature)
    return {
        "knn_accuracy": {str(k): accuracy(predictions[k], test.labels) for k in k_values},
        "protocol": {"k": list(k_values), "temperature": temperature, "similarity": "cosine",
                     "train_samples": len(train.labels), "test_samples": len(test.labels), **extractor.protocol(),
                     "feature_files": {"train": str(train.cache_file), "test": str(test.cache_file)}},
    }


def linear_probe_evaluation(extractor: FeatureExtractor, task: Task, learning_rates: Sequence[float],
                            weight_decays: Sequence[float], epochs: int, seed: int = 0) -> dict:
    parts = {name: extractor(task, name) for name in ("train", "validation", "test")}
    sweep = sweep_softmax_regression(*((parts[n].features, parts[n].labels) for n in ("train", "validation", "test")),
                                     num_classes=len(task.class_names), learning_rates=learning_rates,
                                     weight_decays=weight_decays, epochs=epochs, seed=seed)
    return {
        "linear_probe_accuracy": sweep["test_accuracy"],
        "selected": sweep["selected"],
        "grid": sweep["grid"],
        "protocol": {"learning_rates": list(learning_rates), "weight_decays": list(weight_decays), "epochs": epochs,
                     "optimizer": "SGD momentum 0.9, cosine schedule, standardised features",
                     "selection": f"validation top-1 ({task.validation_source})",
                     **{f"{n}_samples": len(p.labels) for n, p in parts.items()}, **extractor.protocol(),
                     "feature_files": {n: str(p.cache_file) for n, p in parts.items()}},
    }


def evaluate_representation(model_name_or_path: str, datasets: Sequence[DataArguments],
                            args: EvaluationArguments, image_size: Optional[int] = None,
                            max_seq_length: Optional[int] = None, batch_size: int = 64,
                            show_progress: bool = True) -> dict[str, dict]:
    """kNN and softmax-regression top-1 of the frozen encoder on each dataset's own label set."""
    extractor = FeatureExtractor(model_name_or_path, args.feature_type, image_size, batch_size, args.feature_cache_dir,
                                 show_progress, max_seq_length)
    results = {}
    for data_args in datasets:
        task = extractor.load_data(data_args)
        knn = knn_evaluation(extractor, task, args.knn_k, args.knn_temperature)
        probe = linear_probe_evaluation(extractor, task, args.probe_learning_rates, args.probe_weight_decays,
                                        args.probe_epochs)
        results[data_args.dataset_name] = {"knn": knn, "linear_probe": probe, "class_names": task.class_names}
    return results


def frozen_feature_command(model_name_or_path: str, data_args: DataArguments, protocol: str,
                           args: EvaluationArguments, output_dir: Optional[str] = None, batch_size: int = 64,
                           image_size: Optional[int] = None, max_seq_length: Optional[int] = None) -> dict:
    """``grpo-rm knn`` / ``grpo-rm linear-probe``: one protocol on one dataset; writes ``<protocol>_results.json``.

    Under torchrun the processes share the feature extraction.
    """
    accelerator = make_accelerator()  # forms torchrun's process group, also on a machine without accelerator
    extractor = FeatureExtractor(model_name_or_path, args.feature_type, image_size, batch_size, args.feature_cache_dir,
                                 max_seq_length=max_seq_length)
    task = extractor.load_data(data_args)
    if protocol == "knn":
        results = knn_evaluation(extractor, task, args.knn_k, args.knn_temperature)
    elif protocol == "linear_probe":
        results = linear_probe_evaluation(extractor, task, args.probe_learning_rates, args.probe_weight_decays,
                                          args.probe_epochs)
    else:
        raise ValueError(f"protocol={protocol!r} is not 'knn' or 'linear_probe'")
    results = {"model_name_or_path": model_name_or_path, "dataset_name": data_args.dataset_name, **results}
    if output_dir and accelerator.is_main_process:
        write_json_atomic(Path(output_dir) / f"{protocol}_results.json", results)
    return results


def out_of_distribution_data(run_data: DataArguments, dataset_names: Sequence[str]) -> list[DataArguments]:
    """Data arguments for other datasets: the run's own for its dataset; others keep only its sampling limits."""
    inherited = {key: getattr(run_data, key) for key in ("data_seed", "train_val_split", "max_train_samples",
                                                         "max_eval_samples", "dataloader_num_workers")}
    return [dataclasses.replace(run_data) if same_dataset(name, run_data.dataset_name)
            else DataArguments(dataset_name=name, **inherited) for name in dataset_names]
