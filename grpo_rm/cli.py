"""The ``grpo-rm`` command: parses arguments and calls the library."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Optional, Sequence

from .config import parse_run_config

COMMANDS = {
    "train": "post-train an encoder with GRPO-RM or cross-entropy",
    "eval": "evaluate a saved run on a dataset's test split",
    "demo": "GRPO-RM vs cross-entropy on the embedded digits, offline (a small stand-in for DINOv2)",
}


def _train(argv: Sequence[str]) -> None:
    from .training import train

    results = train(parse_run_config(argv))
    print(json.dumps({k: results[k] for k in ("eval_accuracy", "best_validation_accuracy", "train_runtime")}, indent=2))


def _eval(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="grpo-rm eval", description=COMMANDS["eval"])
    parser.add_argument("--model_name_or_path", required=True, help="A grpo-rm run (or best_model) directory.")
    parser.add_argument("--dataset_name", help="Dataset to evaluate on (default: the run's).")
    parser.add_argument("--output_dir", help="Where eval_results.json goes.")
    parser.add_argument("--image_size", type=int, help="Input size (default: the run's).")
    parser.add_argument("--per_device_eval_batch_size", type=int, default=64)
    parser.add_argument("--mixed_precision", choices=["no", "fp16", "bf16"], default="no")
    parser.add_argument("--use_cpu", action="store_true", help="Run on CPU even when a GPU is available.")
    parser.add_argument("--max_eval_samples", type=int, help="Default: the run's.")
    parser.add_argument("--image_column_name")
    parser.add_argument("--label_column_name")
    args = parser.parse_args(argv)
    from .evaluation import evaluate_run

    overrides = {
        key: getattr(args, key)
        for key in ("max_eval_samples", "image_column_name", "label_column_name")
        if getattr(args, key) is not None
    }
    results = evaluate_run(
        args.model_name_or_path,
        output_dir=args.output_dir,
        dataset_name=args.dataset_name,
        image_size=args.image_size,
        per_device_eval_batch_size=args.per_device_eval_batch_size,
        mixed_precision=args.mixed_precision,
        use_cpu=args.use_cpu,
        data_overrides=overrides,
    )
    print(json.dumps(results, indent=2))


def _demo(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="grpo-rm demo", description=COMMANDS["demo"])
    parser.add_argument("--output_dir", default="demo_output")
    parser.add_argument("--num_train_epochs", type=int, default=10, help="Post-training epochs per method.")
    parser.add_argument("--pretrain_epochs", type=int, default=30, help="Epochs of the stand-in's pretraining.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite_output_dir", action="store_true")
    args = parser.parse_args(argv)
    from .demo import run_demo

    run_demo(args.output_dir, args.num_train_epochs, args.pretrain_epochs, args.seed, args.overwrite_output_dir)


def _quiet_libraries() -> None:
    """Keep one progress bar (ours) on screen; the libraries' own bars and chatter drown it."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    for noisy in ("httpx", "urllib3", "filelock", "datasets", "fsspec"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        lines = [f"  {name:<6} {text}" for name, text in COMMANDS.items()]
        print("usage: grpo-rm {train,eval,demo} [--help] ...\n\ncommands:\n" + "\n".join(lines))
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    _quiet_libraries()
    handler = {"train": _train, "eval": _eval, "demo": _demo}[argv[0]]
    try:
        handler(argv[1:])
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"grpo-rm {argv[0]}: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
