"""--head_warmup_epochs: LP-FT's probing stage before the method, for both methods."""

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel

from grpo_rm import methods
from grpo_rm.config import RunConfig
from grpo_rm.reporting import read_metrics_log
from grpo_rm.commands.train import run_training
from grpo_rm.training import steps

# 48 digits, batch 16: 3 steps an epoch.
RUN = dict(dataset_name="digits", max_train_samples=48, max_eval_samples=24, per_device_train_batch_size=16,
           logging_steps=1, learning_rate=1e-3, head_learning_rate=1e-2, disable_tqdm=True, report_to="none",
           random_resized_crop_scale=[0.5, 1.0], hflip_prob=0.5)


def config(model, output_dir, **overrides):
    return RunConfig.from_dict({**RUN, "model_name_or_path": model, "output_dir": str(output_dir), **overrides})


def checkpoint_weights(checkpoint):
    return load_file(checkpoint / "model.safetensors")


def test_warmup_trains_the_head_as_a_frozen_encoder_run_would_and_leaves_the_encoder(tmp_path, tiny_dinov2):
    """After one warm-up epoch the head equals that of a --freeze_backbone cross-entropy run at a constant rate,
    and the encoder is the starting one."""
    run_training(config(tiny_dinov2, tmp_path / "warmup", method="grpo-rm", head_warmup_epochs=1, num_train_epochs=1,
                 checkpointing_steps="epoch"))
    probe = config(tiny_dinov2, tmp_path / "probe", method="ce", freeze_backbone=True, num_train_epochs=1,
                   learning_rate=1e-2, lr_scheduler_type="constant", warmup_ratio=0.0)
    run_training(probe)
    after_warmup = checkpoint_weights(tmp_path / "warmup" / "checkpoint-3")
    encoder_before = AutoModel.from_pretrained(tiny_dinov2).state_dict()
    for name, tensor in encoder_before.items():
        assert torch.equal(after_warmup[f"encoder.model.{name}"], tensor), name
    head = load_file(tmp_path / "probe" / "head.safetensors")
    for name, tensor in head.items():
        torch.testing.assert_close(after_warmup[f"head.{name}"], tensor, rtol=1e-5, atol=1e-6)
    final = AutoModel.from_pretrained(tmp_path / "warmup").state_dict()  # then GRPO-RM moved the encoder
    assert not all(torch.equal(final[name], tensor) for name, tensor in encoder_before.items())


def test_learning_rates_and_losses_through_the_two_stages(tmp_path, tiny_dinov2):
    run_training(config(tiny_dinov2, tmp_path, method="grpo-rm", head_warmup_epochs=2, num_train_epochs=2, warmup_ratio=0.5))
    records = [r for r in read_metrics_log(tmp_path / "metrics.jsonl") if "loss" in r]
    assert [r["step"] for r in records] == list(range(1, 13))
    warmup, method = records[:6], records[6:]
    # Each record logs the rate of the next step: the last warm-up one logs the method's first (0, warming up).
    assert all(r["learning_rate"] == 0.0 and r["head_learning_rate"] == 1e-2 for r in warmup[:-1])
    assert warmup[-1]["head_learning_rate"] == 0.0
    assert all("reward" not in r for r in warmup) and all("reward" in r for r in method)
    # The method's own schedule starts after the warm-up: 3 linear warm-up steps of its 6, then cosine decay.
    assert method[0]["learning_rate"] == pytest.approx(1e-3 / 3)
    assert method[2]["learning_rate"] == pytest.approx(1e-3)
    assert method[-1]["learning_rate"] < method[3]["learning_rate"]


@pytest.mark.parametrize("refresh, expected", [("epoch", 2), ("2", 1 + 3)])
def test_old_policy_starts_from_the_warmed_up_model(tmp_path, tiny_dinov2, monkeypatch, refresh, expected):
    calls = []
    original = methods.FrozenPolicy.refresh
    monkeypatch.setattr(methods.FrozenPolicy, "refresh", lambda self, model: (calls.append(1), original(self, model)))
    run_training(config(tiny_dinov2, tmp_path, method="grpo-rm", head_warmup_epochs=1, num_train_epochs=2,
                 old_policy_refresh=refresh))
    assert len(calls) == expected  # once as the method starts, then per epoch or every 2 of its 6 steps


def test_reference_policy_is_the_warmed_up_model(tmp_path, tiny_dinov2, monkeypatch):
    """With beta > 0 the KL anchors to the model the method starts from: at its first step the ratio to the
    reference is 1, so the KL is 0."""
    kls = []
    original = methods.GrpoRmMethod.__call__

    def record(self, logits, targets, old_logits=None, ref_logits=None):
        output = original(self, logits, targets, old_logits, ref_logits)
        kls.append(float(output.metrics["kl"]))
        return output

    monkeypatch.setattr(methods.GrpoRmMethod, "__call__", record)
    run_training(config(tiny_dinov2, tmp_path, method="grpo-rm", beta=0.1, head_warmup_epochs=1, num_train_epochs=1))
    assert kls[0] == pytest.approx(0.0, abs=1e-6) and kls[-1] > 1e-6


def test_resume_inside_the_warmup_is_bitwise_the_uninterrupted_run(tmp_path, tiny_dinov2, monkeypatch):
    extra = dict(method="grpo-rm", head_warmup_epochs=2, num_train_epochs=1, checkpointing_steps=2)
    run_training(config(tiny_dinov2, tmp_path / "reference", **extra))
    original, calls = steps.head_warmup_step, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:  # after checkpoint-4, in the second warm-up epoch
            raise KeyboardInterrupt("simulated kill")
        return original(*args, **kwargs)

    monkeypatch.setattr(steps, "head_warmup_step", failing)
    with pytest.raises(KeyboardInterrupt):
        run_training(config(tiny_dinov2, tmp_path / "resumed", **extra))
    monkeypatch.undo()
    run_training(config(tiny_dinov2, tmp_path / "resumed", resume_from_checkpoint="latest", **extra))
    for name in ("model.safetensors", "head.safetensors"):
        assert (tmp_path / "resumed" / name).read_bytes() == (tmp_path / "reference" / name).read_bytes()
