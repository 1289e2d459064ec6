"""Text classification end to end: `grpo-rm train --task text-classification` on tiny local encoders and data."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from grpo_rm.cli import main
from grpo_rm.config import DataArguments, RunConfig
from grpo_rm.data import load_text_classification_splits
from grpo_rm.models import EncoderWithHead, load_encoder
from grpo_rm.representation.probes import knn_predict
from grpo_rm.tasks import build_task

TEXT = ["--task", "text-classification", "--report_to", "none", "--disable_tqdm", "--warmup_ratio", "0",
        "--per_device_train_batch_size", "16", "--logging_steps", "1"]


def train_text(tmp_path, model, dataset, method, *extra):
    run = tmp_path / method
    assert main(["train", "--method", method, "--model_name_or_path", model, "--dataset_name", dataset,
                 "--output_dir", str(run), "--num_train_epochs", "6", "--learning_rate", "3e-3",
                 "--head_learning_rate", "3e-2", *TEXT, *extra]) == 0
    return run, json.loads((run / "all_results.json").read_text())


def mean_pooled(model_dir, texts):
    """An independent sentence embedding: AutoModel's tokens, averaged over the attention mask by hand."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir).eval()
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return (hidden * mask).sum(1) / mask.sum(1)


@pytest.mark.parametrize("method", ["ce", "grpo-rm"])
def test_both_methods_learn_topics_and_eval_reproduces(tmp_path, tiny_bert, text_parquet, method):
    run, reported = train_text(tmp_path, tiny_bert, text_parquet, method, "--pooling", "mean")
    # Three topics with disjoint vocabularies: both objectives must beat chance (1/3) clearly.
    assert reported["eval_accuracy"] >= 0.6, reported
    assert 0 < reported["eval_macro_f1"] <= 1 and reported["task"] == "text-classification"
    assert main(["eval", "--model_name_or_path", str(run), "--output_dir", str(tmp_path / "eval")]) == 0
    evaluated = json.loads((tmp_path / "eval" / "eval_results.json").read_text())
    assert evaluated["eval_accuracy"] == reported["eval_accuracy"]
    assert evaluated["eval_macro_f1"] == reported["eval_macro_f1"]


def test_run_directory_loads_with_transformers_and_sentence_transformers(tmp_path, tiny_bert, text_parquet):
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    run, _ = train_text(tmp_path, tiny_bert, text_parquet, "grpo-rm", "--pooling", "mean", "--max_train_steps", "2")
    assert type(AutoModel.from_pretrained(run)).__name__ == "BertModel"
    assert AutoTokenizer.from_pretrained(run)("goal team")["input_ids"][1] != 1  # a known word, not [UNK]
    texts = ["the team scored a goal", "fresh bread and soup"]
    sentence_model = SentenceTransformer(str(run), device="cpu")
    torch.testing.assert_close(torch.as_tensor(sentence_model.encode(texts)), mean_pooled(run, texts),
                               rtol=1e-4, atol=1e-5)
    # The same vector the trained head reads.
    model = EncoderWithHead.from_pretrained(run).eval()
    inputs = model.processor(texts)
    with torch.no_grad():
        expected_logits = model.head.layers(torch.as_tensor(sentence_model.encode(texts)))
        torch.testing.assert_close(model(**inputs), expected_logits, rtol=1e-4, atol=1e-5)
    assert json.loads((run / "sentence_bert_config.json").read_text())["max_seq_length"] == 64


def test_default_pooling_comes_from_the_sentence_transformers_config(tmp_path, tiny_bert, text_parquet):
    checkpoint = tmp_path / "st-model"
    shutil.copytree(tiny_bert, checkpoint)
    (checkpoint / "1_Pooling").mkdir()
    (checkpoint / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 16, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": False,
         "pooling_mode_max_tokens": True}))
    (checkpoint / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (checkpoint / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 12}))
    assert load_encoder(str(checkpoint)).default_pooling == "max"
    assert load_encoder(tiny_bert).default_pooling == "cls"  # a plain transformers checkpoint
    run, _ = train_text(tmp_path, str(checkpoint), text_parquet, "ce", "--max_train_steps", "1")
    head = json.loads((run / "head_config.json").read_text())
    assert head["pooling"] == "max" and head["modality"] == "text"
    assert json.loads((run / "1_Pooling" / "config.json").read_text())["pooling_mode_max_tokens"] is True
    assert EncoderWithHead.from_pretrained(run).processor.max_seq_length == 12


