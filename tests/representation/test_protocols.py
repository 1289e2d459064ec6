import pytest

from grpo_rm.config import DataArguments
from grpo_rm.representation.features import FeatureExtractor
from grpo_rm.representation.probes import knn_predict
from grpo_rm.representation import knn_evaluation, linear_probe_evaluation
from tests.representation.test_features import read


def test_knn_evaluation_matches_direct_computation_on_cached_features(tmp_path, tiny_dinov2, imagefolder):
    extractor = FeatureExtractor.from_pretrained(tiny_dinov2, cache_dir=tmp_path)
    data = read(extractor, DataArguments(dataset_name=imagefolder))
    result = knn_evaluation(extractor, data, [1, 5], 0.1)
    train_set, test_set = extractor(data, "train"), extractor(data, "test")
    for k in (1, 5):
        predictions = knn_predict(train_set.features, train_set.labels, test_set.features, 3, [k], 0.1)[k]
        assert result["knn_accuracy"][str(k)] == pytest.approx((predictions == test_set.labels).float().mean().item())
    assert result["protocol"]["k"] == [1, 5] and result["protocol"]["temperature"] == 0.1
    assert result["protocol"]["feature_type"] == "cls" and result["protocol"]["image_size"] == 16


def test_linear_probe_records_grid_and_selection(tmp_path, tiny_dinov2, imagefolder):
    extractor = FeatureExtractor.from_pretrained(tiny_dinov2, cache_dir=tmp_path)
    result = linear_probe_evaluation(extractor, read(extractor, DataArguments(dataset_name=imagefolder)), [0.01, 0.1],
                                     [0.0], epochs=5)
    assert len(result["grid"]) == 2
    assert result["linear_probe_accuracy"] == result["selected"]["test_accuracy"]
    assert result["protocol"]["learning_rates"] == [0.01, 0.1] and "validation" in result["protocol"]["selection"]


def test_results_name_the_cached_feature_files(tmp_path, tiny_dinov2, imagefolder):
    from safetensors.torch import load_file

    extractor = FeatureExtractor.from_pretrained(tiny_dinov2, cache_dir=tmp_path)
    result = knn_evaluation(extractor, read(extractor, DataArguments(dataset_name=imagefolder)), [3], 0.07)
    stored = {name: load_file(path) for name, path in result["protocol"]["feature_files"].items()}
    predictions = knn_predict(stored["train"]["features"], stored["train"]["labels"], stored["test"]["features"], 3, [3])
    assert result["knn_accuracy"]["3"] == pytest.approx((predictions[3] == stored["test"]["labels"]).float().mean().item())
