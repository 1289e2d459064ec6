"""The README: the two commands at the top (the test one is CI's), a contents list, the key reference one link away,
and a layout table that names every module of the package."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    command = [line for line in ci.splitlines() if "pytest" in line][0].strip()
    assert command in README


def test_the_two_commands_come_first_and_the_readme_stays_short():
    first_section = README.split("\n## ")[1]
    assert first_section.startswith("Two commands") and "grpo-rm demo" in first_section and "pytest" in first_section
    assert len(README.splitlines()) <= 320


def test_the_contents_list_links_every_section():
    headings = re.findall(r"^## (.+)$", README, flags=re.M)
    contents = README.split("## Contents", 1)[1].split("\n## ", 1)[0]
    for heading in headings:
        if heading != "Contents":
            assert f"[{heading}](#" in contents, heading
    assert "docs/configuration.md" in README


def test_the_layout_table_names_every_module():
    layout = README.split("## Layout", 1)[1]
    for path in sorted((ROOT / "grpo_rm").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if path.name == "__init__.py" and path.parent.name != "grpo_rm":
            continue  # a package's __init__ is named with its package
        assert f"`{relative}`" in layout or f"`{path.relative_to(ROOT / 'grpo_rm').as_posix()}`" in layout, relative
