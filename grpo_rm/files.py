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
ALL_RESULTS_NAME = "all_results.json"
TRAIN_RESULTS_NAME = "train_results.json"
EVAL_RESULTS_NAME = "eval_results.json"
REPRESENTATION_RESULTS_NAME = "representation_results.json"
MODEL_CARD_NAME = "README.md"
TENSORBOARD_DIR = "tensorboard"
# A WiSE-FT model (grpo-rm wise-ft): a run directory whose encoder mixes the pretrained and fine-tuned weights, and
# this file with the mixing weight and the two sources.
WISE_FT_NAME = "wise_ft.json"
# A comparison's output directory (grpo-rm compare, grpo-rm demo): one run directory per row and seed under runs/.
COMPARISON_RUNS_DIR = "runs"
COMPARISON_JSON_NAME = "comparison.json"
COMPARISON_MARKDOWN_NAME = "comparison.md"
REPORT_HTML_NAME = "report.html"
CURVES_FIGURE_NAME = "curves.png"
GRID_FIGURE_NAME = "grid.png"
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
