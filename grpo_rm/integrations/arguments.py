"""``GrpoRmArguments``: what GRPO-RM adds to a transformers ``Trainer`` or sentence-transformers run, beside its own
``TrainingArguments``: the objective's keys, its preset, and when the old policy is refreshed.

Each field is ``ObjectiveArguments``' field of the same name (default, help, range, choices), so the keys, their
checks and the paper's defaults are written once, in ``grpo_rm.config`` and ``grpo_rm.methods.presets``. Keys left
None take the ``objective_preset``'s values, as they do for ``grpo-rm train``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

from ..config import PRESET_KEYS, ObjectiveArguments
from ..methods import GrpoRmMethod, build_method

_OBJECTIVE_FIELDS = {field.name: field for field in dataclasses.fields(ObjectiveArguments)}


def _objective_field(name: str) -> Any:
    """The field ``name`` of ``ObjectiveArguments``: its default, and its help and choices in the metadata keys that
    ``transformers.HfArgumentParser`` passes to argparse (ranges and choices are checked by ``__post_init__``)."""
    source = _OBJECTIVE_FIELDS[name]
    metadata = {"help": source.metadata["help"]}
    if source.metadata.get("choices"):
        metadata["choices"] = list(source.metadata["choices"])
    return dataclasses.field(default=source.default, metadata=metadata)


@dataclass
class GrpoRmArguments:
    """GRPO-RM's settings for ``GrpoRmTrainer`` and ``GrpoRmClassificationLoss``; ``GrpoRmArguments()`` is the paper's.

    ``reward`` may also be a callable ``(old_probs [Q, C], targets [Q]) -> rewards [Q, C]``, and
    ``old_policy_refresh`` a number of optimizer steps; ``epoch`` refreshes at the start of every epoch.
    """

    objective_preset: str = _objective_field("objective_preset")
    epsilon: Optional[float] = _objective_field("epsilon")
    epsilon_high: Optional[float] = _objective_field("epsilon_high")
    beta: Optional[float] = _objective_field("beta")
    reward: Optional[str] = _objective_field("reward")
    uniformity_weight: Optional[float] = _objective_field("uniformity_weight")
    scale_rewards: Optional[str] = _objective_field("scale_rewards")
    group_weighting: Optional[str] = _objective_field("group_weighting")
    old_policy_refresh: Optional[str] = _objective_field("old_policy_refresh")
    # Not an objective key of grpo-rm train, where each task names it: here the label of queries to leave out,
    # transformers' convention (its data collators pad labels with -100).
    ignore_index: int = dataclasses.field(
        default=-100, metadata={"help": "Label value whose queries are left out of the loss (transformers: -100)."})

    def __post_init__(self) -> None:
        # ObjectiveArguments resolves the preset and checks every value; a reward callable is not one of its
        # choices, so it is checked as None (the preset's name) and put back.
        reward = self.reward
        custom_reward = callable(reward)
        keys = {key: getattr(self, key) for key in PRESET_KEYS}
        resolved = ObjectiveArguments(method="grpo-rm", objective_preset=self.objective_preset,
                                      **{**keys, "reward": None if custom_reward else reward})
        for key in PRESET_KEYS:
            setattr(self, key, getattr(resolved, key))
        if custom_reward:
            self.reward = reward

    def method(self) -> GrpoRmMethod:
        """The loss with these settings, and its old-policy ``refresh_schedule``."""
        settings = {key: getattr(self, key) for key in PRESET_KEYS}
        return build_method("grpo-rm", settings, ignore_index=self.ignore_index)