def test_second_architecture_from_csv_files(tmp_path, tiny_distilbert, text_csv):
    run, reported = train_text(tmp_path, tiny_distilbert, text_csv, "grpo-rm", "--max_train_steps", "3")
    assert reported["total_steps"] == 3
    assert json.loads((run / "head_config.json").read_text())["class_names"] == ["food", "sports", "tech"]
    assert type(EncoderWithHead.from_pretrained(run).encoder.model).__name__ == "DistilBertModel"


def test_sentence_pairs_are_tokenized_as_pairs(tmp_path, tiny_bert, text_pairs):
    config = RunConfig.from_dict({"task": "text-classification", "model_name_or_path": tiny_bert,
                                  "dataset_name": text_pairs, "text_column_names": ["premise", "hypothesis"]})
    task = build_task(config)
    assert task.class_names == ["same", "different"]
    model = task.build_model()
    batch = task.collate(model.processor)([task.dataset("train", model.processor)[i] for i in range(4)])
    separators = (batch["inputs"]["input_ids"] == model.processor.tokenizer.sep_token_id).sum(dim=1)
    assert separators.tolist() == [2, 2, 2, 2]  # [CLS] a [SEP] b [SEP]
    assert batch["inputs"]["token_type_ids"].max() == 1
    run, results = train_text(tmp_path, tiny_bert, text_pairs, "grpo-rm", "--max_train_steps", "2",
                              "--text_column_names", "premise", "hypothesis")
    assert results["total_steps"] == 2


def test_dynamic_padding_and_length_grouped_batches(tiny_bert, text_parquet):
    config = RunConfig.from_dict({"task": "text-classification", "model_name_or_path": tiny_bert,
                                  "dataset_name": text_parquet, "per_device_train_batch_size": 4,
                                  "group_by_length": True})
    task = build_task(config)
    model = task.build_model()
    loader = task.train_loader(model.processor)
    batches = list(loader)
    assert sum(len(b["labels"]) for b in batches) == len(task.splits.train)
    for batch in batches:  # padded to the batch's own longest text, not to max_seq_length
        lengths = batch["inputs"]["attention_mask"].sum(dim=1)
        assert batch["inputs"]["input_ids"].shape[1] == lengths.max() < model.processor.max_seq_length


def test_text_task_refuses_a_vision_encoder(tmp_path, tiny_dinov2, text_parquet, capsys):
    assert main(["train", "--task", "text-classification", "--model_name_or_path", tiny_dinov2,
                 "--dataset_name", text_parquet, "--output_dir", str(tmp_path / "r")]) == 1
    assert "needs a text encoder" in capsys.readouterr().err
    assert not (tmp_path / "r" / "all_results.json").exists()


def test_text_columns_are_found_or_named(tmp_path, text_parquet):
    splits = load_text_classification_splits(DataArguments(dataset_name=text_parquet))
    assert splits.input_columns == ["text"] and splits.class_names == ["sports", "food", "tech"]
    with pytest.raises(ValueError, match="text column 'body' not found"):
        load_text_classification_splits(DataArguments(dataset_name=text_parquet, text_column_names=["body"]))
    with pytest.raises(ValueError, match="'label' of .* cannot be both an input and the label"):
        load_text_classification_splits(DataArguments(dataset_name=text_parquet, text_column_names=["label"]))
    numbers = tmp_path / "numbers.csv"
    numbers.write_text("text,label\n" + "\n".join(f"{i},{'ab'[i % 2]}" for i in range(10)) + "\n")
    with pytest.raises(ValueError, match="text column 'text' of .* holds .* not strings"):
        load_text_classification_splits(DataArguments(dataset_name=str(numbers)))
    single = tmp_path / "one.csv"
    single.write_text("sentence,label\n" + "\n".join(f"row {i},{'ab'[i % 2]}" for i in range(20)) + "\n")
    splits = load_text_classification_splits(DataArguments(dataset_name=str(single)))
    assert splits.input_columns == ["sentence"] and splits.class_names == ["a", "b"]
    assert sum(splits.sizes().values()) == 20  # one file: test and validation carved from its rows


