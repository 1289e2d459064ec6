"""Representation quality on frozen features: weighted kNN and softmax regression, per dataset.

Works on any encoder: a hub id, a ``save_pretrained`` folder or a grpo-rm run folder.
Every result records its protocol (k values, temperature, grid, feature type, image
size, split sizes) next to the numbers.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

from .config import DataArguments, EvaluationArguments
from .data import ClassificationSplits, load_classification_splits
from .evaluation import same_dataset
from .features import FeatureExtractor
from .probes import accuracy, knn_predict, sweep_softmax_regression


def knn_evaluation(extractor: FeatureExtractor, splits: ClassificationSplits, data_args: DataArguments,
                   k_values: Sequence[int], temperature: float) -> dict:
    train = extractor(splits, "train", data_args)
    test = extractor(splits, "test", data_args)
    predictions = knn_predict(train.features, train.labels, test.features, len(splits.class_names),
                              k_values, temperature)
    return {
        "knn_accuracy": {str(k): accuracy(predictions[k], test.labels) for k in k_values},
        "protocol": {"k": list(k_values), "temperature": temperature, "similarity": "cosine",
                     "train_samples": len(train.labels), "test_samples": len(test.labels), **extractor.protocol(),
                     "feature_files": {"train": str(train.cache_file), "test": str(test.cache_file)}},
    }


def linear_probe_evaluation(extractor: FeatureExtractor, splits: ClassificationSplits, data_args: DataArguments,
                            learning_rates: Sequence[float], weight_decays: Sequence[float], epochs: int,
                            seed: int = 0) -> dict:
    parts = {name: extractor(splits, name, data_args) for name in ("train", "validation", "test")}
    sweep = sweep_softmax_regression(*((parts[n].features, parts[n].labels) for n in ("train", "validation", "test")),
                                     num_classes=len(splits.class_names), learning_rates=learning_rates,
                                     weight_decays=weight_decays, epochs=epochs, seed=seed)
    return {
        "linear_probe_accuracy": sweep["test_accuracy"],
        "selected": sweep["selected"],
        "grid": sweep["grid"],
        "protocol": {"learning_rates": list(learning_rates), "weight_decays": list(weight_decays), "epochs": epochs,
                     "optimizer": "SGD momentum 0.9, cosine schedule, standardised features",
                     "selection": f"validation top-1 ({splits.validation_source})",
                     **{f"{n}_samples": len(p.labels) for n, p in parts.items()}, **extractor.protocol(),
                     "feature_files": {n: str(p.cache_file) for n, p in parts.items()}},
    }


def evaluate_representation(model_name_or_path: str, datasets: Sequence[DataArguments],
                            args: EvaluationArguments, image_size: Optional[int] = None,
                            batch_size: int = 64, show_progress: bool = True) -> dict[str, dict]:
    """kNN and softmax-regression top-1 of the frozen encoder on each dataset's own label set."""
    extractor = FeatureExtractor(model_name_or_path, args.feature_type, image_size, batch_size, args.feature_cache_dir,
                                 show_progress)
    results = {}
    for data_args in datasets:
        splits = load_classification_splits(data_args)
        knn = knn_evaluation(extractor, splits, data_args, args.knn_k, args.knn_temperature)
        probe = linear_probe_evaluation(extractor, splits, data_args, args.probe_learning_rates,
                                        args.probe_weight_decays, args.probe_epochs)
        results[data_args.dataset_name] = {"knn": knn, "linear_probe": probe, "class_names": splits.class_names}
    return results


def out_of_distribution_data(run_data: DataArguments, dataset_names: Sequence[str]) -> list[DataArguments]:
    """Data arguments for other datasets: the run's own for its dataset; others keep only its sampling limits."""
    inherited = {key: getattr(run_data, key) for key in ("data_seed", "train_val_split", "max_train_samples",
                                                         "max_eval_samples", "dataloader_num_workers")}
    return [dataclasses.replace(run_data) if same_dataset(name, run_data.dataset_name)
            else DataArguments(dataset_name=name, **inherited) for name in dataset_names]
