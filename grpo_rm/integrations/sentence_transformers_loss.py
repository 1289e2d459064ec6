"""``GrpoRmClassificationLoss``: GRPO-RM as a sentence-transformers loss, for (text, label) data.

A loss module in the style of ``losses.SoftmaxLoss``: ``GrpoRmClassificationLoss(model, num_labels)`` owns a linear
classification head on the sentence embedding and the frozen old policy (a copy of encoder and head), and its
``forward(sentence_features, labels)`` returns GRPO-RM's loss. ``SentenceTransformerTrainer`` trains the encoder and
the head (its optimizer takes the loss module's parameters), and saves the encoder as the SentenceTransformer it was.

A loss module gets no Trainer callbacks, so the old policy's refresh reads where optimizer steps and epochs end from
accelerate's ``GradientState``, which the Trainer sets before every micro-batch: ``sync_gradients`` (this micro-batch
ends an optimizer step) and ``end_of_dataloader`` (it is of the epoch's last batch). A refresh that falls due after a
step or at the end of an epoch happens at the next forward, the first that sees the new weights.

Distributed training (``torchrun`` / ``accelerate launch``) wraps the SentenceTransformer in DDP but not the loss, so
the loss itself starts every process's head from process 0's and averages the head's gradients over processes.

Like ``SoftmaxLoss``'s head, the head and the old policy are not in the Trainer's checkpoints (it saves the model):
resuming from a checkpoint starts a new head and takes the resumed encoder as the old policy.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Iterable, Optional

import torch
from accelerate.state import GradientState
from accelerate.utils import extract_model_from_parallel
from torch import nn

from .arguments import GrpoRmArguments
from .policies import SharedFrozenCopy

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

EXTRA = "sentence-transformers"

CITATION = """
@misc{xu2025grporm,
    title = {GRPO-RM: Fine-Tuning Representation Models via GRPO-Driven Reinforcement Learning},
    author = {Yanchen Xu and Ziheng Jiao and Hongyuan Zhang and Xuelong Li},
    year = {2025},
    eprint = {2511.15256},
    archivePrefix = {arXiv},
}
"""


def import_sentence_transformers():
    """sentence_transformers, imported when first needed: it is an optional dependency of grpo-rm."""
    try:
        import sentence_transformers
    except ImportError as error:
        raise ImportError(f'GrpoRmClassificationLoss needs sentence-transformers: pip install "grpo-rm[{EXTRA}]"'
                          ) from error
    return sentence_transformers


class _EncoderAndHead(nn.Module):
    """Logits of a SentenceTransformer's embedding through a head: the policy that an old-policy copy copies."""

    def __init__(self, encoder: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, features: dict) -> torch.Tensor:
        embeddings = self.encoder(features)["sentence_embedding"]
        return self.head(embeddings.to(self.head.weight.dtype))


