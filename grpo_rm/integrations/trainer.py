"""``GrpoRmTrainer``: a ``transformers.Trainer`` that post-trains a classifier with GRPO-RM instead of cross-entropy.

A script that trains with ``Trainer`` switches to GRPO-RM by changing the class, as TRL's trainers are ``Trainer``
subclasses: the model, ``TrainingArguments``, datasets, collator, optimizer, schedule, logging, checkpoints,
accelerate / torchrun launches and gradient accumulation stay the Trainer's. What GRPO-RM adds sits in its extension
points, as ``grpo-rm train``'s loop does it:

- ``compute_loss``: the model's logits, the frozen policies' logits on the same batch, and ``GrpoRmMethod``'s loss;
- a callback refreshes the old policy at each epoch start (``on_epoch_begin``) or every N optimizer steps
  (``on_step_end``), per ``GrpoRmArguments.old_policy_refresh``;
- ``_save_checkpoint`` writes the old (and reference) policy beside the Trainer's files, and ``train`` reads them
  back when it resumes;
- ``log`` adds the objective's metrics (``reward``, ``reward_std``, ``clip_ratio/*``, ``entropy``, ``kl``) to what the
  Trainer logs, so every ``report_to`` tracker receives them.

Under ``torchrun`` / ``accelerate launch`` each process keeps its own copy of the policies, made and refreshed from the
same (DDP-synchronised) weights; the main process writes them into checkpoints and every process reads them back.

Models: any transformers classifier (``AutoModelForImageClassification``, ``AutoModelForSequenceClassification`` ...),
whose batches are the usual flat dicts, and grpo-rm's ``EncoderWithHead``, whose batches are a task's
``{"inputs": {...}, "labels": ...}``.
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from typing import Any, Optional, Union

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import PreTrainedModel, Trainer, TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint
from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME

from ..files import POLICY_FILE_NAMES
from ..models import EncoderWithHead
from .arguments import GrpoRmArguments
from .policies import EncoderWithHeadPolicy, SharedFrozenCopy, logits_of

logger = logging.getLogger(__name__)

# The names grpo-rm train's checkpoints give the frozen policies (grpo_rm.files).
POLICY_NAMES = tuple(POLICY_FILE_NAMES)


class _TransformersClassifier:
    """A transformers classifier: flat batches with the labels among the model's inputs, an output with ``.logits``.
    Its frozen policies are ``SharedFrozenCopy``s (they run the frozen part again, on weights they share)."""

    make_policy = SharedFrozenCopy

    @staticmethod
    def model_inputs(batch: dict, label_name: str) -> dict:
        # Without the labels the model computes no cross-entropy of its own.
        return {key: value for key, value in batch.items() if key != label_name}

    @staticmethod
    def forward(model: nn.Module, inputs: dict):
        output = model(**inputs)
        return logits_of(output), output, None

    @staticmethod
    def prepare_training_mode(model: nn.Module) -> None:
        """Nothing to change: the Trainer's ``model.train()`` is the mode a transformers classifier trains in."""


class _EncoderWithHead:
    """grpo-rm's model: batches ``{"inputs": {...}, "labels": ...}``; its frozen part runs once for the model and its
    policies (``FrozenPolicy``), as in ``grpo_rm.training.steps.training_step``."""

    make_policy = EncoderWithHeadPolicy

    @staticmethod
    def model_inputs(batch: dict, label_name: str) -> dict:
        return batch["inputs"]

    @staticmethod
    def forward(model: nn.Module, inputs: dict):
        logits, frozen_output = model(**inputs, return_frozen_output=True)
        # A mapping: the Trainer's prediction_step takes a non-mapping output for (loss, logits, ...) and drops [0].
        return logits, {"logits": logits}, frozen_output

    @staticmethod
    def prepare_training_mode(model: EncoderWithHead) -> None:
        if model.frozen_part == "encoder":
            model.encoder.eval()  # frozen features, as a linear probe reads them, as grpo-rm train runs it


def _saved_under_other_names(model: PreTrainedModel, checkpoint: str) -> bool:
    """Whether the weights file(s) in ``checkpoint`` name other tensors than ``model``'s state dict does."""
    index = os.path.join(checkpoint, SAFE_WEIGHTS_INDEX_NAME)
    if os.path.isfile(index):
        with open(index) as file:
            saved = set(json.load(file)["weight_map"])
    elif os.path.isfile(os.path.join(checkpoint, SAFE_WEIGHTS_NAME)):
        with safe_open(os.path.join(checkpoint, SAFE_WEIGHTS_NAME), framework="pt") as file:
            saved = set(file.keys())
    else:
        return False
    return saved != set(model.state_dict())


def _model_kind(model: nn.Module):
    return _EncoderWithHead if isinstance(model, EncoderWithHead) else _TransformersClassifier


