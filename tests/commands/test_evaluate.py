import json

import pytest

from grpo_rm.commands.evaluate import evaluate_run
from grpo_rm.commands.train import run_training
from tests.training.test_loop import tiny_config


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_dinov2):
    run = tmp_path_factory.mktemp("run")
    run_training(tiny_config(tiny_dinov2, run, keep_classes=["3", "1", "4"], max_eval_samples=30,
                             load_best_model_at_end=True))
    return run


def test_eval_reproduces_reported_accuracy(trained_run, tmp_path):
    reported = json.loads((trained_run / "all_results.json").read_text())
    results = evaluate_run(str(trained_run), output_dir=str(tmp_path), dataset_name="digits")
    assert results["eval_accuracy"] == reported["eval_accuracy"]
    assert results["eval_loss"] == pytest.approx(reported["eval_loss"], rel=1e-5)
    assert results["eval_samples"] == 30
    assert json.loads((tmp_path / "eval_results.json").read_text())["eval_accuracy"] == reported["eval_accuracy"]
    # The run reports the checkpoint validation chose (load_best_model_at_end): best_model/ evaluates the same.
    best = evaluate_run(str(trained_run / "best_model"))
    assert best["eval_accuracy"] == reported["eval_accuracy"] and best["eval_loss"] == results["eval_loss"]


def test_eval_on_dataset_with_other_classes_is_refused(trained_run, imagefolder):
    with pytest.raises(ValueError, match=r"has classes \['blue', 'green', 'red'\].*trained on \['3', '1', '4'\]"):
        evaluate_run(str(trained_run), dataset_name=imagefolder)


def test_eval_recognises_the_same_folder_written_differently(tmp_path_factory, tiny_dinov2, imagefolder):
    run = tmp_path_factory.mktemp("run-folder")
    reported = run_training(tiny_config(tiny_dinov2, run, dataset_name=imagefolder, max_eval_samples=10))
    results = evaluate_run(str(run), dataset_name=imagefolder + "/")
    assert results["eval_samples"] == 10 and results["eval_accuracy"] == reported["eval_accuracy"]


def test_eval_in_another_precision_after_training_in_the_same_process(trained_run):
    reported = json.loads((trained_run / "all_results.json").read_text())
    results = evaluate_run(str(trained_run), mixed_precision="bf16")
    # bf16 autocast ran (the loss moved) and changed it only by bf16's rounding (8 bits of mantissa: ~0.4 % per
    # operation, a few percent through the network), not by a mix-up of weights or data.
    assert results["eval_loss"] != reported["eval_loss"]
    assert results["eval_loss"] == pytest.approx(reported["eval_loss"], rel=0.05)
    assert abs(results["eval_accuracy"] - reported["eval_accuracy"]) <= 2 / 30


def test_classification_predictions_file_matches_accuracy(trained_run):
    predictions = json.loads((trained_run / "test_predictions" / "predictions.json").read_text())
    reported = json.loads((trained_run / "all_results.json").read_text())
    assert len(predictions) == reported["eval_samples"]
    correct = sum(p["label"] == p["prediction"] for p in predictions)
    assert correct / len(predictions) == pytest.approx(reported["eval_accuracy"])