class GrpoRmClassificationLoss(nn.Module):
    """GRPO-RM on a linear head over ``model``'s sentence embedding, for a dataset of one text column and a ``label``
    column of class indices in [0, num_labels). ``grpo_rm_args`` defaults to the paper's settings.

    The old policy is a frozen copy of encoder and head, refreshed on ``grpo_rm_args.old_policy_refresh``; the
    encoder's frozen parameters are shared with the copy, not copied. With the encoder frozen altogether, the old
    policy is a copy of the head alone, fed the training model's embeddings.
    """

    def __init__(self, model: "SentenceTransformer", num_labels: int, grpo_rm_args: Optional[GrpoRmArguments] = None):
        super().__init__()
        sentence_transformers = import_sentence_transformers()
        if not isinstance(model, sentence_transformers.SentenceTransformer):
            raise TypeError(f"GrpoRmClassificationLoss takes a SentenceTransformer, got {type(model).__name__}")
        if num_labels < 2:
            raise ValueError(f"num_labels={num_labels}: GRPO-RM's group is the set of classes, at least two")
        self.model = model
        self.num_labels = num_labels
        self.grpo_rm_args = grpo_rm_args if grpo_rm_args is not None else GrpoRmArguments()
        self.method = self.grpo_rm_args.method()
        dimension = (model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension")
                     else model.get_sentence_embedding_dimension())  # sentence-transformers < 5
        self.classifier = nn.Linear(dimension, num_labels, device=model.device)
        # The frozen policies (SharedFrozenCopy: not modules, so out of the optimizer, .to() and state_dict) and what
        # they copy, made at the first forward.
        self.old_policy: Optional[SharedFrozenCopy] = None
        self.reference_policy: Optional[SharedFrozenCopy] = None
        self.head_only = False  # whether the policies are copies of the head alone (the encoder is frozen)
        self.optimizer_steps = 0  # optimizer steps taken, as the refresh schedule counts them
        self._refresh_due = False  # an optimizer step or epoch that ends the old policy's term has ended

    def _policy_model(self) -> nn.Module:
        """What the frozen policies copy: the head, or the encoder (unwrapped from DDP) and the head. Built on demand,
        not kept: a module attribute would be a child that the Trainer's optimizer and model swap walk into."""
        if self.head_only:
            return self.classifier
        return _EncoderAndHead(extract_model_from_parallel(self.model), self.classifier)

    def _start_policies(self) -> None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            self._share_head_across_processes()
        self.head_only = not any(param.requires_grad for param in self.model.parameters())
        self.old_policy = SharedFrozenCopy(self._policy_model())
        self.reference_policy = SharedFrozenCopy(self._policy_model()) if self.method.needs_reference_policy else None

    def _share_head_across_processes(self) -> None:
        """Distributed training wraps the SentenceTransformer in DDP, not the loss: the head starts from process 0's
        initialisation and its gradients are averaged over processes here, as DDP averages the encoder's, at the
        micro-batch that completes each optimizer step (accumulated micro-batches before it add up locally)."""
        world_size = torch.distributed.get_world_size()

        def average_gradient(param: torch.Tensor) -> None:
            if GradientState().sync_gradients and param.grad is not None:
                torch.distributed.all_reduce(param.grad)
                param.grad.div_(world_size)

        for param in self.classifier.parameters():
            torch.distributed.broadcast(param.data, src=0)
            param.register_post_accumulate_grad_hook(average_gradient)

    def refresh_old_policy(self) -> None:
        self.old_policy.refresh(self._policy_model())

    def _before_forward(self) -> None:
        """Make the policies (at the first forward), or refresh the old one if a refresh fell due since the last."""
        if self.old_policy is None:
            self._start_policies()
        elif self._refresh_due:
            self.refresh_old_policy()
            self._refresh_due = False

    def _after_training_forward(self) -> None:
        """Count the optimizer step this micro-batch completes, if it does; the Trainer takes it after its backward,
        so a refresh due then happens at the next forward, the first to see the new weights."""
        gradient_state = GradientState()
        if not gradient_state.sync_gradients:
            return
        self.optimizer_steps += 1
        schedule = self.method.refresh_schedule
        epoch_ends = gradient_state.end_of_dataloader and schedule.at_epoch_start(False)
        self._refresh_due = self._refresh_due or epoch_ends or schedule.after_step(self.optimizer_steps)

    def _policy_logits(self, policy: SharedFrozenCopy, inputs: dict, embeddings: torch.Tensor) -> torch.Tensor:
        # In the precision the training model runs in, with no autocast of its own: under mixed precision the
        # Trainer's accelerator wraps the SentenceTransformer's forward in autocast, and a copy of the encoder
        # keeps that forward, while the head runs outside it, in its own dtype, as the loss's head does.
        if self.head_only:
            return policy(embeddings.detach().to(self.classifier.weight.dtype))
        return policy(inputs)

    def forward(self, sentence_features: Iterable[dict[str, torch.Tensor]], labels: Optional[torch.Tensor]):
        """GRPO-RM's loss; without labels, as ``SoftmaxLoss``, the embeddings and the logits."""
        sentence_features = list(sentence_features)
        if len(sentence_features) != 1:
            raise ValueError(f"GrpoRmClassificationLoss takes a dataset of one text column and a label column; got "
                             f"{len(sentence_features)} text columns")
        features = sentence_features[0]
        inputs = dict(features)  # the model's forward writes its outputs into the dict it is given
        embeddings = self.model(features)["sentence_embedding"]
        logits = self.classifier(embeddings.to(self.classifier.weight.dtype))
        if labels is None:
            return embeddings, logits
        self._before_forward()
        old_logits = self._policy_logits(self.old_policy, inputs, embeddings)
        ref_logits = (self._policy_logits(self.reference_policy, inputs, embeddings)
                      if self.reference_policy is not None else None)
        if self.model.training:
            self._after_training_forward()
        return self.method(logits, labels.view(-1), old_logits=old_logits, ref_logits=ref_logits).loss

    def get_config_dict(self) -> dict[str, Any]:
        """What the model card lists of the loss: the number of labels and the GRPO-RM settings."""
        settings = {field.name: getattr(self.grpo_rm_args, field.name) for field in dataclasses.fields(GrpoRmArguments)}
        return {"num_labels": self.num_labels,
                **{key: getattr(value, "__name__", repr(value)) if callable(value) else value
                   for key, value in settings.items()}}

    @property
    def citation(self) -> str:
        return CITATION
