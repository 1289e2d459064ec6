"""Representation quality on frozen features: weighted kNN and softmax regression, per labelled dataset.

Works on any encoder, image or text. Every result records its protocol (k values, temperature,
grid, feature type, image size, split sizes) next to the numbers. Data comes in as ``LabelledData``;
reading a dataset is the tasks' job.

In a distributed run every process shares the feature extraction, then fits the classifiers on the
same gathered features: the results are the same on every process, and no process waits in a
collective while another computes (a process-group timeout on large data).
"""

from __future__ import annotations

from typing import Sequence

from ..config import EvaluationArguments
from .features import FeatureExtractor, LabelledData
from .probes import accuracy, knn_predict, sweep_softmax_regression


def knn_evaluation(extractor: FeatureExtractor, data: LabelledData, k_values: Sequence[int],
                   temperature: float) -> dict:
    train, validation, test = (extractor(data, split) for split in ("train", "validation", "test"))
    predictions = {name: knn_predict(train.features, train.labels, part.features, len(data.class_names), k_values,
                                     temperature)
                   for name, part in (("validation", validation), ("test", test))}
    return {
        "knn_accuracy": {str(k): accuracy(predictions["test"][k], test.labels) for k in k_values},
        # The same classifier on the validation split: what comparisons may select on without reading test.
        "knn_validation_accuracy": {str(k): accuracy(predictions["validation"][k], validation.labels)
                                    for k in k_values},
        "protocol": {"k": list(k_values), "temperature": temperature, "similarity": "cosine",
                     "train_samples": len(train.labels), "test_samples": len(test.labels), **extractor.protocol(),
                     "validation_samples": len(validation.labels),
                     "feature_files": {"train": str(train.cache_file), "validation": str(validation.cache_file),
                                       "test": str(test.cache_file)}},
    }


def linear_probe_evaluation(extractor: FeatureExtractor, data: LabelledData, learning_rates: Sequence[float],
                            weight_decays: Sequence[float], epochs: int, seed: int = 0) -> dict:
    parts = {name: extractor(data, name) for name in ("train", "validation", "test")}
    sweep = sweep_softmax_regression(*((parts[n].features, parts[n].labels) for n in ("train", "validation", "test")),
                                     num_classes=len(data.class_names), learning_rates=learning_rates,
                                     weight_decays=weight_decays, epochs=epochs, seed=seed)
    return {
        "linear_probe_accuracy": sweep["test_accuracy"],
        "selected": sweep["selected"],
        "grid": sweep["grid"],
        "protocol": {"learning_rates": list(learning_rates), "weight_decays": list(weight_decays), "epochs": epochs,
                     "optimizer": "SGD momentum 0.9, cosine schedule, standardised features",
                     "selection": f"validation top-1 ({data.validation_source})",
                     **{f"{n}_samples": len(p.labels) for n, p in parts.items()}, **extractor.protocol(),
                     "feature_files": {n: str(p.cache_file) for n, p in parts.items()}},
    }


def evaluate_representation(extractor: FeatureExtractor, datasets: Sequence[LabelledData],
                            args: EvaluationArguments) -> dict[str, dict]:
    """kNN and softmax-regression top-1 of the frozen encoder on each dataset's own label set."""
    results = {}
    for data in datasets:
        knn = knn_evaluation(extractor, data, args.knn_k, args.knn_temperature)
        probe = linear_probe_evaluation(extractor, data, args.probe_learning_rates, args.probe_weight_decays,
                                        args.probe_epochs)
        results[data.name] = {"knn": knn, "linear_probe": probe, "class_names": data.class_names}
    return results
