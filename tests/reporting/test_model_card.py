"""Every saved model directory gets a Hub model card: metadata the Hub parses, results, loading instructions,
the citation."""

import json
import shutil

import pytest
from huggingface_hub import ModelCard

from grpo_rm.config import RunConfig
from grpo_rm.reporting.model_card import write_model_cards
from grpo_rm.commands.train import run_training


@pytest.fixture(scope="module")
def image_run(tmp_path_factory, tiny_dinov2):
    run = tmp_path_factory.mktemp("cards") / "dinov2-grpo"
    config = RunConfig.from_dict(dict(model_name_or_path=tiny_dinov2, dataset_name="digits", output_dir=str(run),
                                      max_train_samples=32, max_eval_samples=16, per_device_train_batch_size=16,
                                      num_train_epochs=2, disable_tqdm=True, report_to="none"))
    results = run_training(config)
    return run, config, results


def metrics(card: ModelCard) -> dict[tuple[str, str], float]:
    return {(result.dataset_split, result.metric_type): result.metric_value for result in card.data.eval_results}


def test_the_run_and_best_model_cards_hold_metadata_results_usage_and_citation(image_run):
    run, config, results = image_run
    card = ModelCard.load(run / "README.md")
    assert card.data.library_name == "transformers"
    assert {"grpo-rm", "image-classification"} <= set(card.data.tags) and "sentence-transformers" not in card.data.tags
    assert card.data.base_model is None and card.data.datasets is None  # a local model, the embedded digits
    assert card.data.model_name == "dinov2-grpo"
    assert metrics(card) == {("test", "accuracy"): results["eval_accuracy"], ("test", "f1"): results["eval_macro_f1"],
                             ("validation", "accuracy"): results["validation_accuracy"],
                             ("validation", "f1"): results["validation_macro_f1"]}
    assert {result.task_type for result in card.data.eval_results} == {"image-classification"}
    text = card.text
    for expected in ("GRPO-RM", "epsilon `0.2`", "reward `accuracy+uniformity`", "seeds | training 42, data 0",
                     f"{results['eval_accuracy']:.4f}", 'snapshot_download("dinov2-grpo")',
                     "AutoModel.from_pretrained(path)", "EncoderWithHead.from_pretrained(path)",
                     "AutoImageProcessor", "arXiv:2511.15256", "@article{xu2025grporm",
                     "Xu, Yanchen and Jiao, Ziheng and Zhang, Hongyuan and Li, Xuelong"):
        assert expected in text, expected
    assert str(run.parent) not in str(card) and config.model.model_name_or_path not in str(card)  # no local paths

    best = ModelCard.load(run / "best_model" / "README.md")
    assert metrics(best) == {("validation", "accuracy"): results["best_validation_accuracy"]}
    assert f"epoch {results['best_epoch']}" in best.text
    assert 'os.path.join(snapshot_download("dinov2-grpo"), "best_model")' in best.text


def test_hub_ids_become_base_model_and_datasets(image_run, tmp_path):
    run, config, results = image_run
    copy = shutil.copytree(run, tmp_path / "copy")
    hub_config = config.with_overrides(model_name_or_path="facebook/dinov2-small", dataset_name="uoft-cs/cifar10")
    write_model_cards(copy, hub_config, results, "me/dinov2-small-grpo")
    card = ModelCard.load(copy / "README.md")
    assert card.data.base_model == "facebook/dinov2-small" and card.data.datasets == ["uoft-cs/cifar10"]
    assert {result.dataset_type for result in card.data.eval_results} == {"uoft-cs/cifar10"}
    assert 'snapshot_download("me/dinov2-small-grpo")' in card.text


def test_a_cross_entropy_text_run_is_carded_as_a_sentence_transformers_model(tmp_path, tiny_bert, text_parquet):
    run = tmp_path / "bert-ce"
    results = run_training(RunConfig.from_dict(dict(
        task="text-classification", method="ce", model_name_or_path=tiny_bert, dataset_name=text_parquet,
        output_dir=str(run), num_train_epochs=1, per_device_train_batch_size=16, disable_tqdm=True,
        report_to="none", label_smoothing=0.1)))
    for directory in (run, run / "best_model"):
        card = ModelCard.load(directory / "README.md")
        assert {"grpo-rm", "text-classification", "sentence-transformers"} <= set(card.data.tags)
        assert "SentenceTransformer(path).encode" in card.text and "model.processor([" in card.text
    card = ModelCard.load(run / "README.md")
    assert "cross-entropy (label_smoothing `0.1`)" in card.text and "epsilon" not in card.text
    assert metrics(card)[("test", "accuracy")] == json.loads((run / "all_results.json").read_text())["eval_accuracy"]
    assert results["eval_accuracy"] == metrics(card)[("test", "accuracy")]