def test_knn_linear_probe_and_compare_on_text(tmp_path, tiny_bert, text_parquet, capsys):
    for command in ("knn", "linear-probe"):
        extra = ["--k", "3"] if command == "knn" else ["--epochs", "3"]
        assert main([command, "--model_name_or_path", tiny_bert, "--dataset_name", text_parquet,
                     "--output_dir", str(tmp_path / command), "--feature_cache_dir", str(tmp_path / "cache"),
                     *extra]) == 0
    knn = json.loads((tmp_path / "knn" / "knn_results.json").read_text())
    assert knn["protocol"]["feature_type"] == "cls" and knn["protocol"]["max_seq_length"] == 64
    # Recomputed from the cached features the result names, with the project's kNN and an independent count.
    stored = {name: load_file(path) for name, path in knn["protocol"]["feature_files"].items()}
    predictions = knn_predict(stored["train"]["features"], stored["train"]["labels"], stored["test"]["features"],
                              3, [3])[3]
    assert knn["knn_accuracy"]["3"] == pytest.approx((predictions == stored["test"]["labels"]).double().mean().item())
    probe = json.loads((tmp_path / "linear-probe" / "linear_probe_results.json").read_text())
    assert probe["protocol"]["train_samples"] + probe["protocol"]["validation_samples"] == 60
    assert main(["compare", "--methods", "frozen", "ce", "grpo-rm", "--model_name_or_path", tiny_bert,
                 "--dataset_name", text_parquet, "--output_dir", str(tmp_path / "cmp"), "--max_train_steps", "2",
                 "--knn_k", "3", "--probe_epochs", "2", "--feature_cache_dir", str(tmp_path / "cache"), *TEXT]) == 0
    table = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "top-1 (own head)" in table and "kNN top-1 (k=3)" in table
    for row in ("frozen", "ce", "grpo-rm"):
        assert f"| {row} |" in table


def test_length_grouped_order_is_a_function_of_the_epoch(tiny_bert, text_parquet):
    config = RunConfig.from_dict({"task": "text-classification", "model_name_or_path": tiny_bert,
                                  "dataset_name": text_parquet, "per_device_train_batch_size": 4,
                                  "group_by_length": True})
    task = build_task(config)
    sampler = task.train_loader(task.build_model().processor).sampler
    orders = {}
    for epoch in (0, 1, 0):
        sampler.set_epoch(epoch)
        orders.setdefault(epoch, []).append(list(sampler))
    assert orders[0][0] == orders[0][1]  # the same epoch again (a resume): the same order
    assert orders[0][0] != orders[1][0] and sorted(orders[1][0]) == list(range(len(task.splits.train)))


def test_text_run_resumes_bitwise(tmp_path, tiny_bert, text_parquet, monkeypatch):
    from grpo_rm.commands.train import run_training
    from grpo_rm.training import steps

    def run(output_dir, **extra):
        values = {"task": "text-classification", "model_name_or_path": tiny_bert, "dataset_name": text_parquet,
                  "output_dir": str(output_dir), "per_device_train_batch_size": 8, "num_train_epochs": 2,
                  "group_by_length": True, "checkpointing_steps": 3, "disable_tqdm": True, "report_to": "none",
                  **extra}
        return run_training(RunConfig.from_dict(values))

    run(tmp_path / "reference")
    original, calls = steps.training_step, []

    def killed(*args, **kwargs):
        calls.append(1)
        if len(calls) == 8:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(steps, "training_step", killed)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "run")
    monkeypatch.undo()
    run(tmp_path / "run", resume_from_checkpoint="latest")
    assert (tmp_path / "run" / "model.safetensors").read_bytes() == \
        (tmp_path / "reference" / "model.safetensors").read_bytes()