class GrpoRmTrainer(Trainer):
    """``transformers.Trainer`` with GRPO-RM's loss (arXiv:2511.15256): the Trainer's arguments, plus ``grpo_rm_args``
    (default ``GrpoRmArguments()``: the paper's settings, old policy refreshed at every epoch start).

    The loss of a batch is a mean over its queries, like the Trainer's cross-entropy; the Trainer divides it by the
    gradient accumulation steps (``loss_is_scaled_for_ga = False``), as accelerate's accumulation does in
    ``grpo-rm train``. ``num_items_in_batch`` is not used.
    """

    loss_is_scaled_for_ga = False

    def __init__(self, *args: Any, grpo_rm_args: Optional[GrpoRmArguments] = None, **kwargs: Any):
        if kwargs.get("compute_loss_func") is not None:
            raise ValueError("GrpoRmTrainer computes the GRPO-RM loss itself: leave compute_loss_func out, or train "
                             "with transformers.Trainer")
        super().__init__(*args, **kwargs)
        self.grpo_rm_args = grpo_rm_args if grpo_rm_args is not None else GrpoRmArguments()
        self.method = self.grpo_rm_args.method()
        self.old_policy = None  # theta_old and pi_ref (beta > 0), made when training starts
        self.reference_policy = None
        self._checkpoint_to_resume: Optional[str] = None
        self._pending_metrics: dict[str, dict[str, list[torch.Tensor]]] = {"train": defaultdict(list),
                                                                          "eval": defaultdict(list)}
        self._eval_metric_key_prefix = "eval"
        # compute_loss never passes loss kwargs to the model: spare the Trainer counting (and gathering) label items.
        self.model_accepts_loss_kwargs = False
        if self.args.label_names is None and not self.label_names:
            self.label_names = ["labels"]  # EncoderWithHead's forward names no labels argument for the Trainer to find
        if self.args.label_smoothing_factor:
            logger.warning("label_smoothing_factor=%s is a cross-entropy setting; GRPO-RM's loss does not use it",
                           self.args.label_smoothing_factor)
        self.add_callback(_OldPolicySchedule(self))

    # --- the frozen policies ---
    def _policies(self) -> dict[str, Any]:
        return {name: policy for name, policy in zip(POLICY_NAMES, (self.old_policy, self.reference_policy))
                if policy is not None}

    def _start_policies(self, model: nn.Module) -> None:
        """theta_old (and pi_ref) as copies of ``model`` (the unwrapped model), as training starts."""
        make_policy = _model_kind(model).make_policy
        self.old_policy = make_policy(model)
        self.reference_policy = make_policy(model) if self.method.needs_reference_policy else None

    def refresh_old_policy(self) -> None:
        self.old_policy.refresh(self.model)

    def train(self, resume_from_checkpoint: Union[str, bool, None] = None, *args: Any, **kwargs: Any):
        """``Trainer.train``; a run resumed from a checkpoint also gets back its old and reference policies."""
        if resume_from_checkpoint is True:
            # As the Trainer resolves it; when there is none, it raises its own error.
            resume_from_checkpoint = get_last_checkpoint(self.args.output_dir) or True
        resuming = isinstance(resume_from_checkpoint, (str, os.PathLike))
        self._checkpoint_to_resume = os.fspath(resume_from_checkpoint) if resuming else None
        return super().train(resume_from_checkpoint, *args, **kwargs)

    def _on_train_begin(self) -> None:
        """Called as training starts, after the Trainer loaded the model (and, resuming, its checkpoint)."""
        self._start_policies(self.model)
        if self._checkpoint_to_resume is not None:
            self._load_policies(self._checkpoint_to_resume)

    def _save_checkpoint(self, model: nn.Module, trial: Any) -> None:
        # Before the Trainer's files: its trainer_state.json, written last, marks a complete checkpoint.
        if self.args.should_save and self.old_policy is not None:
            folder = os.path.join(self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
            os.makedirs(folder, exist_ok=True)
            for name, policy in self._policies().items():
                # Clones: safetensors refuses tensors that share memory (tied weights).
                state = {key: tensor.detach().cpu().clone().contiguous() for key, tensor in policy.state_dict().items()}
                save_file(state, os.path.join(folder, POLICY_FILE_NAMES[name]))
        super()._save_checkpoint(model, trial)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Optional[nn.Module] = None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        target = model if model is not None else self.model
        if isinstance(target, PreTrainedModel) and _saved_under_other_names(target, resume_from_checkpoint):
            # transformers 5 saves some models (DINOv2 among them) under their original hub names, reverting its
            # weight conversions, but Trainer._load_from_checkpoint loads the file as it is (huggingface/transformers
            # #43701), leaving those weights as they were before the resume. from_pretrained converts them back.
            logger.info("reloading %s through from_pretrained: its weights are saved under converted names",
                        resume_from_checkpoint)
            dtype = next(target.parameters()).dtype
            reloaded = type(target).from_pretrained(resume_from_checkpoint, dtype=dtype)
            target.load_state_dict(reloaded.state_dict())

    def _load_policies(self, checkpoint: str) -> None:
        for name, policy in self._policies().items():
            path = os.path.join(checkpoint, POLICY_FILE_NAMES[name])
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"{checkpoint} has no {POLICY_FILE_NAMES[name]}: it was not written by GrpoRmTrainer with these "
                    f"settings (beta > 0 adds a reference policy), so the GRPO-RM run cannot continue exactly; start "
                    "a new run, or resume with the settings that wrote it")
            policy.load_state_dict(load_file(path))

    # --- the loss ---
    def compute_loss(self, model: nn.Module, inputs: dict, return_outputs: bool = False,
                     num_items_in_batch: Optional[Union[torch.Tensor, int]] = None):
        """GRPO-RM's loss of the batch: the model's logits against its frozen old policy's on the same inputs.
        ``model`` is what the Trainer runs (wrapped by DDP, compiled ...); ``self.model`` the model itself."""
        kind = _model_kind(self.model)
        if self.old_policy is None:  # evaluate() before train(): the policies are the model as it is
            self._start_policies(self.model)
        if len(self.label_names) != 1:
            raise ValueError(f"GRPO-RM needs one label per query; label_names is {self.label_names}")
        labels = inputs[self.label_names[0]]
        model_inputs = kind.model_inputs(inputs, self.label_names[0])
        if model.training:
            kind.prepare_training_mode(self.model)
        # The policies run in the precision the model's forward runs in, so that right after a refresh the ratio
        # pi_theta / pi_old is 1 under mixed precision too.
        with self.accelerator.autocast():
            logits, outputs, frozen_output = kind.forward(model, model_inputs)
            old_logits = self.old_policy(**model_inputs, frozen_output=frozen_output)
            ref_logits = (self.reference_policy(**model_inputs, frozen_output=frozen_output)
                          if self.reference_policy is not None else None)
        if logits.dim() < 2 or logits.shape[1] < 2:
            raise ValueError(f"GRPO-RM needs logits over at least two classes, got shape {tuple(logits.shape)} "
                             "(a regression or single-logit head has no group of classes)")
        loss, metrics = self.method(logits, labels, old_logits=old_logits, ref_logits=ref_logits)
        pending = self._pending_metrics["train" if model.training else "eval"]
        for name, value in metrics.items():
            pending[name].append(value.detach())
        return (loss, outputs) if return_outputs else loss

    # --- logging ---
    def evaluate(self, eval_dataset: Any = None, ignore_keys: Optional[list[str]] = None,
                 metric_key_prefix: str = "eval") -> dict[str, float]:
        self._eval_metric_key_prefix = metric_key_prefix  # the prefix log() gives this evaluation's GRPO-RM metrics
        self._pending_metrics["eval"].clear()  # left by predict(), which logs nothing
        return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)

    def log(self, logs: dict[str, float], start_time: Optional[float] = None) -> None:
        """The Trainer's logs, plus the mean of each GRPO-RM metric over the batches since the last log, averaged
        over processes (every process logs, so the reduction is collective, as the Trainer's loss is)."""
        mode = "train" if self.model.training else "eval"
        pending = self._pending_metrics[mode]
        if pending:
            names = sorted(pending)
            means = torch.stack([torch.stack(pending[name]).mean() for name in names])
            means = self.accelerator.reduce(means, reduction="mean")
            prefix = "" if mode == "train" else f"{self._eval_metric_key_prefix}_"
            logs = {**logs, **{prefix + name: value for name, value in zip(names, means.tolist())}}
            pending.clear()
        super().log(logs, start_time)


class _OldPolicySchedule(TrainerCallback):
    """When the old policy becomes a copy of the model: ``GrpoRmMethod.refresh_schedule``, read at the Trainer's
    epoch starts and optimizer steps."""

    def __init__(self, trainer: GrpoRmTrainer):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        self.trainer._on_train_begin()

    def on_epoch_begin(self, args, state, control, **kwargs):
        # The Trainer also calls this for the epoch a resumed run continues part-way through; state.epoch (epochs
        # done, restored from the checkpoint) then has a fraction, and the checkpoint's old policy stays.
        epochs_done = float(state.epoch or 0.0)
        # A dataset whose random transforms are keyed by epoch (grpo-rm's task datasets), as grpo-rm train sets it;
        # accelerate's map-style loaders forward set_epoch to the sampler only.
        dataset = self.trainer.train_dataset
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(int(epochs_done))
        if epochs_done.is_integer() and self.trainer.method.refresh_schedule.at_epoch_start(False):
            self.trainer.refresh_old_policy()

    def on_step_end(self, args, state, control, **kwargs):
        if self.trainer.method.refresh_schedule.after_step(state.global_step):
            self.trainer.refresh_old_policy()
