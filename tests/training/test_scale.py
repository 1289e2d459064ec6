"""Memory and batch size: gradient accumulation, a frozen encoder shared by the policies, checkpointing."""

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel

from grpo_rm import methods
from grpo_rm.config import RunConfig
from grpo_rm.models import EncoderWithHead
from grpo_rm.commands.train import run_training

# No augmentation and no dropout: one batch of 16 and two micro-batches of 8 see the same data.
RUN = dict(dataset_name="digits", max_train_samples=64, max_eval_samples=16, num_train_epochs=2, logging_steps=1,
           learning_rate=1e-3, disable_tqdm=True, report_to="none", random_resized_crop_scale=[1.0, 1.0],
           hflip_prob=0.0, old_policy_refresh="2")


def run(model, output_dir, **overrides):
    return run_training(RunConfig.from_dict({**RUN, "model_name_or_path": model, "output_dir": str(output_dir), **overrides}))


def tensors(run_dir):
    return {**load_file(run_dir / "model.safetensors"), **load_file(run_dir / "head.safetensors")}


@pytest.mark.parametrize("method", ["grpo-rm", "ce"])
def test_accumulation_equals_one_big_batch(tmp_path, tiny_dinov2, method):
    big = run(tiny_dinov2, tmp_path / "big", method=method, per_device_train_batch_size=16)
    accumulated = run(tiny_dinov2, tmp_path / "acc", method=method, per_device_train_batch_size=8,
                      gradient_accumulation_steps=2)
    assert accumulated["total_steps"] == big["total_steps"] == 8  # optimizer steps; refresh and logs count these
    want, got = tensors(tmp_path / "big"), tensors(tmp_path / "acc")
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-4, atol=1e-6)
    assert accumulated["train_loss"] == pytest.approx(big["train_loss"], rel=1e-4)


@pytest.mark.parametrize("frozen, shares, copied_blocks", [(dict(freeze_backbone=True), "encoder", []),
                                                          (dict(train_last_n_blocks=1), "prefix", [1])])
def test_the_frozen_part_runs_once_and_the_policies_copy_only_the_rest(tmp_path, tiny_dinov2, monkeypatch, frozen,
                                                                       shares, copied_blocks):
    built = []
    original = methods.FrozenPolicy.__init__

    def record(self, model, shares=None, compile_mode=False):
        original(self, model, shares, compile_mode)
        built.append(self)

    monkeypatch.setattr(methods.FrozenPolicy, "__init__", record)
    shared = run(tiny_dinov2, tmp_path / "shared", beta=0.1, per_device_train_batch_size=16, **frozen)
    assert [p.shares for p in built] == [shares, shares]  # old and reference policy
    transformer = AutoModel.from_pretrained(tiny_dinov2)
    copied = [transformer.encoder.layer[i] for i in copied_blocks] + ([transformer.layernorm] if copied_blocks else [])
    head = 16 * 10 + 10  # the linear head on 10 digits
    assert sum(t.numel() for t in built[0].model.state_dict().values()) == head + sum(
        p.numel() for module in copied for p in module.parameters())

    monkeypatch.setattr(EncoderWithHead, "frozen_part", property(lambda self: None))
    full = run(tiny_dinov2, tmp_path / "full", beta=0.1, per_device_train_batch_size=16, **frozen)
    assert built[-1].shares is None
    for name in ("head.safetensors", "model.safetensors"):
        assert (tmp_path / "shared" / name).read_bytes() == (tmp_path / "full" / name).read_bytes()
    assert shared["eval_loss"] == full["eval_loss"]


def test_gradient_checkpointing_gives_the_same_training(tmp_path, tiny_dinov2):
    plain = run(tiny_dinov2, tmp_path / "plain", per_device_train_batch_size=16, max_train_steps=3)
    checkpointed = run(tiny_dinov2, tmp_path / "ckpt", per_device_train_batch_size=16, max_train_steps=3,
                       gradient_checkpointing=True)
    for name, tensor in tensors(tmp_path / "plain").items():
        torch.testing.assert_close(tensors(tmp_path / "ckpt")[name], tensor, rtol=1e-5, atol=1e-6)
    assert checkpointed["train_loss"] == pytest.approx(plain["train_loss"], rel=1e-5)


def test_torch_compile_trains_like_eager(tmp_path, tiny_dinov2, monkeypatch):
    # Inductor's code generation takes a minute on CPU and is PyTorch's to test: here every torch.compile call (the
    # model's, through accelerate's dynamo plugin, and the frozen policies') uses the eager backend, which still
    # captures them with dynamo as --torch_compile does, and runs the captured graphs.
    original, compiled_modules = torch.compile, []

    def eager_backend(module, **kwargs):
        compiled_modules.append(type(module).__name__)
        return original(module, **{**kwargs, "backend": "eager"})

    monkeypatch.setattr(torch, "compile", eager_backend)
    # Evaluation batches of the training batch's shape: dynamo then recompiles only for no_grad, not for new shapes.
    same_shapes = dict(per_device_train_batch_size=16, per_device_eval_batch_size=16, max_train_steps=2)
    eager = run(tiny_dinov2, tmp_path / "eager", **same_shapes)
    compiled = run(tiny_dinov2, tmp_path / "compiled", torch_compile=True, **same_shapes)
    assert sorted(compiled_modules) == ["EncoderWithHead", "EncoderWithHead"]  # the model and the old policy
    assert compiled["train_loss"] == pytest.approx(eager["train_loss"], rel=1e-4, abs=1e-7)
    for name, tensor in tensors(tmp_path / "eager").items():  # saved under their plain names
        torch.testing.assert_close(tensors(tmp_path / "compiled")[name], tensor, rtol=1e-4, atol=1e-5)
