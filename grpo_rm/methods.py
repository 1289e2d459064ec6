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

    When the model's encoder is frozen it is the same in every policy, so the copy holds only
    the head and reads the features the training model computed (``head_only``): one encoder
    pass per batch instead of two, and a copy the size of the head.

    BatchNorm layers are the exception to eval mode: they normalise with batch statistics,
    like the training model does, but with momentum 0 so their running statistics never change.
    Otherwise the copy's running statistics and the training model's batch statistics
    would differ and the ratio pi_theta / pi_old would not be 1 right after a refresh.
    """

    def __init__(self, model: nn.Module, head_only: bool = False, compile_mode: Optional[str] | bool = False):
        self.head_only = head_only
        self.model = copy.deepcopy(model.head if head_only else model).eval().requires_grad_(False)
        for module in self.model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.train()
                module.momentum = 0.0
        # Compiled separately from the weights it reads, so that refreshes and checkpoints see plain names.
        # ``compile_mode``: False (eager), None (torch.compile's default mode) or a mode name.
        self._forward = self.model if compile_mode is False else torch.compile(self.model, mode=compile_mode)

    def refresh(self, model: nn.Module) -> None:
        self.model.load_state_dict((model.head if self.head_only else model).state_dict())

    def __call__(self, *args: torch.Tensor, encoder_output=None, **inputs: torch.Tensor) -> torch.Tensor:
        """The frozen model's logits for the inputs the training model gets (``**batch["inputs"]``), or, for a
        head-only copy, for the training model's ``encoder_output``."""
        with torch.inference_mode():
            logits = self._forward(encoder_output) if self.head_only else self._forward(*args, **inputs)
        # Inference tensors cannot be saved for backward; a clone is an ordinary tensor.
        return logits.clone()
