"""``grpo-rm train``: train one run, then what the run leaves behind.

``grpo_rm.training.train`` trains (and keeps ``best_model/``, checkpoints and the metrics log); this
command then saves the final model, evaluates it on the test split, evaluates its frozen features on
``--eval_datasets`` (the model in memory, not reloaded), writes ``train_results.json``,
``eval_results.json``, ``representation_results.json``, ``all_results.json`` and the model cards,
closes the trackers and pushes the run to the Hub, as HF's example scripts do after ``trainer.train()``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional

from ..config import RunConfig, run_config_from_args, run_config_parser
from ..evaluation import result_metrics
from ..files import (
    ALL_RESULTS_NAME,
    EVAL_RESULTS_NAME,
    PREDICTIONS_DIR,
    REPRESENTATION_RESULTS_NAME,
    TRAIN_RESULTS_NAME,
    write_json_atomic,
)
from ..methods import Method
from ..reporting.hub import hub_model_id, push_run
from ..reporting.model_card import write_model_cards
from ..runtime import finish_trackers
from ..training import TrainOutput, train
from ..training.steps import save_model
from .frozen_features import evaluate_model_representation, representation_summary
from . import COMMANDS

HELP = COMMANDS["train"].help


def run_training(config: RunConfig, method: Optional[Method] = None) -> dict:
    """Train, evaluate and save one run; returns what ``all_results.json`` holds.

    ``method`` replaces the one the config describes, e.g. ``GrpoRmMethod(reward=my_reward_fn)``.
    Raises ``grpo_rm.training.TrainingPreempted`` after SIGTERM / SIGUSR1, once a checkpoint is written.
    """
    trained = train(config, method)
    accelerator, args = trained.accelerator, config.training
    output_dir = Path(args.output_dir)
    save_model(accelerator, trained.prepared_model, output_dir, config)
    test = trained.task.evaluate(trained.prepared_model, "test", accelerator, not args.disable_tqdm,
                                 output_dir / PREDICTIONS_DIR)
    representation = evaluate_model_representation(trained.model, config)
    eval_results, all_results = _results(trained, config, test, representation)
    if accelerator.is_main_process:
        write_json_atomic(output_dir / TRAIN_RESULTS_NAME, trained.metrics)
        write_json_atomic(output_dir / EVAL_RESULTS_NAME, eval_results)
        if representation:
            write_json_atomic(output_dir / REPRESENTATION_RESULTS_NAME, representation)
        write_json_atomic(output_dir / ALL_RESULTS_NAME, all_results)
        write_model_cards(output_dir, config, all_results, hub_model_id(args))
    accelerator.wait_for_everyone()
    finish_trackers(accelerator)
    # The trackers' files are complete now, and no other process waits on this one.
    if args.push_to_hub and accelerator.is_main_process:
        push_run(config, all_results)
    return all_results


def _results(trained: TrainOutput, config: RunConfig, test: dict, representation: dict) -> tuple[dict, dict]:
    """eval_results.json's and all_results.json's contents."""
    state, task = trained.state, trained.task
    eval_results = {"epoch": trained.metrics["epoch"], "task": task.name, **result_metrics("eval", test)}
    all_results = {
        **trained.metrics,
        **eval_results,
        **state.validation_metrics,
        f"best_validation_{task.primary_metric}": state.best_score,
        "best_epoch": state.best_epoch,
        "validation_source": task.validation_source,
    }
    if trained.resumed_from is not None:
        all_results["resumed_from_checkpoint"] = str(trained.resumed_from)
    if representation:
        all_results["representation"] = representation_summary(representation)
    return eval_results, all_results


def build_parser() -> argparse.ArgumentParser:
    return run_config_parser("grpo-rm train", HELP)


def main(args: argparse.Namespace) -> None:
    results = run_training(run_config_from_args(vars(args)))
    summary = {k: v for k, v in results.items()
               if k.startswith(("eval_", "best_validation_", "train_runtime")) and not isinstance(v, list)}
    print(json.dumps(summary, indent=2))
