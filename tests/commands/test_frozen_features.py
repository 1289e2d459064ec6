"""`grpo-rm knn` / `grpo-rm linear-probe` (and `eval`): their options are the config fields', with the same
defaults and checks."""

import pytest

from grpo_rm.cli import main


# `grpo-rm eval` takes these from the run unless they are given.
EVAL_FROM_RUN = {"dataset_name", "max_eval_samples", "ignore_index", "reduce_labels", "mixed_precision",
                 "seg_inference", "slide_stride"}


@pytest.mark.parametrize("command, required", [
    ("knn", ["--model_name_or_path", "m", "--dataset_name", "d"]),
    ("linear-probe", ["--model_name_or_path", "m", "--dataset_name", "d"]),
    ("eval", ["--model_name_or_path", "m"]),
])
def test_subcommand_defaults_are_the_dataclass_defaults(command, required):
    from grpo_rm.commands import command_module
    from grpo_rm.config import RunConfig

    parser = command_module(command).build_parser()
    parsed = vars(parser.parse_args(required))
    defaults = RunConfig().to_dict()
    assert set(parsed) <= set(defaults)
    for key, value in parsed.items():
        if f"--{key}" in required:
            continue
        expected = None if command == "eval" and key in EVAL_FROM_RUN else defaults[key]
        assert value == expected, (command, key)


def test_short_flags_set_the_config_fields():
    from grpo_rm.commands.knn import build_parser as knn_parser
    from grpo_rm.commands.linear_probe import build_parser as linear_probe_parser

    required = ["--model_name_or_path", "m", "--dataset_name", "d"]
    knn = knn_parser().parse_args([*required, "--k", "3", "5", "--temperature", "0.1"])
    assert knn.knn_k == [3, 5] and knn.knn_temperature == 0.1
    probe = linear_probe_parser().parse_args([*required, "--epochs", "3", "--learning_rates", "0.5",
                                              "--weight_decays", "0", "0.1"])
    assert probe.probe_epochs == 3 and probe.probe_learning_rates == [0.5] and probe.probe_weight_decays == [0, 0.1]
    assert knn_parser().parse_args([*required, "--knn_k", "7"]).knn_k == [7]


def test_out_of_range_subcommand_values_are_refused(capsys):
    assert main(["knn", "--model_name_or_path", "m", "--dataset_name", "d", "--k", "0"]) == 1
    assert "knn_k=[0] in command line is out of range" in capsys.readouterr().err
