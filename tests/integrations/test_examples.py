"""The examples run as a user runs them, with a couple of steps: their command lines parse, they train with GRPO-RM,
log its metrics and save a model that loads.

They run as ``__main__`` in this process (``runpy``) rather than in a new interpreter: importing torch, transformers
and sentence-transformers again would take most of the integration tests' time budget, and the script's code path is
the same.
"""

import json
import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, arguments: list[str], monkeypatch) -> None:
    script = EXAMPLES / name
    monkeypatch.setattr(sys, "argv", [str(script), *arguments])
    runpy.run_path(str(script), run_name="__main__")


def test_the_trainer_example_trains_an_image_classifier_offline(tmp_path, monkeypatch):
    # Its defaults: the embedded digits and a DINOv2-architecture stand-in built on the spot.
    run_example("trainer_image_classification.py",
                ["--output_dir", str(tmp_path), "--max_steps", "2", "--max_train_samples", "32",
                 "--max_eval_samples", "16", "--per_device_train_batch_size", "8", "--logging_steps", "1",
                 "--use_cpu", "--epsilon", "0.1"], monkeypatch)
    history = json.loads((tmp_path / "trainer_state.json").read_text())["log_history"]
    assert [entry["step"] for entry in history if "reward" in entry] == [1, 2]
    assert any("eval_accuracy" in entry and "eval_clip_ratio/region_mean" in entry for entry in history)
    assert (tmp_path / "checkpoint-2" / "old_policy.safetensors").is_file()

    from transformers import AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(tmp_path)
    assert model.config.num_labels == 10


def test_the_sentence_transformers_example_trains_and_saves_a_sentence_transformer(tmp_path, monkeypatch, capsys,
                                                                                   tiny_bert, text_parquet):
    pytest.importorskip("sentence_transformers")
    run_example("sentence_transformers_grpo_rm.py",
                ["--model_name_or_path", tiny_bert, "--dataset_name", text_parquet, "--output_dir", str(tmp_path),
                 "--max_steps", "2", "--per_device_train_batch_size", "8", "--use_cpu"], monkeypatch)
    assert "test top-1 of the GRPO-RM head" in capsys.readouterr().out

    from sentence_transformers import SentenceTransformer

    loaded = SentenceTransformer(str(tmp_path / "final"), device="cpu")
    assert loaded.encode(["a goal for the team"]).shape == (1, 16)


def test_the_sentence_transformers_example_defaults_to_the_shared_trec_data():
    # CI lays shared/ beside the repository, as development does.
    pytest.importorskip("sentence_transformers")
    module = runpy.run_path(str(EXAMPLES / "sentence_transformers_grpo_rm.py"))
    assert module["DEFAULT_DATASET"] == EXAMPLES.parents[1] / "shared" / "data" / "trec-parquet"
