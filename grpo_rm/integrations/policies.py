"""Frozen policies (theta_old, pi_ref) of models that are not grpo-rm's ``EncoderWithHead``: a transformers
``AutoModelFor*Classification``, or a sentence-transformers encoder with its classification head.

``EncoderWithHead`` has ``FrozenPolicy``, which copies the trainable part only and finishes it from what the training
model's frozen part computed. Other models cannot be split there in general (a transformers classifier pools inside
its forward), so ``SharedFrozenCopy`` deep-copies the whole model but *shares* its frozen parameters: the copy's
frozen weights are the training model's own tensors, which never change, so a frozen encoder costs no memory twice
and only the head (whatever trains) is copied, refreshed and checkpointed.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

import torch
from torch import nn

from ..methods import FrozenPolicy


def logits_of(output: Any) -> torch.Tensor:
    """The logits of a model's output: a tensor, a transformers ``ModelOutput`` (``.logits``), or the first element
    of the tuple a transformers model returns with ``return_dict=False``."""
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TypeError(f"cannot find logits in a model output of type {type(output).__name__}; GRPO-RM needs a "
                    "classifier that returns logits [N, C] (a tensor, or an output with .logits)")


class SharedFrozenCopy:
    """A frozen copy of ``model`` (no gradient, eval mode, inference mode) that shares the parameters frozen in it.

    BatchNorm layers are the exception to eval mode, as in ``FrozenPolicy`` and for the same reason: they normalise
    with batch statistics, like the training model, with momentum 0, so that right after a refresh the ratio
    pi_theta / pi_old is 1. Buffers are copied, never shared: a training model's BatchNorm statistics move.
    Parameters frozen when the copy is made must stay frozen: the copy reads them as they are.
    """

    def __init__(self, model: nn.Module):
        frozen = {id(param): param for param in model.parameters() if not param.requires_grad}
        self.shared_names = frozenset(name for name, param in model.named_parameters(remove_duplicate=False)
                                      if not param.requires_grad)
        # deepcopy returns what its memo maps an object's id to: the frozen parameters themselves.
        self.model = copy.deepcopy(model, memo=dict(frozen)).eval().requires_grad_(False)
        for module in self.model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.train()
                module.momentum = 0.0

    def state_dict(self) -> dict[str, torch.Tensor]:
        """What the copy holds of its own: the trained parameters and the buffers (not the shared frozen weights)."""
        return {name: tensor for name, tensor in self.model.state_dict().items() if name not in self.shared_names}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        expected = set(self.state_dict())
        if set(state) != expected:
            missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
            raise ValueError(f"a frozen policy state does not fit this model: missing {missing[:4]}, unexpected "
                             f"{unexpected[:4]} (was it saved with other parameters frozen?)")
        self.model.load_state_dict(dict(state), strict=False)

    def refresh(self, model: nn.Module) -> None:
        """Become a copy of ``model`` again (the frozen weights are the same tensors already)."""
        source = model.state_dict()
        self.load_state_dict({name: source[name] for name in self.state_dict()})

    def __call__(self, *args: Any, frozen_output: Any = None, **inputs: Any) -> torch.Tensor:
        """The copy's logits for the inputs the training model gets. ``frozen_output`` is accepted for
        ``FrozenPolicy``'s call shape and unused: the copy runs its (shared) frozen part itself."""
        with torch.inference_mode():
            logits = logits_of(self.model(*args, **inputs))
        # Inference tensors cannot be saved for backward; a clone is an ordinary tensor.
        return logits.clone()


class EncoderWithHeadPolicy(FrozenPolicy):
    """grpo-rm's own ``FrozenPolicy`` of an ``EncoderWithHead`` (the copy of its trainable part, fed what the
    training model's frozen part computed, exactly as ``grpo-rm train`` runs it), with the state methods the
    integrations checkpoint it through."""

    def __init__(self, model: nn.Module):
        super().__init__(model, shares=model.frozen_part)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.model.load_state_dict(dict(state))
