"""The run configuration: five dataclasses of flat, unique keys, and ``RunConfig`` that holds them.

Keys are flat and unique across sections (as in TRL's ``--config`` files), so the same name works as a
YAML key, a ``--flag`` and a Python attribute: ``learning_rate: 1e-4`` in YAML, ``--learning_rate 1e-4``
on the command line, ``config.training.learning_rate``. Each field's help, range and role live in its
metadata (``fields.option``); docs/configuration.md is generated from them.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Optional

import yaml
from accelerate.utils import LoggerType

from ..files import CONFIG_FILE_NAME, write_text_atomic
from ..methods import METHODS, OBJECTIVE_PRESET_NAMES, PAPER, RECOMMENDED_OBJECTIVE_PRESET, RefreshSchedule
from ..methods import preset_settings
from ..objective import GROUP_WEIGHTINGS, REWARD_PRESETS, SCALE_REWARDS
from .fields import BOOKKEEPING, RESULT, RUNTIME, check_dataclass, check_field, coerce, option, role_of

METHOD_NAMES = tuple(METHODS)
NO_TRACKERS = "none"
VALID_REPORT_TO = (*LoggerType.list(), NO_TRACKERS)


def expand_user(path: Optional[str]) -> Optional[str]:
    """``~/x`` -> ``/home/me/x`` (YAML files and Python callers get no shell expansion); other names unchanged."""
    return str(Path(path).expanduser()) if path and path.startswith("~") else path


def tracker_names(report_to: Optional[str | Iterable[str]]) -> list[str]:
    """``"mlflow"`` (old YAML files, Python callers) -> ``["mlflow"]``; ``None`` or ``[]`` -> ``["none"]``;
    an unknown name is an error that lists the valid ones."""
    names = [report_to] if isinstance(report_to, str) else list(report_to or [NO_TRACKERS])
    unknown = [name for name in names if name not in VALID_REPORT_TO]
    if unknown:
        raise ValueError(f"report_to {unknown} is not a tracker; valid values are: {', '.join(VALID_REPORT_TO)}")
    if NO_TRACKERS in names and len(names) > 1:
        raise ValueError(f"report_to {names} asks for no tracker and for trackers; pass 'none' alone")
    return names


@dataclass
class ModelArguments:
    model_name_or_path: Optional[str] = option(
        None, "Hub id (e.g. facebook/dinov2-small), a save_pretrained directory or a grpo-rm run directory.")
    task: str = option(
        "image-classification",
        "image-classification, image-segmentation (alias semantic-segmentation) or text-classification; "
        "classification and segmentation are aliases of the image tasks.")
    head_type: Literal["linear", "mlp"] = option("linear", "Classification head.")
    pooling: Optional[Literal["cls", "mean", "max", "cls+mean"]] = option(
        None, "What the classification head reads: first (class) token, masked mean or max of the tokens (patch "
              "tokens for images), or cls ++ mean (DINOv2 linear eval). Default: the checkpoint's "
              "sentence-transformers pooling, else cls.")
    mlp_hidden_dim: Optional[int] = option(None, "MLP head width (default: encoder width).", range="[1, inf)")
    seg_num_layers: int = option(
        1, "Segmentation head input: patch tokens of the last N layers (4: DINOv2 multi-layer).", range="[1, inf)")
    seg_batchnorm: bool = option(True, "BatchNorm before the segmentation head's 1x1 conv.")
    image_size: Optional[int] = option(
        None, "Input side length; default: the checkpoint's crop size or config image_size.", range="[1, inf)")
    max_seq_length: Optional[int] = option(
        None, "Text: tokens per input after truncation; default: the checkpoint's sentence-transformers "
              "max_seq_length, else the tokenizer's and position embeddings' limit.", range="[2, inf)")
    freeze_backbone: bool = option(False, "Train the head only.")
    train_last_n_blocks: Optional[int] = option(
        None, "Train only the last N transformer blocks (plus final norm) and the head.", range="[0, inf)")
    ignore_mismatched_sizes: bool = option(False, "Start a new head when the checkpoint's head has other classes.")

    def __post_init__(self) -> None:
        self.model_name_or_path = expand_user(self.model_name_or_path)
        check_dataclass(self)


@dataclass
class DataArguments:
    dataset_name: str = option(
        "digits", "'digits' / 'digits-seg' (embedded), a hub dataset id, an ImageFolder tree, a folder of "
                  "parquet/arrow/csv/json files or one such file, or a save_to_disk folder.")
    dataset_config_name: Optional[str] = option(None, "Hub dataset configuration name.")
    image_column_name: Optional[str] = option(None, "Image column (default: image or img).")
    text_column_names: Optional[list[str]] = option(
        None, "Text column, or two for sentence pairs (NLI-style); default: text, sentence, ... (see the README).")
    label_column_name: Optional[str] = option(None, "Label column (default: label or labels).")
    mask_column_name: Optional[str] = option(None, "Segmentation mask column (default: mask, annotation, label ...).")
    ignore_index: int = option(255, "Mask value left out of segmentation loss and metrics.")
    reduce_labels: bool = option(False, "ADE20K-style masks: 0 becomes ignore_index, other classes shift down by one.")
    seg_scale_range: list[float] = option(
        help="Segmentation training: random rescale range before the crop.", range="(0, inf)",
        default_factory=lambda: [0.5, 2.0])
    train_val_split: float = option(
        0.1, "Fraction of train held out for validation when the data has no validation split.", range="[0, 1)")
    data_seed: int = option(0, "Seed of validation/test carving and sample truncation, fixed across --seed.")
    max_train_samples: Optional[int] = option(None, "Truncate the training set (debugging).", range="[1, inf)")
    max_eval_samples: Optional[int] = option(None, "Truncate validation and test sets.", range="[1, inf)")
    keep_classes: Optional[list[str]] = option(
        None, "Train and evaluate on these class names only, relabelled in this order.")
    random_resized_crop_scale: list[float] = option(
        help="Area range of the training random-resized crop.", default_factory=lambda: [0.08, 1.0])
    hflip_prob: float = option(0.5, "Probability of a horizontal flip in training.", range="[0, 1]")
    dataloader_num_workers: int = option(0, "DataLoader worker processes.", role=RUNTIME, range="[0, inf)")
    group_by_length: bool = option(
        False, "Text: batch examples of similar token length together (less padding; still shuffled).")
    skip_bad_images: bool = option(
        False, "Skip unreadable images (counted in logs and all_results.json) instead of stopping.")

    def __post_init__(self) -> None:
        self.dataset_name = expand_user(self.dataset_name)
        check_dataclass(self)


def _from_preset(key: str, text: str) -> str:
    return f"{text} Default: the objective_preset's (paper: {PAPER[key]})."


# The keys an objective preset decides; left unset (None), they take the preset's values.
PRESET_KEYS = tuple(PAPER)


@dataclass
class ObjectiveArguments:
    """The training objective. Keys left unset (None) take the value of ``objective_preset``."""

    method: Literal[METHOD_NAMES] = option("grpo-rm", "Training objective.")
    objective_preset: str = option(
        "paper", f"GRPO-RM settings preset: {', '.join(OBJECTIVE_PRESET_NAMES)} (recommended = "
                 f"{RECOMMENDED_OBJECTIVE_PRESET}); keys given explicitly override the preset's.",
        role=BOOKKEEPING, choices=OBJECTIVE_PRESET_NAMES)  # it names values that are compared themselves
    epsilon: Optional[float] = option(
        None, _from_preset("epsilon", "GRPO-RM clip range of the probability ratio (the lower one if epsilon_high "
                                      "is set)."), range="(0, 1)")
    epsilon_high: Optional[float] = option(
        None, "Upper clip range: the ratio is clipped to [1 - epsilon, 1 + epsilon_high] (DAPO's clip-higher; DAPO "
              "uses 0.28). Default: the preset's, which for paper is epsilon.", range="(0, inf)")
    beta: Optional[float] = option(
        None, _from_preset("beta", "Weight of KL(pi_theta, pi_ref) to the frozen starting model."), range="[0, inf)")
    reward: Optional[str] = option(
        None, _from_preset("reward", f"Reward preset: {', '.join(REWARD_PRESETS)}."), choices=REWARD_PRESETS)
    uniformity_weight: Optional[float] = option(
        None, _from_preset("uniformity_weight", "Weight w of the wrong-class penalty of accuracy+uniformity and "
                                                "margin."))
    scale_rewards: Optional[str] = option(
        None, _from_preset("scale_rewards", f"Advantage scaling: {', '.join(SCALE_REWARDS)} (divide by the std of "
                                            "each group's, of the whole batch's or no rewards)."),
        choices=SCALE_REWARDS)
    group_weighting: Optional[str] = option(
        None, _from_preset("group_weighting", f"Weights of a group's class terms: {', '.join(GROUP_WEIGHTINGS)} (1/C "
                                              "each, or the old policy's probability of the class: the expected "
                                              "term of a class sampled from pi_old)."), choices=GROUP_WEIGHTINGS)
    old_policy_refresh: Optional[str] = option(
        None, _from_preset("old_policy_refresh", "Refresh the old policy at each epoch start ('epoch') or every N "
                                                 "optimizer steps."))
    label_smoothing: float = option(0.0, "Label smoothing of the cross-entropy method.", range="[0, 1)")
    l2sp_weight: float = option(
        0.0, "L2-SP: add l2sp_weight/2 * ||theta - theta_0||^2 to the loss of either method, over the trained encoder "
             "weights theta, towards the weights theta_0 the encoder was loaded with (model_name_or_path); logs "
             "l2sp_distance = ||theta - theta_0||. Separate from AdamW's weight_decay, which shrinks towards zero. "
             "0: off.", range="[0, inf)")

    def __post_init__(self) -> None:
        preset = preset_settings(self.objective_preset)
        for key in PRESET_KEYS:
            if getattr(self, key) is None:
                setattr(self, key, preset[key])
        self.old_policy_refresh = str(self.old_policy_refresh)
        RefreshSchedule.parse(self.old_policy_refresh)  # 'epoch' or a positive integer, else an error naming it
        check_dataclass(self)

    def settings(self) -> dict[str, Any]:
        """Every key of the objective, as ``methods.build_method`` takes them."""
        return dataclasses.asdict(self)


@dataclass
class TrainingArguments:
    output_dir: Optional[str] = option(None, "Where the model, results and logs go.", role=BOOKKEEPING)
    overwrite_output_dir: bool = option(False, "Allow writing over a finished run.", role=BOOKKEEPING)
    num_train_epochs: int = option(10, "Training epochs.", range="[1, inf)", resumable=True)
    head_warmup_epochs: int = option(
        0, "Epochs of cross-entropy on the head alone (encoder frozen, in eval mode, at the head's learning rate, "
           "constant) before the num_train_epochs of the method: LP-FT's linear probing. The method's schedule and "
           "old policy start after them.", range="[0, inf)")
    load_best_model_at_end: bool = option(
        False, "After training, load best_model/ (the epoch with the best validation score) and save, test and "
               "evaluate it in place of the last epoch's weights, so that every reported number comes from the "
               "checkpoint validation selected (HF Trainer's option). grpo-rm compare sets it for every row.",
        resumable=True)
    max_train_steps: Optional[int] = option(
        None, "Stop after this many optimizer steps of the method (after any head warm-up).", range="[1, inf)",
        resumable=True)
    per_device_train_batch_size: int = option(32, "Training batch size per process.", range="[1, inf)")
    per_device_eval_batch_size: int = option(64, "Evaluation batch size per process.", role=RUNTIME,
                                             range="[1, inf)")
    learning_rate: float = option(5e-5, "Peak learning rate of the backbone (and head by default).", range="[0, inf)")
    head_learning_rate: Optional[float] = option(None, "Peak learning rate of the head.", range="[0, inf)")
    weight_decay: float = option(0.01, "AdamW weight decay (not applied to biases and norms).", range="[0, inf)")
    lr_scheduler_type: str = option("cosine", "transformers scheduler name.")
    warmup_ratio: float = option(0.1, "Fraction of steps of linear warmup.", range="[0, 1]")
    max_grad_norm: float = option(1.0, "Gradient clipping norm (0 disables).", range="[0, inf)")
    gradient_accumulation_steps: int = option(
        1, "Micro-batches per optimizer step (global batch = per-device batch x processes x this).", range="[1, inf)")
    gradient_checkpointing: bool = option(
        False, "Recompute the encoder's activations in backward: less memory, more time.", role=RUNTIME)
    cache_frozen_features: bool = option(
        False, "With --freeze_backbone and no random augmentation: run the encoder once over the training set and "
               "train the head on those features, kept in CPU memory in every process (one pooled feature vector "
               "per training example); evaluation runs the encoder as usual.", role=RUNTIME)
    torch_compile: bool = option(False, "torch.compile the model and the frozen policies.", role=RUNTIME)
    torch_compile_mode: Optional[str] = option(
        None, "torch.compile mode (default, reduce-overhead, max-autotune).", role=RUNTIME)
    seed: int = option(42, "Random seed.")
    use_cpu: bool = option(False, "Run on CPU even when a GPU is available.", role=RUNTIME)
    num_threads: Optional[int] = option(
        None, "torch's CPU threads for this run (default: torch's, one per core). Give each of several runs that "
              "share a machine its share of the cores: more threads than cores make every run far slower "
              "(benchmarks/RESULTS.md). grpo-rm compare --max_parallel sets it for each row.", role=RUNTIME,
        range="[1, inf)")
    mixed_precision: Literal["no", "fp16", "bf16"] = option("no", "accelerate mixed precision.")
    logging_steps: int = option(10, "Log training metrics every N optimizer steps.", role=BOOKKEEPING,
                                range="[1, inf)")
    checkpointing_steps: Optional[str] = option(
        None, "Save a resumable checkpoint-<step> every N optimizer steps, or at each epoch end ('epoch').",
        role=BOOKKEEPING)
    save_total_limit: Optional[int] = option(
        None, "Keep only the newest K checkpoints (default: all).", role=BOOKKEEPING, range="[1, inf)")
    resume_from_checkpoint: Optional[str] = option(
        None, "'latest' (the newest checkpoint in output_dir; a fresh start when there is none) or a "
              "checkpoint-<step> folder.", role=BOOKKEEPING)
    skip_nonfinite_steps: bool = option(
        False, "Skip optimizer steps whose loss or gradients are NaN/inf (counted) instead of stopping.",
        resumable=True)
    report_to: Optional[list[str]] = option(
        help=f"Trackers to log to, one or several: {', '.join(VALID_REPORT_TO)} (none: no tracker).", role=BOOKKEEPING,
        choices=VALID_REPORT_TO, default_factory=lambda: ["tensorboard"])
    run_name: Optional[str] = option(
        None, "The run's name in the trackers that name runs (default: theirs).", role=BOOKKEEPING)
    tracker_project_name: Optional[str] = option(
        None, "The trackers' project (default: the output_dir's folder name).", role=BOOKKEEPING)
    push_to_hub: bool = option(
        False, "Upload the final model, best_model/, cards, results and logs to the Hub.", role=BOOKKEEPING)
    hub_model_id: Optional[str] = option(
        None, "Hub repository, e.g. user/name (default: the output_dir's folder name).", role=BOOKKEEPING)
    hub_private_repo: bool = option(
        False, "Create the Hub repository private (default: the account's default).", role=BOOKKEEPING)
    hub_token: Optional[str] = option(
        None, "Hub token (default: HF_TOKEN or the hf auth login token).", role=BOOKKEEPING)
    disable_tqdm: bool = option(False, "Hide progress bars.", role=BOOKKEEPING)

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
        check_dataclass(self)

    @property
    def checkpoint_every_steps(self) -> Optional[int]:
        """Optimizer steps between checkpoints; None for none or once per epoch."""
        steps = self.checkpointing_steps
        return int(steps) if steps is not None and steps != "epoch" else None


@dataclass
class EvaluationArguments:
    eval_datasets: Optional[list[str]] = option(
        None, "Datasets on which to evaluate the trained encoder's frozen features (kNN, softmax regression).",
        resumable=True)
    knn_k: list[int] = option(help="k values of the kNN classifier.", range="[1, inf)", resumable=True,
                              default_factory=lambda: [10, 20, 100])
    knn_temperature: float = option(0.07, "Temperature of the kNN vote weights exp(sim/T).", range="(0, inf)",
                                    resumable=True)
    probe_learning_rates: list[float] = option(
        help="Softmax-regression learning-rate grid.", range="(0, inf)", resumable=True,
        default_factory=lambda: [1e-3, 1e-2, 1e-1])
    probe_weight_decays: list[float] = option(
        help="Softmax-regression weight-decay grid.", range="[0, inf)", resumable=True,
        default_factory=lambda: [0.0, 1e-4])
    probe_epochs: int = option(100, "Softmax-regression epochs per grid point.", range="[1, inf)", resumable=True)
    feature_type: Optional[Literal["cls", "mean", "max", "cls+mean"]] = option(
        None, "Frozen feature's pooling (as --pooling); default: the encoder's (sentence-transformers pooling for "
              "text, cls for images).", resumable=True)
    seg_inference: Literal["whole", "slide"] = option(
        "whole", "Segmentation inference: whole image (padded to the patch size) or sliding window.")
    slide_stride: Optional[int] = option(
        None, "Sliding-window stride in pixels (default: 2/3 of image_size).", range="[1, inf)")
    feature_cache_dir: Optional[str] = option(
        None, "Feature cache (default: $GRPO_RM_CACHE/features or ~/.cache/grpo_rm/features).", role=BOOKKEEPING)

    def __post_init__(self) -> None:
        check_dataclass(self)


# Never written to run_config.yaml, results or trackers (they would be uploaded with the run).
SECRET_KEYS = ("hub_token",)

SECTIONS = {
    "model": ModelArguments,
    "data": DataArguments,
    "objective": ObjectiveArguments,
    "training": TrainingArguments,
    "evaluation": EvaluationArguments,
}
# The saved run config's list of the keys the user set (the others are defaults or the preset's).
EXPLICIT_KEYS_ENTRY = "explicit_keys"
# Keys renamed since runs were first saved: old run_config.yaml files still load.
LEGACY_KEYS = {"head_input": "pooling"}


def config_fields() -> dict[str, dataclasses.Field]:
    """Every key of the run configuration, with its field (and so its metadata)."""
    return {f.name: f for section in SECTIONS.values() for f in dataclasses.fields(section)}


def type_hints() -> dict[str, Any]:
    return {name: hint for section in SECTIONS.values() for name, hint in typing.get_type_hints(section).items()}


def keys_with_role(*roles: str) -> list[str]:
    return [name for name, f in config_fields().items() if role_of(f) in roles]


def result_keys() -> list[str]:
    """The keys that decide what a run computes: compare trains runs that differ in one of them separately."""
    return keys_with_role(RESULT)


def resumable_keys() -> list[str]:
    """The keys a resumed run may change: none alters what was computed up to the checkpoint."""
    return [name for name, f in config_fields().items() if f.metadata["resumable"]]


@dataclass
class RunConfig:
    model: ModelArguments = field(default_factory=ModelArguments)
    data: DataArguments = field(default_factory=DataArguments)
    objective: ObjectiveArguments = field(default_factory=ObjectiveArguments)
    training: TrainingArguments = field(default_factory=TrainingArguments)
    evaluation: EvaluationArguments = field(default_factory=EvaluationArguments)
    # The keys the user set, from a file, the command line or overrides; the rest are defaults or the objective
    # preset's. Changing the preset re-resolves only the others.
    explicit_keys: frozenset[str] = field(default_factory=frozenset, compare=False)

    @staticmethod
    def valid_keys() -> list[str]:
        return list(config_fields())

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str | Mapping[str, str] = "config",
                  explicit: Optional[Iterable[str]] = None) -> "RunConfig":
        """Build from flat keys, typing each value as its field declares ("1e-4" -> 1e-4) and checking its range.

        ``source`` names where the values came from in errors (a file, "command line"), or maps each key to its
        source. ``explicit``: the keys the user set (default: all given). An unknown key is an error that lists
        the valid ones.
        """
        values = rename_legacy_keys(values)
        check_keys(values, source if isinstance(source, str) else "config")
        where = (lambda key: source) if isinstance(source, str) else (lambda key: source.get(key, "config"))
        fields, hints = config_fields(), type_hints()
        typed = {}
        for key, value in values.items():
            typed[key] = coerce(value, hints[key], key, where(key))
            check_field(fields[key], hints[key], typed[key], where(key))
        sections = {}
        for name, section_cls in SECTIONS.items():
            names = {f.name for f in dataclasses.fields(section_cls)}
            sections[name] = section_cls(**{k: v for k, v in typed.items() if k in names})
        return cls(**sections, explicit_keys=frozenset(values if explicit is None else explicit))

    @classmethod
    def from_yaml(cls, path: str | Path) -> "RunConfig":
        """A YAML file of flat keys; a saved run config also restores which keys were set explicitly."""
        values = read_yaml(path)
        explicit = values.pop(EXPLICIT_KEYS_ENTRY, None)
        return cls.from_dict(values, source=str(path), explicit=explicit)

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
        """A copy with some flat keys changed, typed as their fields declare ("0.1" -> 0.1).

        Changing ``objective_preset`` re-resolves the keys the preset decides, except those set explicitly."""
        check_keys(overrides, "overrides")
        values = self.to_dict()
        if "objective_preset" in overrides:
            for key in PRESET_KEYS:
                if key not in self.explicit_keys:
                    values[key] = None  # the new preset fills it
        values.update(overrides)
        return RunConfig.from_dict(values, source={key: "overrides" for key in overrides},
                                   explicit=self.explicit_keys | set(overrides))

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / CONFIG_FILE_NAME
        lines = []
        for name in SECTIONS:
            values = {k: v for k, v in dataclasses.asdict(getattr(self, name)).items() if k not in SECRET_KEYS}
            lines.append(f"# {name}")
            lines.append(yaml.safe_dump(values, sort_keys=False).rstrip())
        lines.append("# the keys set explicitly; the others are defaults or the objective preset's")
        lines.append(yaml.safe_dump({EXPLICIT_KEYS_ENTRY: sorted(self.explicit_keys - set(SECRET_KEYS))},
                                    default_flow_style=None, width=120).rstrip())
        write_text_atomic(path, "\n".join(lines) + "\n")
        return path


def rename_legacy_keys(values: Mapping[str, Any]) -> dict[str, Any]:
    return {LEGACY_KEYS.get(key, key): value for key, value in values.items()}


def check_keys(values: Iterable[str], source: str) -> None:
    unknown = sorted(set(values) - set(RunConfig.valid_keys()))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {source}; valid keys are: {', '.join(RunConfig.valid_keys())}")


def check_values(values: Mapping[str, Any], source: str) -> None:
    """Refuse out-of-range numbers and unknown choices among ``values`` (a command's typed options), naming them."""
    fields, hints = config_fields(), type_hints()
    for key, value in values.items():
        if key in fields:
            check_field(fields[key], hints[key], value, source)


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
    return rename_legacy_keys(values)
