import pytest

from grpo_rm.config import RunConfig, parse_run_config
from grpo_rm.methods import RefreshSchedule


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
    with pytest.raises(ValueError, match=r"group_weighting='sampled' in config is not one of \['uniform', 'old_policy'\]"):
        RunConfig.from_dict({"group_weighting": "sampled"})
    with pytest.raises(ValueError, match=r"scale_rewards='token' in config is not one of \['group', 'batch', 'none'\]"):
        RunConfig.from_dict({"scale_rewards": "token"})
    with pytest.raises(ValueError, match="epsilon_high=0.0 in config is out of range: it must be > 0"):
        RunConfig.from_dict({"epsilon_high": 0.0})


def test_objective_variants_default_to_the_paper_and_parse_from_the_command_line(tmp_path):
    default = RunConfig().objective
    assert (default.epsilon_high, default.scale_rewards, default.group_weighting, default.reward) == (
        None, "group", "uniform", "accuracy+uniformity")
    config = parse_run_config(["--epsilon_high", "0.28", "--scale_rewards", "batch", "--group_weighting",
                               "old_policy", "--reward", "margin"])
    objective = config.objective
    assert (objective.epsilon_high, objective.scale_rewards, objective.group_weighting, objective.reward) == (
        0.28, "batch", "old_policy", "margin")
    config.save(tmp_path)
    assert RunConfig.from_yaml(tmp_path / "run_config.yaml") == config


def test_saved_config_round_trips(tmp_path):
    config = RunConfig.from_dict({"model_name_or_path": "m", "old_policy_refresh": "50", "learning_rate": 1e-5,
                                  "random_resized_crop_scale": [0.5, 1.0]})
    config.save(tmp_path)
    loaded = RunConfig.from_yaml(tmp_path / "run_config.yaml")
    assert loaded == config
    assert RefreshSchedule.parse(loaded.objective.old_policy_refresh).every_steps == 50


def test_field_options_parse_as_grpo_rm_train_does():
    import argparse

    from grpo_rm.config import EvaluationArguments, ModelArguments, field_options_parser

    flags = ["--knn_k", "3", "5", "--feature_type", "cls+mean", "--model_name_or_path", "m"]
    parser = argparse.ArgumentParser(parents=[
        field_options_parser(EvaluationArguments, ["knn_k", "feature_type", "seg_inference"], aliases={"knn_k": ["k"]},
                             from_run=["seg_inference"]),
        field_options_parser(ModelArguments, ["model_name_or_path"], required=["model_name_or_path"]),
    ])
    parsed, trained = parser.parse_args(flags), parse_run_config(flags)
    assert parsed.knn_k == trained.evaluation.knn_k == [3, 5]
    assert parsed.feature_type == trained.evaluation.feature_type == "cls+mean"
    assert parsed.seg_inference is None  # from_run: unset unless given
    assert parser.parse_args(["--k", "7", "--model_name_or_path", "m"]).knn_k == [7]
    with pytest.raises(SystemExit):
        parser.parse_args(["--knn_k", "3"])  # model_name_or_path is required
    with pytest.raises(SystemExit):
        parser.parse_args(["--feature_type", "sum", "--model_name_or_path", "m"])


def test_paper_preset_is_method_md_and_the_default():
    from grpo_rm.methods import OBJECTIVE_PRESETS

    # METHOD.md: epsilon 0.2, symmetric clip, beta 0, accuracy+uniformity with w = 1, group-std advantages,
    # uniform class weights, refresh at each epoch start.
    paper = dict(epsilon=0.2, epsilon_high=None, beta=0.0, reward="accuracy+uniformity", uniformity_weight=1.0,
                 scale_rewards="group", group_weighting="uniform", old_policy_refresh="epoch")
    assert OBJECTIVE_PRESETS["paper"] == paper
    default = RunConfig().objective
    assert default.objective_preset == "paper"
    assert {key: getattr(default, key) for key in paper} == paper


def test_objective_preset_sets_its_values_and_explicit_flags_override_them(tmp_path):
    from grpo_rm.methods import OBJECTIVE_PRESETS, RECOMMENDED_OBJECTIVE_PRESET

    objective = parse_run_config(["--objective_preset", "clip-higher"]).objective
    assert (objective.epsilon, objective.epsilon_high, objective.reward) == (0.2, 0.28, "accuracy+uniformity")
    config = parse_run_config(["--objective_preset", "clip-higher", "--epsilon_high", "0.3", "--epsilon", "0.1"])
    assert (config.objective.epsilon, config.objective.epsilon_high) == (0.1, 0.3)
    recommended = parse_run_config(["--objective_preset", "recommended"]).objective
    for key, value in OBJECTIVE_PRESETS[RECOMMENDED_OBJECTIVE_PRESET].items():
        assert getattr(recommended, key) == value, key
    # The run config keeps the preset's name and every resolved value.
    config.save(tmp_path)
    saved = (tmp_path / "run_config.yaml").read_text()
    assert "objective_preset: clip-higher" in saved and "epsilon_high: 0.3" in saved and "reward: accuracy+uniformity" in saved
    assert RunConfig.from_yaml(tmp_path / "run_config.yaml") == config
    with pytest.raises(ValueError, match="objective_preset='dapo' in config is not one of"):
        RunConfig.from_dict({"objective_preset": "dapo"})


def test_changing_the_preset_keeps_what_was_set_on_top_of_the_old_one():
    base = parse_run_config(["--objective_preset", "clip-higher", "--epsilon", "0.1"])
    margin = base.with_overrides(objective_preset="margin").objective
    assert (margin.reward, margin.epsilon_high, margin.epsilon) == ("margin", None, 0.1)
    step = RunConfig().with_overrides(objective_preset="step-refresh").objective
    assert (step.epsilon, step.old_policy_refresh) == (0.1, "20")
