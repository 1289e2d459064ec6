"""``grpo-rm wise-ft``: WiSE-FT (Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR 2022) of a run:
for each alpha, a run directory ``OUT/alpha-<alpha>/`` whose encoder weights are
(1 - alpha) * pretrained + alpha * fine-tuned, where "pretrained" is the encoder the run started from (its
``run_config.yaml``'s ``model_name_or_path``) and "fine-tuned" is the run's. The folder is named as alpha was
written (``alpha-0``, ``alpha-0.5``, ``alpha-1``), with ``wise_ft.json`` beside the model recording alpha and both
sources. Alpha = 0 is the pretrained encoder and alpha = 1 the run, bit for bit (``models.interpolate_state_dicts``).

The head is the run's fine-tuned head at every alpha. The pretrained encoder has no head for the run's classes (a
hub encoder has none at all), and alpha = 1 must reproduce the run exactly, head included, so ``grpo-rm eval`` of
``alpha-1`` gives the run's ``eval_accuracy``. At alpha < 1 that head reads features it was not trained on:
``grpo-rm eval`` then measures the fine-tuned head on the mixed encoder, while ``grpo-rm knn`` and
``grpo-rm linear-probe`` never read the head.

Each folder also keeps the run's processor (image size and normalisation, or tokenizer and sequence length), its
pooling and its ``run_config.yaml``, so ``grpo-rm eval``, ``knn`` and ``linear-probe`` read it as they read the run;
``alpha-0`` gives the features the pretrained encoder gives under the run's protocol (what a comparison's frozen
row measures its retention with).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
from pathlib import Path
from typing import Optional, Sequence

from accelerate import PartialState

from ..config import ModelArguments, RunConfig, TrainingArguments, check_values, field_options_parser
from ..evaluation import result_metrics
from ..files import ALL_RESULTS_NAME, CONFIG_FILE_NAME, WISE_FT_ALPHA_PREFIX, WISE_FT_NAME, write_json_atomic
from ..models import EncoderWithHead, interpolate_state_dicts, load_encoder
from ..runtime import make_accelerator
from ..tasks import task_class
from . import COMMANDS
from .frozen_features import evaluate_model_representation, representation_summary

HELP = COMMANDS["wise-ft"].help
DEFAULT_ALPHAS = ("0", "0.25", "0.5", "0.75", "1")
# What may follow "alpha-" in a folder name: a plain decimal number, which every filesystem and shell takes as is.
ALPHA_LABEL = re.compile(r"[0-9.eE+-]+")


def alpha_label(alpha: float | str) -> str:
    """The name of alpha's folder after ``alpha-``: a string as written (the command line's ``0.50`` stays
    ``0.50``), a number in its shortest form (``1.0`` -> ``1``, ``0.25`` -> ``0.25``)."""
    if isinstance(alpha, str):
        return alpha
    value = float(alpha)
    return str(int(value)) if value.is_integer() else repr(value)


def parse_alphas(alphas: Sequence[float | str]) -> dict[str, float]:
    """Folder label -> alpha, in the order given; every alpha checked before anything is written."""
    if not alphas:
        raise ValueError("no alphas given: pass --alphas with values in [0, 1], e.g. --alphas 0 0.5 1")
    parsed: dict[str, float] = {}
    for alpha in alphas:
        label = alpha_label(alpha)
        if not ALPHA_LABEL.fullmatch(label):
            raise ValueError(f"alpha {alpha!r} is not a plain decimal number (like 0.25): it names the folder "
                             f"{WISE_FT_ALPHA_PREFIX}<alpha>")
        try:
            value = float(label)
        except ValueError:
            raise ValueError(f"alpha {alpha!r} is not a number; pass values in [0, 1] like 0.25") from None
        if not (math.isfinite(value) and 0 <= value <= 1):
            raise ValueError(f"alpha {label} is outside [0, 1]: WiSE-FT interpolates between the pretrained (0) and "
                             "the fine-tuned (1) weights; extrapolating beyond them is not supported")
        same = [other for other, other_value in parsed.items() if other_value == value]
        if same:
            raise ValueError(f"alphas {same[0]} and {label} are the same value; give each alpha once")
        parsed[label] = value
    return parsed


def write_wise_ft(run_dir: str | Path, alphas: Sequence[float | str], output_dir: str | Path,
                  pretrained_model_name_or_path: Optional[str] = None,
                  overwrite_output_dir: bool = False) -> dict[str, Path]:
    """Write ``output_dir/alpha-<alpha>/`` for each alpha (see the module docstring); returns label -> folder.

    ``pretrained_model_name_or_path`` replaces the run's ``model_name_or_path`` (a run moved to another machine,
    where that path no longer exists). A folder that exists and is not empty is refused unless
    ``overwrite_output_dir``, which replaces it whole (no stale results of an earlier model stay in it).
    """
    run_dir, output_dir = Path(run_dir), Path(output_dir)
    labelled = parse_alphas(alphas)
    targets = {label: output_dir / f"{WISE_FT_ALPHA_PREFIX}{label}" for label in labelled}
    occupied = [str(path) for path in targets.values() if path.is_dir() and any(path.iterdir())]
    if occupied and not overwrite_output_dir:
        raise FileExistsError(f"{', '.join(occupied)} already exist and are not empty; choose another --output_dir, "
                              "or pass --overwrite_output_dir to replace them")

    model = EncoderWithHead.from_pretrained(run_dir)  # a clear error when run_dir is not a grpo-rm run
    config = RunConfig.from_run_dir(run_dir)
    pretrained_source = pretrained_model_name_or_path or _run_starting_point(run_dir, config)
    try:
        pretrained = load_encoder(pretrained_source).state_dict()
    except FileNotFoundError as error:
        if pretrained_model_name_or_path:
            raise
        raise FileNotFoundError(f"{error} (the encoder {run_dir} started from, its {CONFIG_FILE_NAME}'s "
                                "model_name_or_path); pass --pretrained_model_name_or_path where it is now") from error
    # Copies: loading each mix into the model writes into its parameters, which state_dict() returns views of.
    fine_tuned = {name: tensor.detach().clone() for name, tensor in model.encoder.state_dict().items()}
    record = {"pretrained_model_name_or_path": _source_name(pretrained_source),
              "fine_tuned_model_name_or_path": _source_name(str(run_dir)),
              "head": "fine-tuned"}
    for label, alpha in labelled.items():
        mixed = interpolate_state_dicts(pretrained, fine_tuned, alpha, pretrained_source, str(run_dir))
        model.encoder.load_state_dict(mixed)
        target = targets[label]
        if target.exists():  # empty, or occupied and overwrite_output_dir given (checked above)
            shutil.rmtree(target)
        model.save_pretrained(target, run_config=config)
        write_json_atomic(target / WISE_FT_NAME, {"alpha": alpha, **record})
    return targets


def evaluate_wise_ft(folders: dict[str, Path], run_dir: str | Path) -> dict[str, dict]:
    """Each alpha's validation and test metrics and its frozen features on the run's ``eval_datasets``, as
    ``grpo-rm train`` reports a run; written to ``alpha-<alpha>/all_results.json`` (with the fine-tuned run's
    ``train_runtime``: an alpha costs its run's training). Returns label -> those results."""
    results_file = Path(run_dir) / ALL_RESULTS_NAME
    source = json.loads(results_file.read_text()) if results_file.is_file() else {}
    results = {}
    for label, folder in folders.items():
        config = RunConfig.from_run_dir(folder).with_overrides(output_dir=str(folder))
        results[label] = {**evaluate_saved_model(folder, config), "train_runtime": source.get("train_runtime", 0.0),
                          "wise_ft_alpha": json.loads((folder / WISE_FT_NAME).read_text())["alpha"]}
        if PartialState().is_main_process:
            write_json_atomic(folder / ALL_RESULTS_NAME, results[label])
    return results


def evaluate_saved_model(run_dir: Path, config: RunConfig) -> dict:
    """A saved model's validation and test metrics, and its frozen features on ``config``'s ``eval_datasets``, under
    the names ``all_results.json`` uses (``best_validation_<metric>`` is the validation score: the model is the
    checkpoint being selected)."""
    model = EncoderWithHead.from_pretrained(run_dir)
    task = task_class(model.task)(config)
    accelerator = make_accelerator(use_cpu=config.training.use_cpu, mixed_precision=config.training.mixed_precision)
    prepared = accelerator.prepare(model)
    task.setup_evaluation(model.processor, accelerator)
    show = not config.training.disable_tqdm
    validation = task.evaluate(prepared, "validation", accelerator, show)
    test = task.evaluate(prepared, "test", accelerator, show)
    results = {**result_metrics("eval", test), **result_metrics("validation", validation, scalars_only=True),
               f"best_validation_{task.primary_metric}": validation[task.primary_metric], "task": task.name,
               "validation_source": task.validation_source}
    representation = evaluate_model_representation(accelerator.unwrap_model(prepared), config)
    if representation:
        results["representation"] = representation_summary(representation)
    return results


def _run_starting_point(run_dir: Path, config: RunConfig) -> str:
    if not (run_dir / CONFIG_FILE_NAME).is_file() or not config.model.model_name_or_path:
        raise FileNotFoundError(f"{run_dir / CONFIG_FILE_NAME} does not name the encoder the run started from "
                                "(model_name_or_path); pass --pretrained_model_name_or_path")
    return config.model.model_name_or_path


def _source_name(name_or_path: str) -> str:
    """A local folder as an absolute path (the record stays valid wherever it is read); a hub id as it is."""
    path = Path(name_or_path)
    return str(path.resolve()) if path.exists() else name_or_path


def build_parser() -> argparse.ArgumentParser:
    parents = [
        field_options_parser(ModelArguments, ["model_name_or_path"], required=["model_name_or_path"],
                             help_overrides={"model_name_or_path": "The fine-tuned grpo-rm run (or best_model) "
                                                                   "directory."}),
        field_options_parser(TrainingArguments, ["output_dir", "overwrite_output_dir"], required=["output_dir"],
                             help_overrides={"output_dir": "Where the alpha-<alpha>/ run directories go.",
                                             "overwrite_output_dir": "Replace alpha-<alpha>/ folders that already "
                                                                     "exist."}),
    ]
    parser = argparse.ArgumentParser(
        prog="grpo-rm wise-ft", parents=parents,
        description=f"{HELP}. Each alpha-<alpha>/ folder holds the encoder (1 - alpha) * pretrained + alpha * "
                    "fine-tuned with the run's fine-tuned head (the pretrained encoder has no head for these classes, "
                    "and alpha 1 must be the run itself), its processor and run_config.yaml, so grpo-rm eval, knn and "
                    "linear-probe take it; wise_ft.json records alpha and both sources.")
    parser.add_argument("--alphas", nargs="+", default=list(DEFAULT_ALPHAS),
                        help="Weights of the fine-tuned encoder, each in [0, 1] (0: the pretrained encoder, 1: the "
                             "run); each names its folder as written (default: " + " ".join(DEFAULT_ALPHAS) + ").")
    parser.add_argument("--evaluate", action="store_true",
                        help="Also evaluate each alpha as grpo-rm train reports a run: validation and test metrics, "
                             "and frozen features on the run's eval_datasets, in alpha-<alpha>/all_results.json.")
    parser.add_argument("--pretrained_model_name_or_path", "--pretrained-model-name-or-path", default=None,
                        help="The encoder the run started from (default: the run's run_config.yaml "
                             "model_name_or_path); for a run whose starting point has moved.")
    return parser


def main(args: argparse.Namespace) -> None:
    check_values(vars(args), "command line")
    written = write_wise_ft(args.model_name_or_path, args.alphas, args.output_dir,
                            args.pretrained_model_name_or_path, args.overwrite_output_dir)
    if args.evaluate:
        evaluated = evaluate_wise_ft(written, args.model_name_or_path)
        print(json.dumps({label: {key: value for key, value in results.items()
                                  if key.startswith(("eval_accuracy", "eval_mean_iou", "validation_"))
                                  and not isinstance(value, list)}
                          for label, results in evaluated.items()}, indent=2))
    else:
        print(json.dumps({label: str(path) for label, path in written.items()}, indent=2))
