"""The training method as a pluggable loss, and the frozen policies GRPO-RM compares against.

The trainer asks a method whether it needs the old (and reference) policy's logits and
then calls it with them; everything else in the loop is shared, so a comparison of
``ce`` and ``grpo-rm`` differs in the objective alone.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Optional, Protocol

import torch
from torch import nn

from .config import ObjectiveArguments
from .objective import LossOutput, cross_entropy_loss, grpo_rm_loss


class Method(Protocol):
    name: str
    needs_old_policy: bool
    needs_reference_policy: bool

    def __call__(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        old_logits: Optional[torch.Tensor] = None,
        ref_logits: Optional[torch.Tensor] = None,
    ) -> LossOutput: ...


@dataclass
class CrossEntropyMethod:
    ignore_index: int = -100
    label_smoothing: float = 0.0
    name: str = "ce"
    needs_old_policy: bool = False
    needs_reference_policy: bool = False

    def __call__(self, logits, targets, old_logits=None, ref_logits=None) -> LossOutput:
        return cross_entropy_loss(
            logits, targets, ignore_index=self.ignore_index, label_smoothing=self.label_smoothing
        )


@dataclass
class GrpoRmMethod:
    epsilon: float = 0.2
    epsilon_high: Optional[float] = None
    beta: float = 0.0
    reward: str = "accuracy+uniformity"
    uniformity_weight: float = 1.0
    scale_rewards: str = "group"
    group_weighting: str = "uniform"
    ignore_index: int = -100
    name: str = "grpo-rm"
    needs_old_policy: bool = True

    @property
    def needs_reference_policy(self) -> bool:
        return self.beta > 0

    def __call__(self, logits, targets, old_logits=None, ref_logits=None) -> LossOutput:
        if old_logits is None:
            raise ValueError("GRPO-RM needs the old policy's logits")
        return grpo_rm_loss(
            logits,
            old_logits,
            targets,
            epsilon=self.epsilon,
            epsilon_high=self.epsilon_high,
            reward=self.reward,
            uniformity_weight=self.uniformity_weight,
            scale_rewards=self.scale_rewards,
            group_weighting=self.group_weighting,
            ignore_index=self.ignore_index,
            beta=self.beta,
            ref_logits=ref_logits,
        )


def build_method(args: ObjectiveArguments, ignore_index: int = -100) -> Method:
    if args.method == "ce":
        return CrossEntropyMethod(ignore_index=ignore_index, label_smoothing=args.label_smoothing)
    if args.method == "grpo-rm":
        return GrpoRmMethod(
            epsilon=args.epsilon,
            epsilon_high=args.epsilon_high,
            beta=args.beta,
            reward=args.reward,
            uniformity_weight=args.uniformity_weight,
            scale_rewards=args.scale_rewards,
            group_weighting=args.group_weighting,
            ignore_index=ignore_index,
        )
    raise ValueError(f"method={args.method!r} is not one of ['grpo-rm', 'ce']")


class FrozenPolicy:
    """A frozen copy of a model (theta_old or pi_ref): no gradient, eval mode, inference mode.

    What is frozen in the model is the same in every policy, so the copy holds only the rest and finishes
    from what the training model's frozen part computed (``shares``, ``EncoderWithHead.frozen_part``):
    ``"encoder"``: a frozen encoder; the copy is the head, fed the training model's encoder output.
    ``"prefix"``: frozen embeddings and first blocks (``--train_last_n_blocks``); the copy is the other blocks,
    the final norm and the head (``EncoderWithHead.trainable_tail``), fed the training model's prefix state.
    None: the copy is the whole model, run on the inputs. Sharing means one pass of the frozen part per
    batch instead of two, and a copy the size of the trainable part.

    A frozen encoder runs in eval mode in training (as a linear probe reads features), so what it shares is
    exactly what the copy would compute. A frozen prefix runs in the training model's mode, train mode: where it
    has dropout (BERT's 0.1) the copy finishes from features with dropout applied, where a copy of its own would
    have run the frozen part without, and the ratio pi_theta / pi_old then compares the two policies on the same
    features. Where the dropout is 0 (DINOv2) the shared features are exactly those the copy would compute.

    BatchNorm layers are the exception to eval mode: they normalise with batch statistics,
    like the training model does, but with momentum 0 so their running statistics never change.
    Otherwise the copy's running statistics and the training model's batch statistics
    would differ and the ratio pi_theta / pi_old would not be 1 right after a refresh.
    """

    def __init__(self, model: nn.Module, shares: Optional[str] = None, compile_mode: Optional[str] | bool = False):
        if shares not in (None, "encoder", "prefix"):
            raise ValueError(f"shares={shares!r} is not one of None, 'encoder', 'prefix'")
        self.shares = shares
        self.model = copy.deepcopy(self._copied_part(model)).eval().requires_grad_(False)
        for module in self.model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.train()
                module.momentum = 0.0
        # Compiled separately from the weights it reads, so that refreshes and checkpoints see plain names.
        # ``compile_mode``: False (eager), None (torch.compile's default mode) or a mode name.
        self._forward = self.model if compile_mode is False else torch.compile(self.model, mode=compile_mode)

    def _copied_part(self, model: nn.Module) -> nn.Module:
        if self.shares == "encoder":
            return model.head
        if self.shares == "prefix":
            return model.trainable_tail()
        return model

    def refresh(self, model: nn.Module) -> None:
        self.model.load_state_dict(self._copied_part(model).state_dict())

    def __call__(self, *args: torch.Tensor, frozen_output=None, **inputs: torch.Tensor) -> torch.Tensor:
        """The frozen model's logits for the inputs the training model gets (``**batch["inputs"]``), or, when it
        shares the frozen part, for what the training model's frozen part computed (``frozen_output``)."""
        with torch.inference_mode():
            logits = self._forward(frozen_output) if self.shares else self._forward(*args, **inputs)
        # Inference tensors cannot be saved for backward; a clone is an ordinary tensor.
        return logits.clone()
