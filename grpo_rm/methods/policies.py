"""The frozen policies GRPO-RM compares against: the old policy (theta_old) and the reference policy (pi_ref)."""

from __future__ import annotations

import copy
from typing import Optional

import torch
from torch import nn


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
