"""The README is the user's reference: it must document every key and hold the command CI runs."""

from pathlib import Path

from grpo_rm.config import RunConfig

ROOT = Path(__file__).resolve().parents[1]


def test_readme_documents_every_config_key():
    readme = (ROOT / "README.md").read_text()
    missing = [key for key in RunConfig.valid_keys() if f"| `{key}` |" not in readme]
    assert not missing


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = [line for line in ci.splitlines() if "pytest" in line][0].strip()
    assert command in readme
