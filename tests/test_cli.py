"""The ``grpo-rm`` command line: it lists the commands, dispatches, and turns errors into one line and exit code 1.
Each command's own behaviour is tested in tests/commands/; the console script itself runs in
tests/training/test_checkpoints.py (pre-empted and resumed)."""

from grpo_rm.cli import main
from grpo_rm.commands import COMMANDS


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
