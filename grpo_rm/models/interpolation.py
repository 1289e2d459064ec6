"""Weight-space interpolation of two state dicts of one architecture (WiSE-FT, Wortsman et al., "Robust
fine-tuning of zero-shot models", CVPR 2022): (1 - alpha) * pretrained + alpha * fine-tuned.

The ends are exact: alpha = 0 returns the pretrained tensors and alpha = 1 the fine-tuned ones, bit for bit
(the formula alone would turn a -0.0 into +0.0, and an infinite weight times 0 into NaN). Only floating-point
tensors are mixed; integer buffers (position ids, counters) are the fine-tuned model's.
"""

from __future__ import annotations

import math
from typing import Mapping

import torch


def interpolate_state_dicts(pretrained: Mapping[str, torch.Tensor], fine_tuned: Mapping[str, torch.Tensor],
                            alpha: float, pretrained_source: str = "the pretrained state dict",
                            fine_tuned_source: str = "the fine-tuned state dict") -> dict[str, torch.Tensor]:
    """(1 - alpha) * pretrained + alpha * fine-tuned for every floating-point tensor, in that tensor's dtype
    (computed in float32 at least, so half-precision weights round once); new tensors, the inputs untouched.

    ``alpha`` must lie in [0, 1]: beyond it the result is an extrapolation, not an interpolation. The two state
    dicts must hold the same keys with the same shapes; ``pretrained_source`` and ``fine_tuned_source`` name them
    in the error when they do not (e.g. their paths).
    """
    if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and 0 <= alpha <= 1):
        raise ValueError(f"alpha={alpha!r} is outside [0, 1]: WiSE-FT interpolates between the pretrained (0) and "
                         "the fine-tuned (1) weights")
    _check_same_architecture(pretrained, fine_tuned, pretrained_source, fine_tuned_source)
    mixed = {}
    for name, tuned in fine_tuned.items():
        start = pretrained[name]
        if not tuned.is_floating_point() or alpha == 1:
            mixed[name] = tuned.clone()
        elif alpha == 0:
            mixed[name] = start.to(tuned.dtype, copy=True)
        else:
            compute = torch.promote_types(tuned.dtype, torch.float32)
            value = (1 - alpha) * start.to(compute) + alpha * tuned.to(compute)
            mixed[name] = value.to(tuned.dtype)
    return mixed


def _check_same_architecture(pretrained: Mapping[str, torch.Tensor], fine_tuned: Mapping[str, torch.Tensor],
                             pretrained_source: str, fine_tuned_source: str) -> None:
    only_pretrained = sorted(set(pretrained) - set(fine_tuned))
    only_fine_tuned = sorted(set(fine_tuned) - set(pretrained))
    shapes = sorted(f"{name}: {tuple(pretrained[name].shape)} vs {tuple(fine_tuned[name].shape)}"
                    for name in set(pretrained) & set(fine_tuned) if pretrained[name].shape != fine_tuned[name].shape)
    if not (only_pretrained or only_fine_tuned or shapes):
        return
    details = [f"{label}: {', '.join(items[:4])}{' ...' if len(items) > 4 else ''}"
               for label, items in ((f"only in {pretrained_source}", only_pretrained),
                                    (f"only in {fine_tuned_source}", only_fine_tuned),
                                    ("other shapes", shapes)) if items]
    raise ValueError(f"{pretrained_source} and {fine_tuned_source} are not the same architecture "
                     f"({'; '.join(details)}): weights can only be interpolated between two checkpoints of one "
                     "architecture; pass the encoder the run was fine-tuned from")
