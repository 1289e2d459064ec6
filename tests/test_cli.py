"""The ``grpo-rm`` command line: it lists the commands, dispatches, and turns errors into one line and exit code 1.
Each command's own behaviour is tested in tests/commands/; training under SIGTERM and a requeue, in processes of
their own, in tests/launchers/."""

import os
import subprocess
import sys

from grpo_rm.cli import main
from grpo_rm.commands import COMMANDS


def test_the_console_script_lists_the_commands_without_loading_torch():
    script = os.path.join(os.path.dirname(sys.executable), "grpo-rm")  # the installed entry point
    result = subprocess.run([script, "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and all(name in result.stdout for name in COMMANDS)
    # torch is loaded by the command, after the command line has chosen the OpenMP settings it reads once.
    loaded = subprocess.run([sys.executable, "-c", "import sys, grpo_rm.cli; grpo_rm.cli.main(['--help']); "
                             "print('torch' in sys.modules)"], capture_output=True, text=True)
    assert loaded.stdout.splitlines()[-1] == "False"


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    printed = capsys.readouterr().out
    for name, command in COMMANDS.items():
        assert f"  {name}" in printed and command.help in printed
    assert main(["no-such-command"]) == 2


def test_bad_input_gives_a_clear_error(tmp_path, tiny_dinov2, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("num_epochs: 3\n")
    assert main(["train", "--config", str(config)]) == 1
    assert "unknown key(s) ['num_epochs']" in capsys.readouterr().err
    assert main(["train", "--model_name_or_path", tiny_dinov2, "--output_dir", str(tmp_path / "r"),
                 "--image_size", "30"]) == 1
    assert "nearest valid sizes: [28, 32]" in capsys.readouterr().err
    assert main(["eval", "--model_name_or_path", tiny_dinov2]) == 1
    assert "not a grpo-rm model" in capsys.readouterr().err
    assert not (tmp_path / "r" / "all_results.json").exists()
