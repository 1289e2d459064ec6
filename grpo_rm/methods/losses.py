"""The training method as a pluggable loss, with its old-policy refresh schedule.

The loop asks a method whether it needs the old (and reference) policy's logits, calls it with
them, and asks its schedule when to refresh the old policy; everything else in the loop is
shared, so a comparison of ``ce`` and ``grpo-rm`` differs in the objective alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Optional, Protocol

import torch

from ..objective import LossOutput, cross_entropy_loss, grpo_rm_loss
from .presets import PAPER


@dataclass(frozen=True)
class RefreshSchedule:
    """When the old policy becomes a copy of the current model: at the start of every epoch (the paper's), or
    after every ``every_steps`` optimizer steps of the method."""

    every_steps: Optional[int] = None

    @classmethod
    def parse(cls, spec: str | int) -> "RefreshSchedule":
        """``"epoch"`` or a positive number of steps (``20`` or ``"20"``)."""
        text = str(spec)
        if text == "epoch":
            return cls(None)
        if not (text.isdigit() and int(text) > 0):
            raise ValueError(f"old_policy_refresh={spec!r} must be 'epoch' or a positive integer")
        return cls(int(text))

    def at_epoch_start(self, first_epoch_of_method: bool) -> bool:
        """Whether to refresh as an epoch of the method starts. A step schedule refreshes there only when the
        method starts after a head warm-up, so that its first trust region is around the warmed-up model."""
        return self.every_steps is None or first_epoch_of_method

    def after_step(self, method_step: int) -> bool:
        """Whether to refresh after the method's ``method_step``-th optimizer step (1-based)."""
        return self.every_steps is not None and method_step > 0 and method_step % self.every_steps == 0


class Method(Protocol):
    name: str
    needs_old_policy: bool
    needs_reference_policy: bool
    refresh_schedule: Optional[RefreshSchedule]  # None: no old policy to refresh

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
    refresh_schedule: Optional[RefreshSchedule] = None
    settings: ClassVar[tuple[str, ...]] = ("label_smoothing",)  # the configuration keys it reads

    def __call__(self, logits, targets, old_logits=None, ref_logits=None) -> LossOutput:
        return cross_entropy_loss(
            logits, targets, ignore_index=self.ignore_index, label_smoothing=self.label_smoothing
        )


@dataclass
class GrpoRmMethod:
    """GRPO-RM with the paper's settings unless told otherwise; ``reward`` may also be a callable
    ``(old_probs [Q, C], targets [Q]) -> rewards [Q, C]``."""

    epsilon: float = PAPER["epsilon"]
    epsilon_high: Optional[float] = PAPER["epsilon_high"]
    beta: float = PAPER["beta"]
    reward: Any = PAPER["reward"]
    uniformity_weight: float = PAPER["uniformity_weight"]
    scale_rewards: str = PAPER["scale_rewards"]
    group_weighting: str = PAPER["group_weighting"]
    old_policy_refresh: str | int = PAPER["old_policy_refresh"]
    ignore_index: int = -100
    name: str = "grpo-rm"
    needs_old_policy: bool = True
    refresh_schedule: RefreshSchedule = field(init=False)
    settings: ClassVar[tuple[str, ...]] = tuple(PAPER)

    def __post_init__(self) -> None:
        self.refresh_schedule = RefreshSchedule.parse(self.old_policy_refresh)

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


METHODS = {"grpo-rm": GrpoRmMethod, "ce": CrossEntropyMethod}


def build_method(name: str, settings: Mapping[str, Any], ignore_index: int = -100) -> Method:
    """The method ``name`` with its keys taken from ``settings`` (e.g. an ``ObjectiveArguments``' values; keys of
    other methods are ignored)."""
    if name not in METHODS:
        raise ValueError(f"method={name!r} is not one of {list(METHODS)}")
    method_class = METHODS[name]
    return method_class(**{key: settings[key] for key in method_class.settings if key in settings},
                        ignore_index=ignore_index)
