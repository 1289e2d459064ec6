"""Runs that survive: checkpoints, exact resume after a crash or SIGTERM, refusal of unsafe resumes and pickles."""

import json
import os
import pickle
import signal

import pytest
from safetensors.torch import load_file

from grpo_rm.cli import main
from grpo_rm.config import RunConfig
from grpo_rm.commands.train import run_training
from grpo_rm.training import TrainingPreempted, steps
from grpo_rm.training.checkpoints import list_checkpoints

# 96 digits, batch 16: 6 steps an epoch, 3 epochs; random crops and flips, so the data position matters.
RUN = dict(dataset_name="digits", max_train_samples=96, max_eval_samples=24, per_device_train_batch_size=16,
           num_train_epochs=3, logging_steps=1, learning_rate=1e-3, disable_tqdm=True, report_to="none",
           random_resized_crop_scale=[0.5, 1.0], hflip_prob=0.5)


def config(model, output_dir, **overrides):
    return RunConfig.from_dict({**RUN, "model_name_or_path": model, "output_dir": str(output_dir), **overrides})


def weights(run_dir):
    return {name: (run_dir / name).read_bytes() for name in ("model.safetensors", "head.safetensors")}


def training_records(run_dir):
    return [{k: v for k, v in json.loads(line).items() if k not in ("samples_per_second", "data_wait_share")}
            for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def crash_at_step(monkeypatch, step):
    """Make the training step raise when it is asked for optimizer step ``step`` (a kill after a checkpoint)."""
    original, calls = steps.training_step, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == step:
            raise KeyboardInterrupt("simulated kill")
        return original(*args, **kwargs)

    monkeypatch.setattr(steps, "training_step", failing)


@pytest.mark.parametrize("method, workers, accumulation, train_last_n_blocks",
                         [("grpo-rm", 0, 1, None), ("ce", 2, 1, None), ("grpo-rm", 0, 2, 1)])
def test_resume_after_a_crash_is_bitwise_the_uninterrupted_run(tmp_path, tiny_dinov2, monkeypatch, method, workers,
                                                               accumulation, train_last_n_blocks):
    extra = dict(method=method, dataloader_num_workers=workers, checkpointing_steps=4,
                 per_device_train_batch_size=16 // accumulation, gradient_accumulation_steps=accumulation,
                 train_last_n_blocks=train_last_n_blocks)
    reference = run_training(config(tiny_dinov2, tmp_path / "reference", **extra))

    # After checkpoint-8, which is mid-epoch 2 (old policy from epoch start): the 11th batch (or micro-batch pair).
    crash_at_step(monkeypatch, 11 * accumulation)
    with pytest.raises(KeyboardInterrupt):
        run_training(config(tiny_dinov2, tmp_path / "resumed", **extra))
    assert [p.name for p in list_checkpoints(tmp_path / "resumed")] == ["checkpoint-4", "checkpoint-8"]
    if method == "grpo-rm":  # with a frozen prefix, the old policy is a copy of the block and norm after it and the head
        saved = load_file(tmp_path / "resumed" / "checkpoint-8" / "old_policy.safetensors")
        assert {name.split(".")[0] for name in saved} == ({"blocks", "norm", "head"} if train_last_n_blocks else
                                                          {"encoder", "head"})
    monkeypatch.undo()
    resumed = run_training(config(tiny_dinov2, tmp_path / "resumed", resume_from_checkpoint="latest", **extra))

    assert weights(tmp_path / "resumed") == weights(tmp_path / "reference")
    assert resumed["eval_loss"] == reference["eval_loss"] and resumed["total_steps"] == 18
    assert resumed["resumed_from_checkpoint"].endswith("checkpoint-8")
    records = training_records(tmp_path / "resumed")
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 19))  # nothing lost, nothing twice
    for got, want in zip(records, training_records(tmp_path / "reference")):
        assert got.keys() == want.keys()
        for key in got:
            assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-7), (got["step"], key)


def test_preemption_from_python_raises_after_checkpointing(tmp_path, tiny_dinov2, monkeypatch):
    original = steps.training_step

    def signal_at_third(*args, **kwargs):
        signal_at_third.calls += 1
        if signal_at_third.calls == 3:
            os.kill(os.getpid(), signal.SIGUSR1)
        return original(*args, **kwargs)

    signal_at_third.calls = 0
    monkeypatch.setattr(steps, "training_step", signal_at_third)
    with pytest.raises(TrainingPreempted) as raised:
        run_training(config(tiny_dinov2, tmp_path))
    assert raised.value.checkpoint.name == "checkpoint-3"
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL  # the handler is removed again


