"""GrpoRmArguments: the objective's keys as grpo-rm train has them, resolved from the same presets, and the optional
sentence-transformers dependency imported only when its loss is used."""

import ast
import dataclasses
import sys
from pathlib import Path

import pytest
from transformers import HfArgumentParser

from grpo_rm.config import PRESET_KEYS, ObjectiveArguments
from grpo_rm.integrations import GrpoRmArguments, GrpoRmClassificationLoss
from grpo_rm.methods import build_method, preset_settings


def test_every_key_a_preset_decides_is_an_argument():
    names = [field.name for field in dataclasses.fields(GrpoRmArguments)]
    assert set(names) == {"objective_preset", *PRESET_KEYS, "ignore_index"}


@pytest.mark.parametrize("preset", ["paper", "recommended", "unscaled-gap"])
def test_the_method_is_the_one_grpo_rm_train_builds(preset):
    # grpo-rm train's path: ObjectiveArguments -> build_method, with the -100 labels transformers pads with.
    expected = build_method("grpo-rm", ObjectiveArguments(objective_preset=preset).settings(), ignore_index=-100)
    assert GrpoRmArguments(objective_preset=preset).method() == expected


def test_explicit_keys_override_the_preset():
    arguments = GrpoRmArguments(objective_preset="recommended", epsilon=0.3, old_policy_refresh=5)
    assert arguments.epsilon == 0.3 and arguments.old_policy_refresh == "5"
    assert arguments.scale_rewards == preset_settings("recommended")["scale_rewards"]
    assert arguments.method().refresh_schedule.every_steps == 5


@pytest.mark.parametrize("values, message", [({"epsilon": 1.5}, "epsilon"), ({"reward": "best"}, "reward"),
                                             ({"old_policy_refresh": "often"}, "old_policy_refresh"),
                                             ({"objective_preset": "fast"}, "objective_preset")])
def test_invalid_values_are_refused_by_name(values, message):
    with pytest.raises(ValueError, match=message):
        GrpoRmArguments(**values)


def test_a_reward_callable_reaches_the_loss():
    def reward(old_probs, targets):
        return old_probs

    assert GrpoRmArguments(reward=reward).method().reward is reward


def test_the_arguments_parse_from_a_command_line_like_training_arguments():
    (arguments,) = HfArgumentParser(GrpoRmArguments).parse_args_into_dataclasses(
        ["--epsilon", "0.1", "--reward", "margin", "--old_policy_refresh", "20"])
    assert (arguments.epsilon, arguments.reward, arguments.old_policy_refresh) == (0.1, "margin", "20")
    assert arguments.beta == preset_settings("paper")["beta"]


def test_sentence_transformers_is_imported_only_by_the_loss():
    module = Path(__file__).resolve().parents[2] / "grpo_rm" / "integrations" / "sentence_transformers_loss.py"
    top_level = [node for node in ast.parse(module.read_text()).body if isinstance(node, (ast.Import, ast.ImportFrom))]
    imported = {alias.name for node in top_level for alias in node.names} | {
        node.module for node in top_level if isinstance(node, ast.ImportFrom) and node.module}
    assert not any(name.startswith("sentence_transformers") for name in imported)


def test_a_missing_sentence_transformers_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # what `import` sees when it is not installed
    with pytest.raises(ImportError, match=r'pip install "grpo-rm\[sentence-transformers\]"'):
        GrpoRmClassificationLoss(object(), num_labels=3)
