"""One typed run configuration: dataclasses, readable from YAML, overridable from the CLI.

Keys are flat and unique across sections (as in TRL's ``--config`` files), so the same
name works as a YAML key, a ``--flag`` and a Python attribute: ``learning_rate: 1e-4``
in YAML, ``--learning_rate 1e-4`` on the command line, ``config.training.learning_rate``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Sequence

import yaml
from transformers import HfArgumentParser

from .files import CONFIG_FILE_NAME, write_text_atomic
from .objective import GROUP_WEIGHTINGS, REWARD_PRESETS, SCALE_REWARDS
from .trackers import VALID_REPORT_TO, tracker_names


@dataclass
class ModelArguments:
    model_name_or_path: Optional[str] = field(
        default=None,
        metadata={"help": "Hub id (e.g. facebook/dinov2-small), a save_pretrained directory or a grpo-rm run directory."},
    )
    task: str = field(
        default="image-classification",
        metadata={"help": "image-classification, image-segmentation (alias semantic-segmentation) or text-classification; "
                          "classification and segmentation are aliases of the image tasks."},
    )
    head_type: Literal["linear", "mlp"] = field(default="linear", metadata={"help": "Classification head."})
    pooling: Optional[Literal["cls", "mean", "max", "cls+mean"]] = field(
        default=None,
        metadata={"help": "What the classification head reads: first (class) token, masked mean or max of the tokens "
                          "(patch tokens for images), or cls ++ mean (DINOv2 linear eval). Default: the checkpoint's "
                          "sentence-transformers pooling, else cls."},
    )
    mlp_hidden_dim: Optional[int] = field(default=None, metadata={"help": "MLP head width (default: encoder width)."})
    seg_num_layers: int = field(
        default=1, metadata={"help": "Segmentation head input: patch tokens of the last N layers (4: DINOv2 multi-layer)."}
    )
    seg_batchnorm: bool = field(default=True, metadata={"help": "BatchNorm before the segmentation head's 1x1 conv."})
    image_size: Optional[int] = field(
        default=None, metadata={"help": "Input side length; default: the checkpoint's crop size or config image_size."}
    )
    max_seq_length: Optional[int] = field(
        default=None,
        metadata={"help": "Text: tokens per input after truncation; default: the checkpoint's sentence-transformers "
                          "max_seq_length, else the tokenizer's and position embeddings' limit."},
    )
    freeze_backbone: bool = field(default=False, metadata={"help": "Train the head only."})
    train_last_n_blocks: Optional[int] = field(
        default=None, metadata={"help": "Train only the last N transformer blocks (plus final norm) and the head."}
    )
    ignore_mismatched_sizes: bool = field(
        default=False, metadata={"help": "Start a new head when the checkpoint's head has other classes."}
    )

    def __post_init__(self) -> None:
        self.model_name_or_path = expand_user(self.model_name_or_path)


def expand_user(path: Optional[str]) -> Optional[str]:
    """``~/x`` -> ``/home/me/x`` (YAML files and Python callers get no shell expansion); other names unchanged."""
    return str(Path(path).expanduser()) if path and path.startswith("~") else path


@dataclass
class DataArguments:
    dataset_name: str = field(
        default="digits",
        metadata={"help": "'digits' / 'digits-seg' (embedded), a hub dataset id, an ImageFolder tree, a folder of "
                          "parquet/arrow/csv/json files or one such file, or a save_to_disk folder."},
    )
    dataset_config_name: Optional[str] = field(default=None, metadata={"help": "Hub dataset configuration name."})
    image_column_name: Optional[str] = field(default=None, metadata={"help": "Image column (default: image or img)."})
    text_column_names: Optional[list[str]] = field(
        default=None,
        metadata={"help": "Text column, or two for sentence pairs (NLI-style); default: text, sentence, ... "
                          "(see the README)."},
    )
    label_column_name: Optional[str] = field(default=None, metadata={"help": "Label column (default: label or labels)."})
    mask_column_name: Optional[str] = field(
        default=None, metadata={"help": "Segmentation mask column (default: mask, annotation, label ...)."}
    )
    ignore_index: int = field(default=255, metadata={"help": "Mask value left out of segmentation loss and metrics."})
    reduce_labels: bool = field(
        default=False, metadata={"help": "ADE20K-style masks: 0 becomes ignore_index, other classes shift down by one."}
    )
    seg_scale_range: list[float] = field(
        default_factory=lambda: [0.5, 2.0], metadata={"help": "Segmentation training: random rescale range before the crop."}
    )
    train_val_split: float = field(
        default=0.1, metadata={"help": "Fraction of train held out for validation when the data has no validation split."}
    )
    data_seed: int = field(
        default=0, metadata={"help": "Seed of validation/test carving and sample truncation, fixed across --seed."}
    )
    max_train_samples: Optional[int] = field(default=None, metadata={"help": "Truncate the training set (debugging)."})
    max_eval_samples: Optional[int] = field(default=None, metadata={"help": "Truncate validation and test sets."})
    keep_classes: Optional[list[str]] = field(
        default=None, metadata={"help": "Train and evaluate on these class names only, relabelled in this order."}
    )
    random_resized_crop_scale: list[float] = field(
        default_factory=lambda: [0.08, 1.0], metadata={"help": "Area range of the training random-resized crop."}
    )
    hflip_prob: float = field(default=0.5, metadata={"help": "Probability of a horizontal flip in training."})
    dataloader_num_workers: int = field(default=0, metadata={"help": "DataLoader worker processes."})
    group_by_length: bool = field(
        default=False,
        metadata={"help": "Text: batch examples of similar token length together (less padding; still shuffled)."},
    )
    skip_bad_images: bool = field(
        default=False,
        metadata={"help": "Skip unreadable images (counted in logs and all_results.json) instead of stopping."},
    )

    def __post_init__(self) -> None:
        self.dataset_name = expand_user(self.dataset_name)


# The objective's settings that a preset decides. ``paper`` is METHOD.md's specification and the default;
# the others are the variants docs/method-study.md compares. An explicitly given key overrides its preset.
_PAPER_OBJECTIVE = {
    "epsilon": 0.2,
    "epsilon_high": None,
    "beta": 0.0,
    "reward": "accuracy+uniformity",
    "uniformity_weight": 1.0,
    "scale_rewards": "group",
    "group_weighting": "uniform",
    "old_policy_refresh": "epoch",
}
OBJECTIVE_PRESETS = {
    "paper": _PAPER_OBJECTIVE,
    # DAPO's clip-higher: the ratio of a class with positive advantage may grow to 1.28 before its term stops.
    "clip-higher": {**_PAPER_OBJECTIVE, "epsilon_high": 0.28},
    # Advantage e_y - pi_old, unscaled: at ratio 1 the gradient on the logits is cross-entropy's divided by C,
    # so this is cross-entropy inside the trust region (with Adam the 1/C scale does not matter).
    "unscaled-gap": {**_PAPER_OBJECTIVE, "reward": "probability-gap", "scale_rewards": "none"},
    # Each class term weighted by pi_old(class): the exact expectation of GRPO with one sampled class per query.
    "expected": {**_PAPER_OBJECTIVE, "group_weighting": "old_policy"},
    # A short-lived trust region: refresh every 20 optimizer steps with a tighter clip.
    "step-refresh": {**_PAPER_OBJECTIVE, "epsilon": 0.1, "old_policy_refresh": "20"},
    # KL to the starting model (TRL's former default beta), an explicit anchor against feature drift.
    "anchored": {**_PAPER_OBJECTIVE, "beta": 0.04},
    # Wrong classes punished by how strongly pi_old prefers them to the label (bounded, confidence-aware).
    "margin": {**_PAPER_OBJECTIVE, "reward": "margin"},
}
# The preset the method study supports best (docs/method-study.md): cross-entropy's top-1 within seed noise on
# the image and text tasks studied, with the paper default's retention of the pretrained representation or more.
RECOMMENDED_OBJECTIVE_PRESET = "step-refresh"
OBJECTIVE_PRESET_NAMES = (*OBJECTIVE_PRESETS, "recommended")


def _from_preset(key: str, kind: str) -> str:
    return f"{kind} Default: the objective_preset's (paper: {_PAPER_OBJECTIVE[key]})."


@dataclass
class ObjectiveArguments:
    """The training objective. Keys left unset (None) take the value of ``objective_preset``."""

    method: Literal["grpo-rm", "ce"] = field(default="grpo-rm", metadata={"help": "Training objective."})
    objective_preset: str = field(
        default="paper",
        metadata={"help": f"GRPO-RM settings preset: {', '.join(OBJECTIVE_PRESET_NAMES)} (recommended = "
                          f"{RECOMMENDED_OBJECTIVE_PRESET}); keys given explicitly override the preset's."},
    )
    epsilon: Optional[float] = field(
        default=None,
        metadata={"help": _from_preset("epsilon", "GRPO-RM clip range of the probability ratio (the lower one if "
                                                  "epsilon_high is set).")},
    )
    epsilon_high: Optional[float] = field(
        default=None,
        metadata={"help": "Upper clip range: the ratio is clipped to [1 - epsilon, 1 + epsilon_high] (DAPO's "
                          "clip-higher; DAPO uses 0.28). Default: the preset's, which for paper is epsilon."},
    )
    beta: Optional[float] = field(
        default=None, metadata={"help": _from_preset("beta", "Weight of KL(pi_theta, pi_ref) to the frozen starting model.")}
    )
    reward: Optional[str] = field(
        default=None, metadata={"help": _from_preset("reward", f"Reward preset: {', '.join(REWARD_PRESETS)}.")}
    )
    uniformity_weight: Optional[float] = field(
        default=None,
        metadata={"help": _from_preset("uniformity_weight", "Weight w of the wrong-class penalty of "
                                                            "accuracy+uniformity and margin.")},
    )
    scale_rewards: Optional[str] = field(
        default=None,
        metadata={"help": _from_preset("scale_rewards", f"Advantage scaling: {', '.join(SCALE_REWARDS)} (divide by "
                                                        "the std of each group's, of the whole batch's or no rewards).")},
    )
    group_weighting: Optional[str] = field(
        default=None,
        metadata={"help": _from_preset("group_weighting", f"Weights of a group's class terms: "
                                                          f"{', '.join(GROUP_WEIGHTINGS)} (1/C each, or the old "
                                                          "policy's probability of the class: the expected term of a "
                                                          "class sampled from pi_old).")},
    )
    old_policy_refresh: Optional[str] = field(
        default=None,
        metadata={"help": _from_preset("old_policy_refresh", "Refresh the old policy at each epoch start ('epoch') "
                                                             "or every N optimizer steps.")},
    )
    label_smoothing: float = field(default=0.0, metadata={"help": "Label smoothing of the cross-entropy method."})

    def __post_init__(self) -> None:
        if self.objective_preset not in OBJECTIVE_PRESET_NAMES:
            raise ValueError(f"objective_preset={self.objective_preset!r} is not one of {list(OBJECTIVE_PRESET_NAMES)}")
        for key, value in self.preset_values.items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        if self.reward not in REWARD_PRESETS:
            raise ValueError(f"reward={self.reward!r} is not one of {list(REWARD_PRESETS)}")
        if self.scale_rewards not in SCALE_REWARDS:
            raise ValueError(f"scale_rewards={self.scale_rewards!r} is not one of {list(SCALE_REWARDS)}")
        if self.group_weighting not in GROUP_WEIGHTINGS:
            raise ValueError(f"group_weighting={self.group_weighting!r} is not one of {list(GROUP_WEIGHTINGS)}")
        self.old_policy_refresh = str(self.old_policy_refresh)
        if self.old_policy_refresh != "epoch" and not (
            self.old_policy_refresh.isdigit() and int(self.old_policy_refresh) > 0
        ):
            raise ValueError(f"old_policy_refresh={self.old_policy_refresh!r} must be 'epoch' or a positive integer")
        if not 0 < self.epsilon < 1:
            raise ValueError(f"epsilon={self.epsilon} must be in (0, 1)")
        if self.epsilon_high is not None and not self.epsilon_high > 0:
            raise ValueError(f"epsilon_high={self.epsilon_high} must be > 0, or None for epsilon")
        if self.beta < 0:
            raise ValueError(f"beta={self.beta} must be >= 0")

    @property
    def preset_values(self) -> dict[str, Any]:
        """The settings ``objective_preset`` stands for (``recommended`` resolved)."""
        name = RECOMMENDED_OBJECTIVE_PRESET if self.objective_preset == "recommended" else self.objective_preset
        return OBJECTIVE_PRESETS[name]

    def explicit_values(self) -> dict[str, Any]:
        """The preset-controlled keys whose value differs from the preset's: what a user set on top of it."""
        return {key: getattr(self, key) for key, value in self.preset_values.items() if getattr(self, key) != value}

    @property
    def refresh_every_steps(self) -> Optional[int]:
        """Optimizer steps between old-policy refreshes, or None for once per epoch."""
        return None if self.old_policy_refresh == "epoch" else int(self.old_policy_refresh)