def test_resume_with_other_settings_is_refused_with_the_keys(tmp_path, tiny_dinov2):
    run_training(config(tiny_dinov2, tmp_path, checkpointing_steps=5, max_train_steps=6))
    with pytest.raises(ValueError, match=r"learning_rate: 0.001 in the checkpoint, 0.01 now"):
        run_training(config(tiny_dinov2, tmp_path, learning_rate=1e-2, resume_from_checkpoint="latest"))
    # Safe changes (logging, more steps) are allowed.
    results = run_training(config(tiny_dinov2, tmp_path, checkpointing_steps=5, max_train_steps=8, logging_steps=2,
                           resume_from_checkpoint=str(tmp_path / "checkpoint-5")))
    assert results["total_steps"] == 8


def test_a_policy_of_another_shape_is_refused_with_the_file_named(tmp_path, tiny_dinov2):
    """A checkpoint whose old policy copies the whole model (as grpo-rm wrote before the frozen blocks were shared)
    cannot resume a run whose old policy is the trainable tail: a clear error, and the checkpoint is kept."""
    from safetensors.torch import load_file, save_file

    run_training(config(tiny_dinov2, tmp_path, train_last_n_blocks=1, checkpointing_steps=2, max_train_steps=3))
    policy_file = tmp_path / "checkpoint-2" / "old_policy.safetensors"
    whole_model = {f"encoder.model.{name}": tensor for name, tensor in load_file(policy_file).items()}
    save_file(whole_model, policy_file)
    with pytest.raises(ValueError, match=r"checkpoint-2/old_policy.safetensors does not hold the frozen policy "
                                         r"this run builds .* start a new run in another --output_dir"):
        run_training(config(tiny_dinov2, tmp_path, train_last_n_blocks=1, checkpointing_steps=2, max_train_steps=3,
                     resume_from_checkpoint=str(tmp_path / "checkpoint-2")))
    assert load_file(policy_file).keys() == whole_model.keys()


def test_non_empty_output_dir_is_refused_unless_asked(tmp_path, tiny_dinov2):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty .*notes.txt.*--overwrite_output_dir"):
        run_training(config(tiny_dinov2, tmp_path, max_train_steps=1))
    assert (tmp_path / "notes.txt").read_text() == "mine" and not (tmp_path / "run_config.yaml").exists()
    results = run_training(config(tiny_dinov2, tmp_path, max_train_steps=1, resume_from_checkpoint="latest"))
    assert results["total_steps"] == 1  # latest with no checkpoint yet: a fresh start


def test_partial_checkpoints_are_never_latest_and_old_ones_rotate(tmp_path, tiny_dinov2):
    run_training(config(tiny_dinov2, tmp_path, checkpointing_steps=2, save_total_limit=2, max_train_steps=9))
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-6", "checkpoint-8"]
    # A kill during a write leaves a staging folder, never a checkpoint-<step> without its state.
    (tmp_path / ".checkpoint-10.tmp").mkdir()
    (tmp_path / "checkpoint-12").mkdir()
    assert list_checkpoints(tmp_path)[-1].name == "checkpoint-8"


def test_a_pickle_in_a_checkpoint_is_rejected_and_never_runs(tmp_path, tiny_dinov2):
    run_training(config(tiny_dinov2, tmp_path / "run", checkpointing_steps=2, max_train_steps=3))
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    checkpoint = tmp_path / "run" / "checkpoint-2"
    for name in ("optimizer.bin", "random_states_0.pkl"):
        (checkpoint / name).write_bytes(pickle.dumps(Payload()))
    with pytest.raises(pickle.UnpicklingError):
        run_training(config(tiny_dinov2, tmp_path / "run", checkpointing_steps=2, max_train_steps=3,
                     resume_from_checkpoint=str(checkpoint)))
    assert not marker.exists()


def test_a_pickled_model_in_a_run_directory_is_not_loaded(tmp_path, tiny_dinov2, capsys):

    run_training(config(tiny_dinov2, tmp_path / "run", max_train_steps=1))
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (tmp_path / "run" / "model.safetensors").unlink()
    (tmp_path / "run" / "pytorch_model.bin").write_bytes(pickle.dumps(Payload()))
    assert main(["eval", "--model_name_or_path", str(tmp_path / "run")]) == 1
    assert "safetensors" in capsys.readouterr().err
    assert not marker.exists()


def test_overwriting_a_run_drops_its_checkpoints(tmp_path, tiny_dinov2):
    run_training(config(tiny_dinov2, tmp_path, checkpointing_steps=2, max_train_steps=5))
    assert list_checkpoints(tmp_path)
    run_training(config(tiny_dinov2, tmp_path, max_train_steps=1, overwrite_output_dir=True))
    assert not list_checkpoints(tmp_path)  # "latest" can no longer resume the replaced run
