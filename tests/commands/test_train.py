"""`grpo-rm train` end to end: what the run leaves (results, models, representation results), in one process and
in two (the session's torchrun launch, tests/conftest.py::two_process_runs), reproduced by `grpo-rm eval`."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from grpo_rm.cli import main
from grpo_rm.commands.train import run_training
from grpo_rm.config import RunConfig
from grpo_rm.data import other_dataset_arguments
from grpo_rm.representation import FeatureExtractor, evaluate_representation
from grpo_rm.tasks import labelled_data
from tests.training.test_loop import tiny_config

TRAIN = ["--per_device_train_batch_size", "8", "--num_train_epochs", "4", "--disable_tqdm", "--report_to", "none",
         "--image_size", "16", "--random_resized_crop_scale", "0.8", "1.0", "--warmup_ratio", "0"]


@pytest.mark.parametrize("method", ["ce", "grpo-rm"])
def test_train_then_eval_on_imagefolder(tmp_path, tiny_dinov2, imagefolder, method):
    run = tmp_path / "run"
    code = main(["train", "--method", method, "--model_name_or_path", tiny_dinov2, "--dataset_name", imagefolder,
                 "--output_dir", str(run), "--learning_rate", "3e-3", "--head_learning_rate", "3e-2", *TRAIN])
    assert code == 0
    reported = json.loads((run / "all_results.json").read_text())
    # Three colour classes are separable: both objectives must beat chance (1/3) clearly.
    assert reported["eval_accuracy"] >= 0.6, reported
    for name in ("train_results.json", "eval_results.json", "model.safetensors", "head.safetensors", "README.md",
                 "run_config.yaml", "metrics.jsonl", "best_model/head.safetensors"):
        assert (run / name).is_file(), name
    train_results = json.loads((run / "train_results.json").read_text())
    assert train_results == {key: reported[key] for key in train_results}
    assert main(["eval", "--model_name_or_path", str(run), "--dataset_name", imagefolder,
                 "--output_dir", str(tmp_path / "eval")]) == 0
    evaluated = json.loads((tmp_path / "eval" / "eval_results.json").read_text())
    assert evaluated["eval_accuracy"] == reported["eval_accuracy"]


def test_train_with_eval_datasets_reports_each_dataset(tmp_path, tiny_dinov2, imagefolder):
    config = tiny_config(tiny_dinov2, tmp_path / "run", max_train_steps=2, eval_datasets=["digits", imagefolder],
                         knn_k=[3], probe_epochs=3, feature_cache_dir=str(tmp_path / "cache"))
    results = run_training(config)
    assert set(results["representation"]) == {"digits", imagefolder}
    detail = json.loads((tmp_path / "run" / "representation_results.json").read_text())
    assert detail[imagefolder]["class_names"] == ["blue", "green", "red"]
    assert detail["digits"]["knn"]["protocol"]["test_samples"] == 24  # the run's max_eval_samples carries over
    knn = {k: results["representation"][imagefolder]["knn_accuracy"][k] for k in ("3",)}
    assert knn == {"3": detail[imagefolder]["knn"]["knn_accuracy"]["3"]}


def test_two_process_training_matches_eval(two_process_runs, tmp_path):
    run = two_process_runs["image"]
    reported = json.loads((run / "all_results.json").read_text())
    assert reported["eval_samples"] == 25  # gather_for_metrics drops the padding of the uneven last batch
    assert reported["train_samples_per_second"] > 0 and reported["total_steps"] == 4
    assert main(["eval", "--model_name_or_path", str(run), "--output_dir", str(tmp_path / "eval")]) == 0
    evaluated = json.loads((tmp_path / "eval" / "eval_results.json").read_text())
    assert evaluated["eval_accuracy"] == reported["eval_accuracy"]


def test_two_process_representation_matches_one_process(two_process_runs, tmp_path):
    """Both processes extract a share of the features of the model in memory; one process alone, reading the
    saved run, computes the same numbers and the same cache files."""
    run = two_process_runs["image"]
    config = RunConfig.from_run_dir(run)
    (dataset,) = [name for name in config.evaluation.eval_datasets if name != "digits"]
    reported = json.loads((run / "representation_results.json").read_text())[dataset]
    evaluation = dataclasses.replace(config.evaluation, feature_cache_dir=str(tmp_path / "cache-1"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each of the two processes: CPU kernels round differently with more threads
    try:
        extractor = FeatureExtractor.from_pretrained(str(run), image_size=config.model.image_size,
                                                     cache_dir=evaluation.feature_cache_dir, show_progress=False)
        datasets = [labelled_data(extractor.modality, data_args, extractor.processor, batch_size=4)
                    for data_args in other_dataset_arguments(config.data, evaluation.eval_datasets)]
        alone = evaluate_representation(extractor, datasets, evaluation)
    finally:
        torch.set_num_threads(threads)
    alone = json.loads(json.dumps(alone[dataset]))  # tuples to lists, as in the file

    assert reported["knn"]["protocol"]["test_samples"] == 18  # no example gathered twice
    files = {}
    for protocol in ("knn", "linear_probe"):
        files.update(reported[protocol]["protocol"].pop("feature_files"))
        alone[protocol]["protocol"].pop("feature_files")
    assert reported == alone
    for name, path in files.items():  # the same cache key: same weights, data and preprocessing
        assert (tmp_path / "cache-1" / Path(path).name).read_bytes() == Path(path).read_bytes(), name
