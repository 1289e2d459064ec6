"""docs/configuration.md is generated from the fields, and current."""

from pathlib import Path

from grpo_rm.config import RunConfig
from grpo_rm.config.reference import configuration_reference

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_the_committed_reference_is_current():
    assert DOC.read_text() == configuration_reference(), (
        "docs/configuration.md is stale: python -m grpo_rm.config.reference > docs/configuration.md")


def test_every_key_has_a_row_with_its_role():
    text = configuration_reference()
    for key in RunConfig.valid_keys():
        (row,) = [line for line in text.splitlines() if line.startswith(f"| `{key}` |")]
        assert any(role in row for role in ("| result", "| bookkeeping |", "| runtime |")), row
    assert "| `num_train_epochs` | int | 10 | >= 1 | result, resumable |" in text
    assert "| `learning_rate` | float | 5e-05 | >= 0 | result |" in text
