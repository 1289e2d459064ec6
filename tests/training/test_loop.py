import json

import pytest
import torch
from safetensors.torch import load_file

from grpo_rm import methods
from grpo_rm.config import RunConfig
from grpo_rm.reporting import read_metrics_log
from grpo_rm.commands.train import run_training

TRL_METRICS = {"reward", "reward_std", "frac_reward_zero_std", "clip_ratio/low_mean", "clip_ratio/high_mean",
               "clip_ratio/region_mean", "entropy", "grad_norm", "loss", "learning_rate"}


def tiny_config(model, output_dir, **overrides):
    values = dict(model_name_or_path=model, dataset_name="digits", output_dir=str(output_dir),
                  max_train_samples=48, max_eval_samples=24, per_device_train_batch_size=16,
                  num_train_epochs=2, logging_steps=1, learning_rate=1e-3, disable_tqdm=True, hflip_prob=0.0)
    values.update(overrides)
    return RunConfig.from_dict(values)


@pytest.mark.parametrize("method", ["grpo-rm", "ce"])
def test_run_writes_models_results_and_logs(tmp_path, tiny_dinov2, method):
    results = run_training(tiny_config(tiny_dinov2, tmp_path, method=method))
    for name in ("all_results.json", "train_results.json", "eval_results.json", "metrics.jsonl",
                 "run_config.yaml", "model.safetensors", "config.json", "preprocessor_config.json",
                 "head.safetensors", "head_config.json", "best_model/head.safetensors", "best_model/run_config.yaml"):
        assert (tmp_path / name).is_file(), name
    assert list((tmp_path / "tensorboard").rglob("events.out.tfevents.*"))
    all_results = json.loads((tmp_path / "all_results.json").read_text())
    assert all_results["eval_accuracy"] == results["eval_accuracy"]
    assert {"eval_accuracy", "eval_loss", "train_runtime", "train_loss", "epoch", "best_validation_accuracy"} <= set(all_results)
    assert all_results["total_steps"] == 6 and all_results["eval_samples"] == 24
    records = read_metrics_log(tmp_path / "metrics.jsonl")
    train_keys = set(records[0])
    expected = TRL_METRICS if method == "grpo-rm" else {"loss", "grad_norm", "entropy", "learning_rate"}
    assert expected <= train_keys
    assert [r["epoch"] for r in records if "validation_accuracy" in r] == [1, 2]


def test_seeded_runs_are_identical(tmp_path, tiny_dinov2):
    first = run_training(tiny_config(tiny_dinov2, tmp_path / "a", random_resized_crop_scale=[0.5, 1.0]))
    second = run_training(tiny_config(tiny_dinov2, tmp_path / "b", random_resized_crop_scale=[0.5, 1.0]))
    drop = ("samples_per_second", "data_wait_share")
    strip = lambda path: [{k: v for k, v in r.items() if k not in drop} for r in read_metrics_log(path)]  # noqa: E731
    assert strip(tmp_path / "a" / "metrics.jsonl") == strip(tmp_path / "b" / "metrics.jsonl")
    assert first["eval_loss"] == second["eval_loss"]
    run_training(tiny_config(tiny_dinov2, tmp_path / "c", random_resized_crop_scale=[0.5, 1.0], seed=7))
    assert strip(tmp_path / "c" / "metrics.jsonl") != strip(tmp_path / "a" / "metrics.jsonl")


@pytest.mark.parametrize("refresh, expected", [("epoch", 2), ("2", 3)])
def test_old_policy_refresh_schedule(tmp_path, tiny_dinov2, monkeypatch, refresh, expected):
    calls = []
    original = methods.FrozenPolicy.refresh
    monkeypatch.setattr(methods.FrozenPolicy, "refresh", lambda self, model: (calls.append(1), original(self, model)))
    run_training(tiny_config(tiny_dinov2, tmp_path, old_policy_refresh=refresh))
    assert len(calls) == expected  # 6 steps over 2 epochs


def test_cross_entropy_never_builds_an_old_policy(tmp_path, tiny_dinov2, monkeypatch):
    def refuse(self, model):
        raise AssertionError("old policy built for ce")

    monkeypatch.setattr(methods.FrozenPolicy, "__init__", refuse)
    run_training(tiny_config(tiny_dinov2, tmp_path, method="ce"))


def test_freeze_backbone_trains_only_the_head(tmp_path, tiny_dinov2):
    run_training(tiny_config(tiny_dinov2, tmp_path, freeze_backbone=True))
    before = load_file(f"{tiny_dinov2}/model.safetensors")
    after = load_file(tmp_path / "model.safetensors")
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    head = load_file(tmp_path / "head.safetensors")
    assert head["layers.bias"].abs().sum() > 0  # the head started at zero bias and moved


def test_finished_run_is_not_overwritten(tmp_path, tiny_dinov2):
    run_training(tiny_config(tiny_dinov2, tmp_path, max_train_steps=1))
    before = (tmp_path / "all_results.json").read_text()
    with pytest.raises(FileExistsError, match="--overwrite_output_dir"):
        run_training(tiny_config(tiny_dinov2, tmp_path, max_train_steps=1))
    assert (tmp_path / "all_results.json").read_text() == before


def test_kl_regularised_run_logs_kl(tmp_path, tiny_dinov2):
    run_training(tiny_config(tiny_dinov2, tmp_path, beta=0.1, max_train_steps=2))
    assert "kl" in read_metrics_log(tmp_path / "metrics.jsonl")[0]


def test_a_reward_callable_can_be_trained_with(tmp_path, tiny_dinov2):
    seen = []

    def reward(old_probs, targets):
        seen.append(old_probs.shape)
        return torch.nn.functional.one_hot(targets, old_probs.shape[-1]).float() - old_probs

    run_training(tiny_config(tiny_dinov2, tmp_path, max_train_steps=2), method=methods.GrpoRmMethod(reward=reward))
    assert seen and seen[0][1] == 10