@dataclass
class TrainingArguments:
    output_dir: Optional[str] = field(default=None, metadata={"help": "Where the model, results and logs go."})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Allow writing over a finished run."})
    num_train_epochs: int = field(default=10, metadata={"help": "Training epochs."})
    head_warmup_epochs: int = field(
        default=0,
        metadata={"help": "Epochs of cross-entropy on the head alone (encoder frozen, in eval mode, at the head's "
                          "learning rate, constant) before the num_train_epochs of the method: LP-FT's linear "
                          "probing. The method's schedule and old policy start after them."},
    )
    max_train_steps: Optional[int] = field(
        default=None, metadata={"help": "Stop after this many optimizer steps of the method (after any head warm-up)."}
    )
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Training batch size per process."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Evaluation batch size per process."})
    learning_rate: float = field(default=5e-5, metadata={"help": "Peak learning rate of the backbone (and head by default)."})
    head_learning_rate: Optional[float] = field(default=None, metadata={"help": "Peak learning rate of the head."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay (not applied to biases and norms)."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "transformers scheduler name."})
    warmup_ratio: float = field(default=0.1, metadata={"help": "Fraction of steps of linear warmup."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm (0 disables)."})
    gradient_accumulation_steps: int = field(
        default=1,
        metadata={"help": "Micro-batches per optimizer step (global batch = per-device batch x processes x this)."},
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "Recompute the encoder's activations in backward: less memory, more time."}
    )
    cache_frozen_features: bool = field(
        default=False,
        metadata={"help": "With --freeze_backbone and no random augmentation: run the encoder once over the training "
                          "set and train the head on those features, kept in CPU memory in every process (one "
                          "pooled feature vector per training example); evaluation runs the encoder as usual."},
    )
    torch_compile: bool = field(default=False, metadata={"help": "torch.compile the model and the frozen policies."})
    torch_compile_mode: Optional[str] = field(
        default=None, metadata={"help": "torch.compile mode (default, reduce-overhead, max-autotune)."}
    )
    seed: int = field(default=42, metadata={"help": "Random seed."})
    use_cpu: bool = field(default=False, metadata={"help": "Run on CPU even when a GPU is available."})
    mixed_precision: Literal["no", "fp16", "bf16"] = field(default="no", metadata={"help": "accelerate mixed precision."})
    logging_steps: int = field(default=10, metadata={"help": "Log training metrics every N optimizer steps."})
    checkpointing_steps: Optional[str] = field(
        default=None,
        metadata={"help": "Save a resumable checkpoint-<step> every N optimizer steps, or at each epoch end ('epoch')."},
    )
    save_total_limit: Optional[int] = field(
        default=None, metadata={"help": "Keep only the newest K checkpoints (default: all)."}
    )
    resume_from_checkpoint: Optional[str] = field(
        default=None,
        metadata={"help": "'latest' (the newest checkpoint in output_dir; a fresh start when there is none) or a "
                          "checkpoint-<step> folder."},
    )
    skip_nonfinite_steps: bool = field(
        default=False,
        metadata={"help": "Skip optimizer steps whose loss or gradients are NaN/inf (counted) instead of stopping."},
    )
    report_to: list[str] = field(
        default_factory=lambda: ["tensorboard"],
        metadata={"help": f"Trackers to log to, one or several: {', '.join(VALID_REPORT_TO)}."},
    )
    run_name: Optional[str] = field(
        default=None, metadata={"help": "The run's name in the trackers that name runs (default: theirs)."}
    )
    tracker_project_name: Optional[str] = field(
        default=None, metadata={"help": "The trackers' project (default: the output_dir's folder name)."}
    )
    push_to_hub: bool = field(
        default=False, metadata={"help": "Upload the final model, best_model/, cards, results and logs to the Hub."}
    )
    hub_model_id: Optional[str] = field(
        default=None, metadata={"help": "Hub repository, e.g. user/name (default: the output_dir's folder name)."}
    )
    hub_private_repo: bool = field(
        default=False, metadata={"help": "Create the Hub repository private (default: the account's default)."}
    )
    hub_token: Optional[str] = field(
        default=None, metadata={"help": "Hub token (default: HF_TOKEN or the hf auth login token)."}
    )
    disable_tqdm: bool = field(default=False, metadata={"help": "Hide progress bars."})

    def __post_init__(self) -> None:
        self.output_dir = expand_user(self.output_dir)
        self.report_to = tracker_names(self.report_to)
        if self.checkpointing_steps is not None:
            self.checkpointing_steps = str(self.checkpointing_steps)
            if self.checkpointing_steps != "epoch" and not (
                self.checkpointing_steps.isdigit() and int(self.checkpointing_steps) > 0
            ):
                raise ValueError(f"checkpointing_steps={self.checkpointing_steps!r} must be 'epoch' or a positive "
                                 "integer")

    @property
    def checkpoint_every_steps(self) -> Optional[int]:
        """Optimizer steps between checkpoints; None for none or once per epoch."""
        steps = self.checkpointing_steps
        return int(steps) if steps is not None and steps != "epoch" else None


@dataclass
class EvaluationArguments:
    eval_datasets: Optional[list[str]] = field(
        default=None,
        metadata={"help": "Datasets on which to evaluate the trained encoder's frozen features (kNN, softmax regression)."},
    )
    knn_k: list[int] = field(default_factory=lambda: [10, 20, 100], metadata={"help": "k values of the kNN classifier."})
    knn_temperature: float = field(default=0.07, metadata={"help": "Temperature of the kNN vote weights exp(sim/T)."})
    probe_learning_rates: list[float] = field(
        default_factory=lambda: [1e-3, 1e-2, 1e-1], metadata={"help": "Softmax-regression learning-rate grid."}
    )
    probe_weight_decays: list[float] = field(
        default_factory=lambda: [0.0, 1e-4], metadata={"help": "Softmax-regression weight-decay grid."}
    )
    probe_epochs: int = field(default=100, metadata={"help": "Softmax-regression epochs per grid point."})
    feature_type: Optional[Literal["cls", "mean", "max", "cls+mean"]] = field(
        default=None,
        metadata={"help": "Frozen feature's pooling (as --pooling); default: the encoder's (sentence-transformers "
                          "pooling for text, cls for images)."},
    )
    seg_inference: Literal["whole", "slide"] = field(
        default="whole", metadata={"help": "Segmentation inference: whole image (padded to the patch size) or sliding window."}
    )
    slide_stride: Optional[int] = field(
        default=None, metadata={"help": "Sliding-window stride in pixels (default: 2/3 of image_size)."}
    )
    feature_cache_dir: Optional[str] = field(
        default=None, metadata={"help": "Feature cache (default: $GRPO_RM_CACHE/features or ~/.cache/grpo_rm/features)."}
    )


# Never written to run_config.yaml, results or trackers (they would be uploaded with the run).
SECRET_KEYS = ("hub_token",)

SECTIONS = {
    "model": ModelArguments,
    "data": DataArguments,
    "objective": ObjectiveArguments,
    "training": TrainingArguments,
    "evaluation": EvaluationArguments,
}


@dataclass
class RunConfig:
    model: ModelArguments = field(default_factory=ModelArguments)
    data: DataArguments = field(default_factory=DataArguments)
    objective: ObjectiveArguments = field(default_factory=ObjectiveArguments)
    training: TrainingArguments = field(default_factory=TrainingArguments)
    evaluation: EvaluationArguments = field(default_factory=EvaluationArguments)

    @staticmethod
    def valid_keys() -> list[str]:
        return [f.name for cls in SECTIONS.values() for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> "RunConfig":
        """Build from flat keys; an unknown key is an error that lists the valid ones."""
        values = rename_legacy_keys(values)
        check_keys(values, source)
        check_values(values, source)
        sections = {}
        for name, section_cls in SECTIONS.items():
            names = {f.name for f in dataclasses.fields(section_cls)}
            sections[name] = section_cls(**{k: v for k, v in values.items() if k in names})
        return cls(**sections)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "RunConfig":
        """Read a YAML file with the command line's parsing, so ``1e-4`` is a float as in ``--learning_rate 1e-4``."""
        return parse_run_config(["--config", str(path)])

    @classmethod
    def from_run_dir(cls, run_dir: str | Path) -> "RunConfig":
        """The configuration a saved run (or its ``best_model/``) was trained with; defaults for a model
        saved without one."""
        path = Path(run_dir) / CONFIG_FILE_NAME
        return cls.from_yaml(path) if path.is_file() else cls()

    def to_dict(self, secrets: bool = True) -> dict[str, Any]:
        """Flat keys; ``secrets=False`` leaves out credentials (``hub_token``) for anything written or logged."""
        flat: dict[str, Any] = {}
        for name in SECTIONS:
            flat.update(dataclasses.asdict(getattr(self, name)))
        return flat if secrets else {key: value for key, value in flat.items() if key not in SECRET_KEYS}

    def with_overrides(self, **overrides: Any) -> "RunConfig":
        """A copy with some flat keys changed; string values are typed as on the command line ("0.1" -> 0.1).

        Changing ``objective_preset`` re-resolves the keys the old preset had set: a key whose value differs from
        the old preset's is taken as set explicitly and kept (one set explicitly to the preset's value cannot be told
        apart and follows the new preset)."""
        check_keys(overrides, "overrides")
        values = self.to_dict()
        if "objective_preset" in overrides:
            # A new preset replaces what the old one set; values set on top of the old one stay.
            explicit = self.objective.explicit_values()
            for key in self.objective.preset_values:
                values[key] = explicit.get(key)
        return parse_run_config(_as_flags({**values, **overrides}))

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / CONFIG_FILE_NAME
        lines = []
        for name in SECTIONS:
            values = {k: v for k, v in dataclasses.asdict(getattr(self, name)).items() if k not in SECRET_KEYS}
            lines.append(f"# {name}")
            lines.append(yaml.safe_dump(values, sort_keys=False).rstrip())
        write_text_atomic(path, "\n".join(lines) + "\n")
        return path


def parse_run_config(argv: Sequence[str], prog: str = "grpo-rm train") -> RunConfig:
    """Parse ``[--config file.yaml] [--key value ...]``; flags given on the command line win over the file."""
    config_parser = argparse.ArgumentParser(add_help=False)
    config_parser.add_argument("--config")
    known, rest = config_parser.parse_known_args(list(argv))
    parser = HfArgumentParser(tuple(SECTIONS.values()), prog=prog)
    parser.add_argument("--config", metavar="FILE.yaml", help="YAML file of flat keys; command-line flags override it.")
    file_args: list[str] = []
    if known.config:
        values = rename_legacy_keys(read_yaml(known.config))
        check_keys(values, known.config)
        file_args = _as_flags(values)
    namespace = parser.parse_args(file_args + rest)
    values = {key: value for key, value in vars(namespace).items() if key != "config"}
    return RunConfig.from_dict(values, source="command line")


def _as_flags(values: dict[str, Any]) -> list[str]:
    flags: list[str] = []
    for key, value in values.items():
        if value is None or (isinstance(value, (list, tuple)) and not value):  # unset, as on the command line
            continue
        flags.append(f"--{key}")
        if isinstance(value, (list, tuple)):
            flags.extend(str(item) for item in value)
        else:
            flags.append(str(value))
    return flags


# Keys renamed since runs were first saved: old run_config.yaml files still load.
LEGACY_KEYS = {"head_input": "pooling"}


def rename_legacy_keys(values: dict[str, Any]) -> dict[str, Any]:
    return {LEGACY_KEYS.get(key, key): value for key, value in values.items()}


def check_keys(values: dict[str, Any], source: str) -> None:
    unknown = sorted(set(values) - set(RunConfig.valid_keys()))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {source}; valid keys are: {', '.join(RunConfig.valid_keys())}")


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ValueError(f"config file {path} is not valid YAML{where}: "
                         f"{getattr(error, 'problem', None) or error}; fix its syntax") from error
    if not isinstance(values, dict):
        raise ValueError(f"config file {path} must hold a mapping of keys to values, got {type(values).__name__}")
    return values


# Allowed values of numeric keys, as intervals; a list value is checked item by item, an unset (None) one not at all.
VALUE_RANGES = {
    "mlp_hidden_dim": "[1, inf)",
    "seg_num_layers": "[1, inf)",
    "image_size": "[1, inf)",
    "max_seq_length": "[2, inf)",
    "train_last_n_blocks": "[0, inf)",
    "seg_scale_range": "(0, inf)",
    "train_val_split": "[0, 1)",
    "max_train_samples": "[1, inf)",
    "max_eval_samples": "[1, inf)",
    "hflip_prob": "[0, 1]",
    "dataloader_num_workers": "[0, inf)",
    "label_smoothing": "[0, 1)",
    "num_train_epochs": "[1, inf)",
    "head_warmup_epochs": "[0, inf)",
    "max_train_steps": "[1, inf)",
    "per_device_train_batch_size": "[1, inf)",
    "per_device_eval_batch_size": "[1, inf)",
    "learning_rate": "[0, inf)",
    "head_learning_rate": "[0, inf)",
    "weight_decay": "[0, inf)",
    "warmup_ratio": "[0, 1]",
    "max_grad_norm": "[0, inf)",
    "logging_steps": "[1, inf)",
    "knn_k": "[1, inf)",
    "knn_temperature": "(0, inf)",
    "probe_learning_rates": "(0, inf)",
    "probe_weight_decays": "[0, inf)",
    "probe_epochs": "[1, inf)",
    "slide_stride": "[1, inf)",
}


def check_values(values: dict[str, Any], source: str) -> None:
    """Refuse out-of-range numbers (a batch size of 0, a negative learning rate ...) before anything runs."""
    for key, interval in VALUE_RANGES.items():
        value = values.get(key)
        items = value if isinstance(value, (list, tuple)) else [value]
        numbers = [item for item in items if isinstance(item, (int, float)) and not isinstance(item, bool)]
        if not all(_in_interval(number, interval) for number in numbers):
            each = "each value" if isinstance(value, (list, tuple)) else "it"
            raise ValueError(f"{key}={value!r} in {source} is out of range: {each} must be {_describe(interval)}")


def _in_interval(number: float, interval: str) -> bool:
    low_bracket, low, high, high_bracket = _parse_interval(interval)
    above = number >= low if low_bracket == "[" else number > low
    below = number <= high if high_bracket == "]" else number < high
    return above and below


def _describe(interval: str) -> str:
    low_bracket, low, high, _ = _parse_interval(interval)
    if math.isinf(high):
        return f"{'>=' if low_bracket == '[' else '>'} {low:g}"
    return f"in {interval}"


def _parse_interval(interval: str) -> tuple[str, float, float, str]:
    low_bracket, low, high, high_bracket = re.fullmatch(r"([\[(])(.+), (.+)([\])])", interval).groups()
    return low_bracket, float(low), float(high), high_bracket


def field_options_parser(section: type, names: Sequence[str], *, required: Sequence[str] = (),
                         from_run: Sequence[str] = (), aliases: Optional[dict[str, Sequence[str]]] = None,
                         help_overrides: Optional[dict[str, str]] = None) -> argparse.ArgumentParser:
    """Options for some fields of one section, typed, documented and defaulted as ``grpo-rm train`` does,
    to pass as ``argparse.ArgumentParser(parents=[...])``: a command's flags cannot drift from the dataclasses.

    ``required`` fields lose their default; ``from_run`` ones default to None, for commands that take the
    value from a saved run unless it is given; ``aliases`` are other flag names (``k`` for ``knn_k``);
    ``help_overrides`` replace a field's help where the command means it differently.
    """
    from typing import get_type_hints

    aliases, help_overrides = aliases or {}, help_overrides or {}
    types = get_type_hints(section)
    fields = {f.name: f for f in dataclasses.fields(section)}
    options = []
    for name in names:
        original = fields[name]
        text = help_overrides.get(name, original.metadata.get("help", ""))
        metadata = {**original.metadata, "aliases": [f"--{alias}" for alias in aliases.get(name, ())]}
        if name in required:
            option = field(metadata={**metadata, "help": text})
        elif name in from_run:
            option = field(default=None, metadata={**metadata, "help": f"{text} Default: the run's."})
        else:
            # An unset (None) default is what the field's help explains.
            shown = "" if original.default is None else " (default: %(default)s)"
            option = field(default=original.default, default_factory=original.default_factory,
                           metadata={**metadata, "help": text + shown})
        options.append((name, types[name], option))
    # HfArgumentParser turns a dataclass into options, so these are the very options of `grpo-rm train`.
    options_class = dataclasses.make_dataclass(f"{section.__name__}Options", options, kw_only=True)
    return HfArgumentParser(options_class, add_help=False)
