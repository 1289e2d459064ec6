"""The model card (the Hub's ``README.md``) of a saved model directory: metadata the Hub indexes, what was trained
and how, its results, how to load it, and the paper to cite."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, Optional

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from transformers import AutoConfig, PretrainedConfig

from ..config import DataArguments, RunConfig
from ..data.digits import DIGITS_NAME
from ..data.digits_seg import DIGITS_SEG_NAME
from ..files import BEST_MODEL_DIR, MODEL_CARD_NAME, SENTENCE_TRANSFORMERS_MODULES_NAME, write_text_atomic
from ..models.encoders import resolve_model_name
from ..models.modeling import read_head_config

PAPER_URL = "https://arxiv.org/abs/2511.15256"
CITATION = """@article{xu2025grporm,
  title   = {{GRPO-RM}: Fine-Tuning Representation Models via {GRPO}-Driven Reinforcement Learning},
  author  = {Xu, Yanchen and Jiao, Ziheng and Zhang, Hongyuan and Li, Xuelong},
  journal = {arXiv preprint arXiv:2511.15256},
  year    = {2025}
}"""

# Results key (without its split prefix) -> (name in the card, model-index metric type). Losses stay out of the
# model-index: they are not comparable across models.
METRICS = {
    "accuracy": ("top-1 accuracy", "accuracy"),
    "macro_f1": ("macro F1", "f1"),
    "loss": ("cross-entropy", None),
    "mean_iou": ("mean IoU", "mean_iou"),
    "mean_accuracy": ("mean accuracy", "mean_accuracy"),
    "overall_accuracy": ("overall pixel accuracy", "accuracy"),
}
METHOD_NAMES = {"grpo-rm": "GRPO-RM", "ce": "cross-entropy"}
# The objective settings that act under cross-entropy; every other one belongs to GRPO-RM.
CROSS_ENTROPY_SETTINGS = ("label_smoothing",)
EMBEDDED_DATASETS = (DIGITS_NAME, DIGITS_SEG_NAME)
CLASSES_SHOWN = 20


def write_model_cards(output_dir: str | Path, config: RunConfig, results: Mapping[str, Any], model_id: str) -> None:
    """``README.md`` in the run directory (final model, test results) and in ``best_model/`` (its validation
    score). ``model_id`` is the Hub id the loading instructions use; ``results`` is ``all_results.json``."""
    output_dir = Path(output_dir)
    _write_model_card(output_dir, config, results, model_id, subfolder=None)
    if (output_dir / BEST_MODEL_DIR).is_dir():
        _write_model_card(output_dir / BEST_MODEL_DIR, config, results, model_id, subfolder=BEST_MODEL_DIR)


def _write_model_card(directory: Path, config: RunConfig, results: Mapping[str, Any], model_id: str,
                     subfolder: Optional[str]) -> Path:
    head = read_head_config(directory)
    encoder = AutoConfig.from_pretrained(directory)
    sentence_transformers = (directory / SENTENCE_TRANSFORMERS_MODULES_NAME).is_file()
    task = results["task"]
    dataset = _hub_id(config.data.dataset_name, exclude=EMBEDDED_DATASETS)
    rows = _best_model_rows(results) if subfolder else _final_model_rows(results)
    eval_results = [_eval_result(task, config.data, split, key, value) for split, key, value in rows
                    if _model_index_type(key)]
    data = ModelCardData(
        library_name="transformers",
        base_model=_hub_id(resolve_model_name(config.model.model_name_or_path)),
        datasets=[dataset] if dataset else None,
        tags=["grpo-rm", task, *(["sentence-transformers"] if sentence_transformers else [])],
        model_name=model_id if eval_results else None,
        eval_results=eval_results or None,
    )
    body = "\n".join([
        _summary(model_id, config, results, encoder, task, subfolder),
        _training_section(config, results, encoder, head),
        _results_section(rows),
        _usage_section(model_id, subfolder, head["modality"], sentence_transformers),
        _citation_section(),
    ])
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")
    return write_text_atomic(directory / MODEL_CARD_NAME, str(card))


def _hub_id(name: Optional[str], exclude: tuple[str, ...] = ()) -> Optional[str]:
    """``name`` when it names a Hub repository, None for a local path (which means nothing elsewhere)."""
    if not name or name in exclude or Path(name).expanduser().exists():
        return None
    try:
        validate_repo_id(name)
    except HFValidationError:
        return None
    return name


def _public_name(name: str) -> str:
    """A Hub id or an embedded dataset as it is; a local path by its folder name only, so that a card never
    publishes the paths of the machine it was trained on."""
    return name if _hub_id(name) or name in EMBEDDED_DATASETS else Path(name).name


def _described(name: str) -> str:
    public = _public_name(name)
    return f"`{public}`" if public == name else f"a local `{public}`"


def _final_model_rows(results: Mapping[str, Any]) -> list[tuple[str, str, float]]:
    return _metric_rows(results, "eval_", "test") + _metric_rows(results, "validation_", "validation")


def _best_model_rows(results: Mapping[str, Any]) -> list[tuple[str, str, float]]:
    return _metric_rows(results, "best_validation_", "validation")


def _metric_rows(results: Mapping[str, Any], prefix: str, split: str) -> list[tuple[str, str, float]]:
    """(split, metric, value) of the scalar metrics named ``<prefix><metric>``; example counts are not metrics."""
    return [(split, key.removeprefix(prefix), value) for key, value in results.items()
            if key.startswith(prefix) and _is_number(value) and key != f"{prefix}samples"]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _model_index_type(key: str) -> Optional[str]:
    return METRICS.get(key, (key, None))[1]


def _metric_name(key: str) -> str:
    return METRICS.get(key, (key, None))[0]


def _eval_result(task: str, data: DataArguments, split: str, key: str, value: float) -> EvalResult:
    dataset = _public_name(data.dataset_name)
    return EvalResult(task_type=task, dataset_type=dataset, dataset_name=dataset,
                      dataset_config=data.dataset_config_name, dataset_split=split,
                      metric_type=_model_index_type(key), metric_value=value, metric_name=_metric_name(key))


def _summary(model_id: str, config: RunConfig, results: Mapping[str, Any], encoder: PretrainedConfig, task: str,
             subfolder: Optional[str]) -> str:
    method = METHOD_NAMES.get(results["method"], results["method"])
    lines = [
        f"# {model_id}" + (f" ({subfolder})" if subfolder else ""),
        "",
        f"A `{encoder.model_type}` encoder with a head for {task}, post-trained from "
        f"{_described(config.model.model_name_or_path)} on {_described(config.data.dataset_name)} with **{method}** "
        f"using grpo-rm, the library of GRPO-RM ([Xu et al., 2025]({PAPER_URL})). The folder is a `transformers` "
        "checkpoint of the encoder, plus the head (`head.safetensors`, `head_config.json`) and every setting of the "
        "run (`run_config.yaml`).",
    ]
    if subfolder:
        lines += ["", f"This is the model of epoch {results['best_epoch']}, the epoch with the best validation "
                      "score; the parent folder holds the final model."]
    else:
        lines += ["", f"This is the final model; `{BEST_MODEL_DIR}/` holds the model of epoch {results['best_epoch']}, "
                      "the epoch with the best validation score."]
    return "\n".join(lines) + "\n"


def _training_section(config: RunConfig, results: Mapping[str, Any], encoder: PretrainedConfig, head: dict) -> str:
    model, data, objective, training = config.model, config.data, config.objective, config.training
    if model.freeze_backbone:
        trained = "the head only (encoder frozen)"
    elif model.train_last_n_blocks is not None:
        trained = f"the last {model.train_last_n_blocks} blocks and the head"
    else:
        trained = "the whole encoder and the head"
    head_settings = ", ".join(f"{key} `{value}`" for key, value in head.items()
                              if key not in ("task", "modality", "head", "class_names", "hidden_size")
                              and value is not None)
    classes = head["class_names"]
    shown_classes = ", ".join(f"`{name}`" for name in classes[:CLASSES_SHOWN])
    if len(classes) > CLASSES_SHOWN:
        shown_classes += f" … ({len(classes)} in all)"
    head_learning_rate = training.learning_rate if training.head_learning_rate is None else training.head_learning_rate
    method = results["method"]
    settings = CROSS_ENTROPY_SETTINGS if method == "ce" else [
        field.name for field in dataclasses.fields(objective) if field.name not in ("method", *CROSS_ENTROPY_SETTINGS)]
    objective_text = ", ".join(f"{key} `{getattr(objective, key)}`" for key in settings)
    rows = [
        ("encoder", f"`{encoder.model_type}`, {encoder.num_hidden_layers} layers, width {encoder.hidden_size}; "
                    f"trained: {trained}"),
        ("head", f"{head_settings}; classes: {shown_classes}"),
        ("method", f"{METHOD_NAMES.get(method, method)} ({objective_text})"),
        ("data", _described(data.dataset_name)
                 + (f" (configuration `{data.dataset_config_name}`)" if data.dataset_config_name else "")
                 + f"; {results['train_samples']} training examples, {results['eval_samples']} test "
                   f"examples; validation: {results['validation_source']}"),
        ("schedule", f"epochs {results['epoch']:g} ({results['total_steps']} optimizer steps), "
                     f"{training.per_device_train_batch_size} examples per device and step, learning rate "
                     f"{training.learning_rate:g} (head: {head_learning_rate:g}), "
                     f"{training.lr_scheduler_type} schedule with {training.warmup_ratio:g} warmup, weight decay "
                     f"{training.weight_decay:g}, gradient clipping {training.max_grad_norm:g}, mixed precision "
                     f"`{training.mixed_precision}`"),
        ("seeds", f"training {training.seed}, data {data.data_seed}"),
    ]
    table = "\n".join(["| | |", "|---|---|", *(f"| {name} | {text} |" for name, text in rows)])
    return f"## Training\n\n{table}\n"


def _results_section(rows: list[tuple[str, str, float]]) -> str:
    if not rows:
        return ""
    lines = ["## Results", "", "| split | metric | value |", "|---|---|---|"]
    lines += [f"| {split} | {_metric_name(key)} | {value:.4f} |" for split, key, value in rows]
    return "\n".join(lines) + "\n"


def _usage_section(model_id: str, subfolder: Optional[str], modality: str, sentence_transformers: bool) -> str:
    path = f'os.path.join(snapshot_download("{model_id}"), "{subfolder}")' if subfolder \
        else f'snapshot_download("{model_id}")'
    if modality == "text":
        transformers_imports = "AutoModel"
        predict = ['logits = model(**model.processor(["A text to classify."]))']
    else:
        transformers_imports = "AutoImageProcessor, AutoModel"
        predict = ["processor = AutoImageProcessor.from_pretrained(path)",
                   'pixel_values = processor([Image.open("image.jpg")], return_tensors="pt")["pixel_values"]',
                   "logits = model(pixel_values=pixel_values)"]
    code = [
        *(["import os", ""] if subfolder else []),
        "from huggingface_hub import snapshot_download",
        *(["from PIL import Image"] if modality != "text" else []),
        f"from transformers import {transformers_imports}",
        "",
        "from grpo_rm import EncoderWithHead  # pip install grpo-rm",
        "",
        f"path = {path}  # or the local folder",
        "encoder = AutoModel.from_pretrained(path)  # the post-trained encoder alone",
        "model = EncoderWithHead.from_pretrained(path).eval()  # encoder and trained head",
        *predict,
        "# logits: one per class along dim 1, the classes named in model.class_names",
    ]
    text = ["## How to use", "", "```python", *code, "```"]
    if sentence_transformers:
        text += ["", "With `sentence-transformers` (embeddings pooled as the head pools them):", "",
                 "```python", "from sentence_transformers import SentenceTransformer", "",
                 'embeddings = SentenceTransformer(path).encode(["A sentence to embed."])', "```"]
    return "\n".join(text) + "\n"


def _citation_section() -> str:
    return f"## Citation\n\n```bibtex\n{CITATION}\n```\n"
