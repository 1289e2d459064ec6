import platform

from grpo_rm import __version__
from grpo_rm.cli import main
from grpo_rm.commands.env import LIBRARIES, environment_info, installed_version


def test_environment_names_versions_processes_and_devices():
    info = environment_info()
    assert info["grpo-rm version"] == __version__
    assert info["Python version"] == platform.python_version()
    for library in LIBRARIES:
        assert info[f"{library} version"] == installed_version(library)
    assert info["torch version"] != "not installed"
    assert info["accelerate processes"].startswith("1 ")
    assert all(isinstance(value, str) and value for value in info.values())


def test_a_missing_library_is_reported_not_raised():
    assert installed_version("grpo-rm-no-such-distribution") == "not installed"


def test_env_prints_versions_and_devices(capsys):
    assert main(["env"]) == 0
    printed = capsys.readouterr().out
    for line in ("- grpo-rm version: ", "- torch version: ", "- Python version: ", "- Device: ",
                 "- accelerate processes: 1", "- mixed precision available: "):
        assert line in printed
