"""Methods as pluggable losses (cross-entropy, GRPO-RM with its refresh schedule), their presets, the
frozen policies GRPO-RM compares against, and the L2-SP penalty towards the pretrained weights that either
method can add."""

from .l2sp import L2SPRegularizer
from .losses import METHODS, CrossEntropyMethod, GrpoRmMethod, Method, RefreshSchedule, build_method
from .policies import FrozenPolicy
from .presets import (
    OBJECTIVE_PRESET_NAMES,
    OBJECTIVE_PRESETS,
    PAPER,
    RECOMMENDED_OBJECTIVE_PRESET,
    preset_settings,
)

__all__ = [
    "METHODS",
    "OBJECTIVE_PRESETS",
    "OBJECTIVE_PRESET_NAMES",
    "PAPER",
    "RECOMMENDED_OBJECTIVE_PRESET",
    "CrossEntropyMethod",
    "FrozenPolicy",
    "GrpoRmMethod",
    "L2SPRegularizer",
    "Method",
    "RefreshSchedule",
    "build_method",
    "preset_settings",
]
