"""``grpo-rm visualize``: the runs' predictions side by side (segmentation: the paper's Figure 2)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

from ..models import read_head_config
from ..tasks import task_class
from . import COMMANDS

HELP = COMMANDS["visualize"].help


def visualize_runs(run_dirs: Sequence[str], dataset_name: Optional[str], output_dir: str, num_images: int = 4,
                   split: str = "test", labels: Optional[Sequence[str]] = None) -> Path:
    """The runs' task draws their predictions side by side (segmentation: the paper's Figure 2)."""
    tasks = set()
    for run in run_dirs:
        head_config = read_head_config(run)
        if head_config is None:
            raise FileNotFoundError(f"{run} is not a grpo-rm run (it has no head_config.json)")
        tasks.add(task_class(head_config["task"]).name)
    if len(tasks) != 1:
        raise ValueError(f"runs {list(run_dirs)} are of different tasks {sorted(tasks)}")
    return task_class(tasks.pop()).visualize(run_dirs, dataset_name, output_dir, num_images, split, labels)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grpo-rm visualize", description=HELP)
    parser.add_argument("--model_name_or_path", nargs="+", required=True, help="One or more segmentation runs.")
    parser.add_argument("--dataset_name", help="Default: the first run's dataset.")
    parser.add_argument("--num_images", type=int, default=4)
    parser.add_argument("--split", choices=["train", "validation", "test"], default="test")
    parser.add_argument("--labels", nargs="+", help="Column titles, one per run (default: method and folder).")
    parser.add_argument("--output_dir", required=True)
    return parser


def main(args: argparse.Namespace) -> None:
    print(visualize_runs(args.model_name_or_path, args.dataset_name, args.output_dir, args.num_images, args.split,
                         args.labels))
