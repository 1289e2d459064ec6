import json

import pytest
import torch
from safetensors.torch import load_file

from grpo_rm import methods
from grpo_rm.config import RunConfig
from grpo_rm.reporting import read_metrics_log
from grpo_rm.commands.train import run_training
from grpo_rm.models import EncoderWithHead
from grpo_rm.runtime import finish_trackers
from grpo_rm.training import train

TRL_METRICS = {"reward", "reward_std", "frac_reward_zero_std", "clip_ratio/low_mean", "clip_ratio/high_mean",
               "clip_ratio/region_mean", "entropy", "grad_norm", "loss", "learning_rate"}


def tiny_config(model, output_dir, **overrides):
    values = dict(model_name_or_path=model, dataset_name="digits", output_dir=str(output_dir),
                  max_train_samples=48, max_eval_samples=24, per_device_train_batch_size=16,
                  num_train_epochs=2, logging_steps=1, learning_rate=1e-3, disable_tqdm=True, hflip_prob=0.0,
                  report_to="none")
    values.update(overrides)
    return RunConfig.from_dict(values)


@pytest.mark.parametrize("method", ["grpo-rm", "ce"])
def test_run_writes_models_results_and_logs(tmp_path, tiny_dinov2, method):
    results = run_training(tiny_config(tiny_dinov2, tmp_path, method=method, report_to="tensorboard"))
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


@pytest.mark.parametrize("method, policies", [("ce", 0), ("grpo-rm", 1)])
def test_only_grpo_rm_builds_an_old_policy(tmp_path, tiny_dinov2, monkeypatch, method, policies):
    built = []
    original = methods.FrozenPolicy.__init__
    monkeypatch.setattr(methods.FrozenPolicy, "__init__",
                        lambda self, *args, **kwargs: (built.append(1), original(self, *args, **kwargs))[1])
    trained = train(tiny_config(tiny_dinov2, tmp_path, method=method, max_train_steps=1))
    finish_trackers(trained.accelerator)
    assert len(built) == policies and trained.state.step == 1


def test_train_only_trains_and_returns_what_it_trained(tmp_path, tiny_dinov2):
    trained = train(tiny_config(tiny_dinov2, tmp_path))
    finish_trackers(trained.accelerator)
    written = sorted(p.name for p in tmp_path.iterdir())
    # The metrics log, the trackers, the config and the epoch validation chose; results, the final model and cards
    # are the train command's.
    assert written == ["best_model", "metrics.jsonl", "run_config.yaml"], written
    assert isinstance(trained.model, EncoderWithHead) and trained.model.training
    assert trained.state.step == trained.metrics["total_steps"] == 6 and trained.metrics["model_epoch"] == 2
    assert trained.state.validation_metrics["validation_samples"] == 24


def test_load_best_model_at_end_returns_the_epoch_validation_chose(tmp_path, tiny_dinov2, monkeypatch):
    # Validation scores that fall with every epoch: the first epoch is the best, whatever the model learns.
    from grpo_rm.tasks import ImageClassificationTask

    original = ImageClassificationTask.evaluate

    def falling(self, model, split, *args, **kwargs):
        metrics = original(self, model, split, *args, **kwargs)
        if split == "validation":
            falling.epochs += 1
            metrics["accuracy"] = 1.0 / falling.epochs
        return metrics

    falling.epochs = 0
    monkeypatch.setattr(ImageClassificationTask, "evaluate", falling)
    results = run_training(tiny_config(tiny_dinov2, tmp_path, num_train_epochs=3, load_best_model_at_end=True))
    assert results["best_epoch"] == results["model_epoch"] == 1
    assert results["validation_accuracy"] == results["best_validation_accuracy"] == 1.0
    best, final = load_file(tmp_path / "best_model" / "head.safetensors"), load_file(tmp_path / "head.safetensors")
    assert all(torch.equal(best[name], final[name]) for name in best)
    assert (tmp_path / "best_model" / "model.safetensors").read_bytes() == (tmp_path / "model.safetensors").read_bytes()


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
