"""Names of the files a run directory holds, and crash-safe writes: a file is either its old version
or its complete new one."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

# A run directory (and best_model/ inside it).
CONFIG_FILE_NAME = "run_config.yaml"
HEAD_WEIGHTS_NAME = "head.safetensors"
HEAD_CONFIG_NAME = "head_config.json"
PREPROCESSOR_FILE_NAME = "preprocessor_config.json"
BEST_MODEL_DIR = "best_model"
METRICS_LOG_NAME = "metrics.jsonl"
PREDICTIONS_DIR = "test_predictions"
PREDICTIONS_NAME = "predictions.json"  # classification: label and prediction per example
PREDICTIONS_INDEX_NAME = "index.json"  # segmentation: each prediction PNG's image and mask
# Resumable checkpoints: checkpoint-<step>/ with accelerate's save_state and these files.
CHECKPOINT_PREFIX = "checkpoint-"
TRAINER_STATE_NAME = "trainer_state.json"
SCHEDULER_STATE_NAME = "scheduler.json"
OLD_POLICY_NAME = "old_policy.safetensors"
REFERENCE_POLICY_NAME = "reference_policy.safetensors"
POLICY_FILE_NAMES = {"old_policy": OLD_POLICY_NAME, "reference_policy": REFERENCE_POLICY_NAME}
ALL_RESULTS_NAME = "all_results.json"
TRAIN_RESULTS_NAME = "train_results.json"
EVAL_RESULTS_NAME = "eval_results.json"
REPRESENTATION_RESULTS_NAME = "representation_results.json"
MODEL_CARD_NAME = "README.md"
TENSORBOARD_DIR = "tensorboard"
# A WiSE-FT model (grpo-rm wise-ft): a run directory whose encoder mixes the pretrained and fine-tuned weights, and
# this file with the mixing weight and the two sources.
WISE_FT_NAME = "wise_ft.json"
# grpo-rm wise-ft: OUT/alpha-<alpha>/ (in a comparison, <run>/wise-ft/alpha-<alpha>/)
WISE_FT_ALPHA_PREFIX = "alpha-"
WISE_FT_RUNS_DIR = "wise-ft"
# grpo-rm knn / linear-probe: <protocol>_results.json
FROZEN_FEATURE_RESULTS_NAMES = {"knn": "knn_results.json", "linear_probe": "linear_probe_results.json"}
# grpo-rm visualize
PREDICTION_PANEL_NAME = "predictions.png"
# grpo-rm demo (images): the stand-in encoder before and after its pretraining
DEMO_STANDIN_DIR = "standin-init"
DEMO_PRETRAIN_DIR = "pretrain"
# A comparison's output directory (grpo-rm compare, grpo-rm demo): one run directory per row and seed under runs/.
COMPARISON_RUNS_DIR = "runs"
COMPARISON_JSON_NAME = "comparison.json"
COMPARISON_MARKDOWN_NAME = "comparison.md"
REPORT_HTML_NAME = "report.html"
CURVES_FIGURE_NAME = "curves.png"
GRID_FIGURE_NAME = "grid.png"
# How compare's rows were launched: launch/<row>-seed<N>/ holds each row's run_config.yaml and log.txt
COMPARISON_LAUNCH_DIR = "launch"
LAUNCH_LOG_NAME = "log.txt"
SUBMITIT_JOBS_NAME = "jobs.json"  # row config file -> submitit job id
FRONTIER_FIGURE_NAME = "frontier.png"
# sentence-transformers' on-disk contract for a text encoder and its pooling.
SENTENCE_TRANSFORMERS_MODULES_NAME = "modules.json"
SENTENCE_BERT_CONFIG_NAME = "sentence_bert_config.json"
POOLING_DIR = "1_Pooling"


def write_text_atomic(path: str | Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def write_json_atomic(path: str | Path, data: Any) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
