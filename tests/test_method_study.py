"""docs/method-study.md against the committed results it quotes (studies/method-study/results/), and the rule that
names ``recommended``."""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("method_study_report", ROOT / "studies" / "method-study" / "report.py")
report = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(report)

# Results are printed with three decimals (0.929, +0.012); the protocol's settings (1e-4, 0.35, ε = 0.1) have fewer.
RESULT_NUMBER = re.compile(r"[+-]?\d+\.\d{3}\b")


def doc_parts() -> tuple[str, str]:
    """(hand-written text, generated blocks) of the doc."""
    text = report.DOC.read_text()
    generated = "".join(match.group("body") for match in report.BLOCK.finditer(text))
    return report.BLOCK.sub("", text), generated


def test_the_doc_tables_are_what_the_result_files_give():
    text = report.DOC.read_text()
    assert report.render(text, report.blocks()) == text, "run: python studies/method-study/report.py"


def test_every_result_number_in_the_hand_written_text_is_in_a_generated_table():
    hand, generated = doc_parts()
    table_numbers = {number.lstrip("+") for number in RESULT_NUMBER.findall(generated)}
    quoted = {number.lstrip("+") for number in RESULT_NUMBER.findall(hand)}
    assert quoted - table_numbers == set()


def test_every_result_file_has_its_blocks_in_the_doc():
    text = report.DOC.read_text()
    names = {match.group("name") for match in report.BLOCK.finditer(text)}
    assert set(report.blocks()) <= names


def test_the_readme_quotes_only_numbers_of_the_doc_tables():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The method, and what we found", 1)[1].split("\n## ", 1)[0]
    _, generated = doc_parts()
    table_numbers = {number.lstrip("+") for number in RESULT_NUMBER.findall(generated)}
    assert {number.lstrip("+") for number in RESULT_NUMBER.findall(section)} - table_numbers == set()


def matched(retention_at_top1, best_top1):
    return {"retention_at_matched_top1": {"family_value": retention_at_top1},
            "best_top1": {"family_value": best_top1}}


def test_the_rule_takes_the_highest_grpo_rm_front_at_cross_entropys_top1():
    comparisons = {"ce + wise-ft": matched(0.95, 0.9),  # not a GRPO-RM family: never chosen
                   "grpo-rm": matched(0.70, 0.85),
                   "grpo-rm+lp-ft": matched(0.75, 0.84),
                   "anchored": matched(None, 0.99)}  # does not reach ce's top-1: ranks below those that do
    assert report.rule_winner(comparisons) == "grpo-rm+lp-ft"


def test_the_rule_falls_back_to_the_best_top1_when_no_front_reaches_cross_entropys():
    comparisons = {"grpo-rm": matched(None, 0.85), "anchored": matched(None, 0.86), "ce+l2sp": matched(None, 0.99)}
    assert report.rule_winner(comparisons) == "anchored"


def test_the_rule_needs_a_grpo_rm_family():
    with pytest.raises(SystemExit, match="no GRPO-RM family"):
        report.rule_winner({"ce+l2sp": matched(0.9, 0.9)})
