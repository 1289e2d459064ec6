"""L2-SP (Li, Grandvalet & Davoine, "Explicit Inductive Bias for Transfer Learning with Convolutional Networks",
ICML 2018): a penalty (lambda / 2) * ||theta - theta_0||^2 that pulls the fine-tuned weights towards the pretrained
ones theta_0 rather than towards zero.

It is part of the loss, so its gradient lambda * (theta - theta_0) goes through the same optimizer as the method's
gradient (Adam's normalisation included), unlike AdamW's decoupled weight decay, which shrinks towards zero outside
the gradient. The training loop anchors the trained encoder weights as loaded, before a resume restores a
checkpoint, so that a resumed run pulls towards the same theta_0 as the uninterrupted one.
"""

from __future__ import annotations

import torch
from torch import nn


class L2SPRegularizer:
    """Detached copies theta_0 of a module's trainable parameters (by name), and the penalty towards them.

    Parameters frozen when the anchor is taken are left out: they never move, so their terms would be zero.
    ``penalty`` and ``distance`` take a module with the same parameter names (the anchored one, or another copy
    of the architecture), so the anchor never holds references to the module it was taken from.
    """

    def __init__(self, module: nn.Module, weight: float):
        if not weight > 0:
            raise ValueError(f"l2sp_weight={weight!r}: an L2-SP regularizer needs a positive weight (0 means no "
                             "regularizer: build none)")
        self.weight = float(weight)
        self.anchor = {name: param.detach().clone() for name, param in module.named_parameters() if param.requires_grad}
        if not self.anchor:
            raise ValueError(f"l2sp_weight={weight}: the encoder has no trainable weights to anchor "
                             "(--freeze_backbone?); train some of the encoder, or set l2sp_weight 0")

    def squared_distance(self, module: nn.Module) -> torch.Tensor:
        """||theta - theta_0||^2 over the anchored parameters, in the autograd graph."""
        parameters = dict(module.named_parameters())
        missing = sorted(set(self.anchor) - set(parameters))
        if missing:
            raise ValueError(f"the module has no parameters {missing[:4]}{' ...' if len(missing) > 4 else ''} of the "
                             "L2-SP anchor: pass the module the anchor was taken from (the encoder)")
        return sum((parameters[name] - anchor).pow(2).sum() for name, anchor in self.anchor.items())

    def penalty(self, module: nn.Module) -> torch.Tensor:
        """(weight / 2) * ||theta - theta_0||^2, whose gradient is weight * (theta - theta_0)."""
        return 0.5 * self.weight * self.squared_distance(module)

    def distance(self, module: nn.Module) -> torch.Tensor:
        """||theta - theta_0||, detached: how far training has moved the anchored weights."""
        with torch.no_grad():
            return self.squared_distance(module).sqrt()
