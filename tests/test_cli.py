"""End-to-end runs of the ``grpo-rm`` command on tiny models and datasets written by the tests."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from grpo_rm.cli import main

TRAIN = ["--per_device_train_batch_size", "8", "--num_train_epochs", "4", "--disable_tqdm", "--report_to", "none",
         "--image_size", "16", "--random_resized_crop_scale", "0.8", "1.0", "--warmup_ratio", "0"]


@pytest.mark.parametrize("method, lr", [("ce", "3e-3"), ("grpo-rm", "3e-3")])
def test_train_then_eval_on_imagefolder(tmp_path, tiny_dinov2, imagefolder, method, lr):
    run = tmp_path / "run"
    code = main(["train", "--method", method, "--model_name_or_path", tiny_dinov2, "--dataset_name", imagefolder,
                 "--output_dir", str(run), "--learning_rate", lr, "--head_learning_rate", "3e-2", *TRAIN])
    assert code == 0
    reported = json.loads((run / "all_results.json").read_text())
    # Three colour classes are separable: both objectives must beat chance (1/3) clearly.
    assert reported["eval_accuracy"] >= 0.6, reported
    assert main(["eval", "--model_name_or_path", str(run), "--dataset_name", imagefolder,
                 "--output_dir", str(tmp_path / "eval")]) == 0
    evaluated = json.loads((tmp_path / "eval" / "eval_results.json").read_text())
    assert evaluated["eval_accuracy"] == reported["eval_accuracy"]


def test_console_script_on_parquet_with_yaml_config(tmp_path, tiny_dinov2, parquet_folder):
    config = tmp_path / "run.yaml"
    config.write_text(f"model_name_or_path: {tiny_dinov2}\nimage_column_name: img\nlabel_column_name: digit\n"
                      "method: grpo-rm\nreward: probability-gap\nscale_rewards: none\nlearning_rate: 1e-3\n")
    run = tmp_path / "run"
    command = [sys.executable, "-m", "grpo_rm.cli", "train", "--config", str(config), "--dataset_name", parquet_folder,
               "--output_dir", str(run), "--max_train_steps", "3", *TRAIN]
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    saved = (run / "run_config.yaml").read_text()
    assert "reward: probability-gap" in saved and "max_train_steps: 3" in saved
    out = subprocess.run([sys.executable, "-m", "grpo_rm.cli", "eval", "--model_name_or_path", str(run),
                          "--dataset_name", parquet_folder], check=True, capture_output=True, text=True)
    assert json.loads(out.stdout)["eval_accuracy"] == json.loads((run / "all_results.json").read_text())["eval_accuracy"]


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


def test_demo_writes_table_and_curves(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--output_dir", str(out), "--num_train_epochs", "1", "--pretrain_epochs", "1"]) == 0
    printed = capsys.readouterr().out
    assert "STAND-IN" in printed and "facebook/dinov2-small" in printed
    comparison = json.loads((out / "comparison.json").read_text())
    table = (out / "comparison.md").read_text()
    for run in comparison["runs"]:
        assert f"| {run['variant']} | {run['results']['eval_accuracy']:.4f} |" in table
    assert [run["variant"] for run in comparison["runs"]] == ["ce", "grpo-rm"]
    assert (out / "curves.png").stat().st_size > 10_000


@pytest.mark.skipif(shutil.which("torchrun") is None and not os.path.exists(os.path.join(os.path.dirname(sys.executable), "torchrun")),
                    reason="torchrun not installed")
def test_two_process_training_matches_eval(tmp_path, tiny_dinov2):
    run = tmp_path / "ddp"
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    command = [torchrun, "--nproc_per_node", "2", "-m", "grpo_rm.cli", "train", "--method", "grpo-rm",
               "--model_name_or_path", tiny_dinov2, "--dataset_name", "digits", "--output_dir", str(run),
               "--max_train_samples", "64", "--max_eval_samples", "25", "--max_train_steps", "4", *TRAIN]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    reported = json.loads((run / "all_results.json").read_text())
    assert reported["eval_samples"] == 25  # gather_for_metrics drops the padding of the uneven last batch
    assert reported["train_samples_per_second"] > 0
    assert main(["eval", "--model_name_or_path", str(run), "--output_dir", str(tmp_path / "eval")]) == 0
    evaluated = json.loads((tmp_path / "eval" / "eval_results.json").read_text())
    assert evaluated["eval_accuracy"] == reported["eval_accuracy"]


def test_text_demo_writes_table_and_curves(tmp_path, tiny_bert, text_parquet, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--task", "text-classification", "--model_name_or_path", tiny_bert, "--dataset_name",
                 text_parquet, "--output_dir", str(out), "--num_train_epochs", "1"]) == 0
    assert "GRPO-RM" in capsys.readouterr().out
    comparison = json.loads((out / "comparison.json").read_text())
    table = (out / "comparison.md").read_text()
    assert "macro-F1 (own head)" in table
    assert [run["variant"] for run in comparison["runs"]] == ["frozen", "ce", "grpo-rm"]
    for run in comparison["runs"]:
        results = run["results"]
        assert f"| {run['variant']} | {results['eval_accuracy']:.4f} | {results['eval_macro_f1']:.4f} |" in table
    assert (out / "curves.png").stat().st_size > 10_000


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


def test_env_prints_versions_and_devices(capsys):
    assert main(["env"]) == 0
    printed = capsys.readouterr().out
    for line in ("- grpo-rm version: ", "- torch version: ", "- Python version: ", "- Device: ",
                 "- accelerate processes: 1", "- mixed precision available: "):
        assert line in printed
