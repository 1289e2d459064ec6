"""Post-train an image classifier with GRPO-RM in a transformers ``Trainer`` script.

This is an ordinary Trainer script, in the manner of transformers' ``run_image_classification.py``: a model from
``AutoModelForImageClassification``, a dataset transformed on the fly by the model's image processor, a collator and
``compute_metrics``. The lines that make it GRPO-RM are marked ``# GRPO-RM``: the trainer class, and its optional
``grpo_rm_args`` (the objective's keys, parsed from the command line like the Trainer's own arguments).

It runs offline as it is: the data default to the ``digits`` images embedded in grpo-rm, and without
``--model_name_or_path`` the model is a small DINOv2-architecture encoder initialised at random, built on the spot
(no download). A random encoder is no representation model to post-train, so its accuracy stays low (about 0.2 after
the default three epochs, as with cross-entropy's ~0.23): the offline default shows the mechanics. For numbers that
mean something pass a pretrained encoder: ``--model_name_or_path facebook/dinov2-small`` where the hub is reachable,
or the run directory of a ``grpo-rm train`` run (its encoder loads as a transformers checkpoint). ``--dataset_name``
takes an ImageFolder tree or a folder of parquet files (``image`` and ``label`` columns; ``--image_column`` and
``--label_column`` name others)::

    python examples/trainer_image_classification.py --output_dir runs/trainer-digits
    python examples/trainer_image_classification.py --output_dir runs/trainer-digits --resume_from_checkpoint \\
        runs/trainer-digits/checkpoint-40
    torchrun --nproc_per_node 2 examples/trainer_image_classification.py --output_dir runs/trainer-digits-ddp
    python examples/trainer_image_classification.py --help   # every TrainingArguments and GrpoRmArguments key
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional

import datasets
import numpy as np
import torch
from transformers import AutoImageProcessor, AutoModelForImageClassification, HfArgumentParser, TrainingArguments

from grpo_rm.commands.demo import build_standin_encoder
from grpo_rm.data import load_digits_dataset
from grpo_rm.integrations import GrpoRmArguments, GrpoRmTrainer  # GRPO-RM


@dataclass
class ScriptArguments:
    model_name_or_path: Optional[str] = field(
        default=None, metadata={"help": "A hub id or save_pretrained folder; default: a small DINOv2 built offline."})
    dataset_name: str = field(
        default="digits", metadata={"help": "'digits' (embedded), a local ImageFolder / parquet folder, or a hub id."})
    image_column: str = field(default="image", metadata={"help": "The column holding the images."})
    label_column: str = field(default="label", metadata={"help": "The column holding the class labels."})
    max_train_samples: Optional[int] = field(default=None, metadata={"help": "Train on the first N examples only."})
    max_eval_samples: Optional[int] = field(default=None, metadata={"help": "Evaluate on the first N examples only."})


def load_data(name: str) -> datasets.DatasetDict:
    return load_digits_dataset() if name == "digits" else datasets.load_dataset(name)


def main() -> None:
    parser = HfArgumentParser((ScriptArguments, GrpoRmArguments, TrainingArguments))  # GRPO-RM: GrpoRmArguments
    # A short schedule for the stand-in encoder on digits; any of these can be given on the command line.
    parser.set_defaults(output_dir="runs/trainer-image-classification", learning_rate=1e-3, num_train_epochs=3,
                        per_device_train_batch_size=64, per_device_eval_batch_size=128, warmup_steps=0.05,
                        logging_steps=10, eval_strategy="epoch", save_strategy="epoch", save_total_limit=2,
                        remove_unused_columns=False, report_to="none")
    script_args, grpo_rm_args, training_args = parser.parse_args_into_dataclasses()

    model_name = script_args.model_name_or_path
    if model_name is None:
        model_name = os.path.join(training_args.output_dir, "standin-dinov2")
        with training_args.main_process_first():  # one process builds it, the others read it
            if not os.path.isdir(model_name):
                build_standin_encoder(model_name, seed=training_args.seed)

    data = load_data(script_args.dataset_name)
    train_split = data["train"]
    eval_split = data["validation"] if "validation" in data else data["test"]
    if script_args.max_train_samples is not None:
        train_split = train_split.select(range(min(script_args.max_train_samples, len(train_split))))
    if script_args.max_eval_samples is not None:
        eval_split = eval_split.select(range(min(script_args.max_eval_samples, len(eval_split))))
    labels = train_split.features[script_args.label_column].names

    image_processor = AutoImageProcessor.from_pretrained(model_name)
    model = AutoModelForImageClassification.from_pretrained(
        model_name, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={name: index for index, name in enumerate(labels)}, ignore_mismatched_sizes=True)

    def transform(batch: dict) -> dict:
        images = [image.convert("RGB") for image in batch[script_args.image_column]]
        return {"pixel_values": image_processor(images, return_tensors="pt")["pixel_values"],
                "labels": batch[script_args.label_column]}

    def collate(examples: list[dict]) -> dict:
        return {"pixel_values": torch.stack([example["pixel_values"] for example in examples]),
                "labels": torch.tensor([example["labels"] for example in examples])}

    def compute_metrics(prediction) -> dict:
        return {"accuracy": float((np.argmax(prediction.predictions, axis=-1) == prediction.label_ids).mean())}

    trainer = GrpoRmTrainer(  # GRPO-RM: the class (transformers.Trainer otherwise) ...
        model=model,
        args=training_args,
        train_dataset=train_split.with_transform(transform),
        eval_dataset=eval_split.with_transform(transform),
        data_collator=collate,
        processing_class=image_processor,
        compute_metrics=compute_metrics,
        grpo_rm_args=grpo_rm_args,  # GRPO-RM: ... and its settings (default: the paper's)
    )
    result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model()
    trainer.log_metrics("train", result.metrics)
    trainer.save_metrics("train", result.metrics)
    metrics = trainer.evaluate()
    trainer.log_metrics("eval", metrics)
    trainer.save_metrics("eval", metrics)
    trainer.save_state()


if __name__ == "__main__":
    main()
