"""Bad input stops early: one line naming the key, value, file or class and what to do, exit code 1,
no traceback unless --debug / GRPO_RM_DEBUG=1, and no model or results written."""

import json
import shutil

import pytest
from PIL import Image

from grpo_rm.cli import _error_line, main
from grpo_rm.config import RunConfig, parse_run_config
from grpo_rm.models.encoders import load_config

FAST = ["--per_device_train_batch_size", "8", "--num_train_epochs", "1", "--disable_tqdm", "--report_to", "none",
        "--image_size", "16"]


@pytest.mark.parametrize("key, value, allowed", [
    ("per_device_train_batch_size", 0, ">= 1"),
    ("per_device_train_batch_size", -4, ">= 1"),
    ("per_device_eval_batch_size", 0, ">= 1"),
    ("learning_rate", -1e-4, ">= 0"),
    ("head_learning_rate", -1.0, ">= 0"),
    ("num_train_epochs", 0, ">= 1"),
    ("max_train_steps", 0, ">= 1"),
    ("train_val_split", 1.0, r"in \[0, 1\)"),
    ("train_val_split", -0.1, r"in \[0, 1\)"),
    ("max_seq_length", 1, ">= 2"),
    ("max_train_samples", 0, ">= 1"),
    ("warmup_ratio", 1.5, r"in \[0, 1\]"),
    ("knn_temperature", 0.0, "> 0"),
])
def test_out_of_range_values_are_named(key, value, allowed):
    with pytest.raises(ValueError, match=rf"^{key}={value!r} in config is out of range: it must be {allowed}$"):
        RunConfig.from_dict({key: value})


def test_out_of_range_list_items_and_flags_are_named():
    with pytest.raises(ValueError, match=r"knn_k=\[10, 0\] in config is out of range: each value must be >= 1"):
        RunConfig.from_dict({"knn_k": [10, 0]})
    with pytest.raises(ValueError, match=r"per_device_train_batch_size=0 in command line"):
        parse_run_config(["--per_device_train_batch_size", "0"])


def test_edge_values_are_accepted():
    config = RunConfig.from_dict({"learning_rate": 0.0, "head_learning_rate": 1e-2, "train_val_split": 0.0,
                                  "max_train_steps": None, "max_seq_length": 2, "warmup_ratio": 0.0, "hflip_prob": 1.0})
    assert config.training.learning_rate == 0.0 and config.data.train_val_split == 0.0


def test_missing_model_folder_says_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError, match=rf"model folder {tmp_path}/nope does not exist, and .* is not a hub "
                                                r"id \(name or namespace/name\); pass a save_pretrained folder"):
        load_config(str(tmp_path / "nope"))


def test_hub_id_while_offline_says_how_to_get_it():
    # tests/conftest.py sets HF_HUB_OFFLINE=1
    with pytest.raises(FileNotFoundError) as error:
        load_config("nonexistent-org/nonexistent-model")
    message = str(error.value)
    assert "\n" not in message
    assert "'nonexistent-org/nonexistent-model' is not a local folder (looked for " in message
    assert "could not be loaded from the hub" in message
    assert "HF_HUB_OFFLINE is set, so only the local hub cache was searched: download the model once" in message


def error_line(capsys, command="train"):
    """The command's stderr, checked to be one error line and no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(f"grpo-rm {command}: error: ")]
    assert len(lines) == 1, err
    return lines[0]


def assert_nothing_written(run):
    written = sorted(p.name for p in run.rglob("*")) if run.exists() else []
    assert not any(name.endswith((".json", ".safetensors")) for name in written), written


def test_cli_refuses_bad_values_models_and_yaml(tmp_path, tiny_dinov2, imagefolder, capsys):
    run = tmp_path / "run"
    common = ["train", "--dataset_name", imagefolder, "--output_dir", str(run), *FAST]
    assert main([*common, "--model_name_or_path", tiny_dinov2, "--per_device_train_batch_size", "0"]) == 1
    assert "per_device_train_batch_size=0 in command line is out of range: it must be >= 1" in error_line(capsys)
    assert main([*common, "--model_name_or_path", str(tmp_path / "no-model")]) == 1
    assert f"model folder {tmp_path}/no-model does not exist" in error_line(capsys)
    assert main([*common, "--model_name_or_path", "nonexistent-org/nonexistent-model"]) == 1
    assert "HF_HUB_OFFLINE is set" in error_line(capsys)
    config = tmp_path / "broken.yaml"
    config.write_text("learning_rate: 1e-4\nmethod: [ce\nseed: 3\n")
    assert main(["train", "--config", str(config)]) == 1
    assert f"config file {config} is not valid YAML at line 3, column 5" in error_line(capsys)
    assert_nothing_written(run)


def test_cli_stops_on_bad_data_before_writing(tmp_path, tiny_dinov2, imagefolder, capsys):
    root = shutil.copytree(imagefolder, tmp_path / "tree")
    shutil.rmtree(root / "train" / "green")
    (root / "train" / "green").mkdir()
    run = tmp_path / "run"
    command = ["train", "--model_name_or_path", tiny_dinov2, "--dataset_name", str(root), "--output_dir", str(run),
               *FAST]
    assert main(command) == 1
    assert f"add images to {root}/train/green or remove the folder {root}/val/green" in error_line(capsys)
    assert_nothing_written(run)


def test_unreadable_image_stops_training_or_is_skipped(tmp_path, tiny_dinov2, imagefolder, capsys):
    root = shutil.copytree(imagefolder, tmp_path / "tree")
    bad = root / "train" / "red" / "5.png"
    bad.write_bytes(bad.read_bytes()[:100])
    run = tmp_path / "run"
    command = ["train", "--model_name_or_path", tiny_dinov2, "--dataset_name", str(root), "--output_dir", str(run),
               *FAST]
    assert main(command) == 1
    assert f"cannot read image {bad}: image file is truncated" in error_line(capsys)
    assert not (run / "all_results.json").exists() and not list(run.rglob("*.safetensors"))
    assert main([*command, "--skip_bad_images", "--max_train_steps", "1", "--overwrite_output_dir"]) == 0
    assert json.loads((run / "all_results.json").read_text())["skipped_bad_images"] == 1


def test_debug_shows_the_traceback(tmp_path, monkeypatch, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("per_device_train_batch_size: 0\n")
    with pytest.raises(ValueError, match="per_device_train_batch_size=0"):
        main(["train", "--debug", "--config", str(config)])
    monkeypatch.setenv("GRPO_RM_DEBUG", "1")
    with pytest.raises(ValueError, match="per_device_train_batch_size=0"):
        main(["train", "--config", str(config)])
    monkeypatch.setenv("GRPO_RM_DEBUG", "0")
    assert main(["train", "--config", str(config)]) == 1
    assert "per_device_train_batch_size=0" in error_line(capsys)


def test_dataloader_worker_errors_keep_only_their_message(tmp_path):
    from torch._utils import ExceptionWrapper

    path = tmp_path / "x.png"
    path.write_bytes(b"broken")
    try:
        try:
            Image.open(path)
        except OSError as error:
            raise ValueError(f"cannot read image {path}: {error}") from error
    except ValueError:
        wrapped = ExceptionWrapper(where="in DataLoader worker process 0")
    with pytest.raises(ValueError) as raised:
        wrapped.reraise()
    assert "Original Traceback" in str(raised.value)
    assert _error_line(raised.value) == f"cannot read image {path}: cannot identify image file '{path}'"
