import pytest

from grpo_rm.config import RunConfig, parse_run_config


def test_yaml_values_are_typed_and_cli_overrides_them(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("learning_rate: 1e-4\nmethod: ce\nkeep_classes: [0, 1]\nfreeze_backbone: true\nepsilon: 0.1\n")
    config = parse_run_config(["--config", str(path), "--epsilon", "0.3"])
    assert config.training.learning_rate == pytest.approx(1e-4)
    assert config.objective.method == "ce"
    assert config.data.keep_classes == ["0", "1"]
    assert config.model.freeze_backbone is True
    assert config.objective.epsilon == 0.3


def test_unknown_key_lists_valid_keys(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("learning_rat: 0.1\n")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['learning_rat'\].*valid keys are: .*learning_rate"):
        parse_run_config(["--config", str(path)])
    with pytest.raises(ValueError, match="unknown key"):
        RunConfig.from_dict({"epochs": 3})


def test_missing_config_file():
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        parse_run_config(["--config", "nope.yaml"])


def test_invalid_values_are_named():
    with pytest.raises(ValueError, match="reward='accuracy-only'"):
        RunConfig.from_dict({"reward": "accuracy-only"})
    with pytest.raises(ValueError, match="old_policy_refresh='sometimes'"):
        RunConfig.from_dict({"old_policy_refresh": "sometimes"})
    with pytest.raises(SystemExit):
        parse_run_config(["--method", "ppo"])


def test_saved_config_round_trips(tmp_path):
    config = RunConfig.from_dict({"model_name_or_path": "m", "old_policy_refresh": "50", "learning_rate": 1e-5,
                                  "random_resized_crop_scale": [0.5, 1.0]})
    config.save(tmp_path)
    loaded = RunConfig.from_yaml(tmp_path / "run_config.yaml")
    assert loaded == config
    assert loaded.objective.refresh_every_steps == 50
