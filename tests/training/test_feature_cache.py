"""--cache_frozen_features: a frozen encoder reads the training set once, and the head trains as on the inputs."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from grpo_rm.commands.compare import plan_comparison
from grpo_rm.config import RunConfig
from grpo_rm.models.encoders import POOLING_MODES, EncoderOutput, pool
from grpo_rm.models.vision import VisionEncoder
from grpo_rm.tasks import ImageClassificationTask
from grpo_rm.commands.train import run_training
from grpo_rm.training import steps
from tests.conftest import CACHED_FEATURES_RUN
from tests.training.test_checkpoints import crash_at_step, training_records, weights

# 48 digits (square images), batch 16: 3 steps an epoch; nothing random in the training inputs.
RUN = dict(dataset_name="digits", max_train_samples=48, max_eval_samples=24, per_device_train_batch_size=16,
           num_train_epochs=2, logging_steps=1, learning_rate=1e-2, disable_tqdm=True, report_to="none",
           freeze_backbone=True, random_resized_crop_scale=[1.0, 1.0], hflip_prob=0.0)
TEXT = dict(task="text-classification", max_train_samples=None, max_eval_samples=None, pooling="mean")


def config(model, output_dir, **overrides):
    return RunConfig.from_dict({**RUN, "model_name_or_path": model, "output_dir": str(output_dir), **overrides})


def assert_same_training(cached_dir, plain_dir, cached, plain):
    """Same head within float tolerance (the encoder ran on other batches), same evaluation, same losses."""
    want, got = load_file(plain_dir / "head.safetensors"), load_file(cached_dir / "head.safetensors")
    assert want["layers.bias"].abs().sum() > 0  # the head trained
    for name, tensor in want.items():
        torch.testing.assert_close(got[name], tensor, rtol=1e-5, atol=1e-6)
    assert cached["eval_accuracy"] == plain["eval_accuracy"]
    assert cached["eval_loss"] == pytest.approx(plain["eval_loss"], rel=1e-5)
    losses = [[r["loss"] for r in training_records(run) if "loss" in r] for run in (cached_dir, plain_dir)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("method, pooling, extra", [
    ("ce", "cls", {}),
    ("grpo-rm", "cls+mean", {}),
    ("grpo-rm", "mean", dict(head_warmup_epochs=1, per_device_train_batch_size=8, gradient_accumulation_steps=2)),
])
def test_cached_image_features_train_the_head_as_the_images_do(tmp_path, tiny_dinov2, method, pooling, extra):
    plain = run_training(config(tiny_dinov2, tmp_path / "plain", method=method, pooling=pooling, **extra))
    cached = run_training(config(tiny_dinov2, tmp_path / "cached", method=method, pooling=pooling, cache_frozen_features=True,
                          **extra))
    assert_same_training(tmp_path / "cached", tmp_path / "plain", cached, plain)


@pytest.mark.parametrize("method, group_by_length", [("ce", True), ("grpo-rm", False)])
def test_cached_text_features_train_the_head_as_the_texts_do(tmp_path, tiny_bert, text_parquet, method,
                                                              group_by_length):
    """BERT has dropout (0.1): a frozen encoder runs in eval mode in training, as its features are cached."""
    assert json.loads((Path(tiny_bert) / "config.json").read_text())["hidden_dropout_prob"] > 0
    text = dict(TEXT, dataset_name=text_parquet, method=method, group_by_length=group_by_length)
    plain = run_training(config(tiny_bert, tmp_path / "plain", **text))
    cached = run_training(config(tiny_bert, tmp_path / "cached", cache_frozen_features=True, **text))
    assert_same_training(tmp_path / "cached", tmp_path / "plain", cached, plain)


@pytest.mark.parametrize("overrides, fix", [
    (dict(freeze_backbone=False), "pass --freeze_backbone"),
    (dict(hflip_prob=0.5), "set random_resized_crop_scale 1.0 1.0 and hflip_prob 0"),
    (dict(random_resized_crop_scale=[0.5, 1.0], freeze_backbone=False),
     "pass --freeze_backbone, and set random_resized_crop_scale 1.0 1.0 and hflip_prob 0"),
    (dict(task="segmentation", dataset_name="digits-seg"), "image-segmentation crops its training images at random"),
])
def test_refused_at_setup_where_the_features_would_change(tmp_path, tiny_dinov2, overrides, fix):
    with pytest.raises(ValueError, match="^cache_frozen_features needs --freeze_backbone and no random augmentation: "
                                         + fix.replace(".", r"\.")):
        run_training(config(tiny_dinov2, tmp_path / "run", cache_frozen_features=True, **overrides))
    assert not (tmp_path / "run").exists()


def test_the_encoder_reads_each_training_example_once(tmp_path, tiny_dinov2, monkeypatch):
    """Counted in training only: evaluation and the setup's probe for unused parameters run the encoder too."""
    read, counting = [], [True]
    encoder_forward = VisionEncoder.forward

    def counted(self, pixel_values, *args, **kwargs):
        if counting[0]:
            read.append(len(pixel_values))
        return encoder_forward(self, pixel_values, *args, **kwargs)

    def uncounted(function):
        def run(*args, **kwargs):
            counting[0] = False
            try:
                return function(*args, **kwargs)
            finally:
                counting[0] = True

        return run

    monkeypatch.setattr(VisionEncoder, "forward", counted)
    monkeypatch.setattr(ImageClassificationTask, "evaluate", uncounted(ImageClassificationTask.evaluate))
    monkeypatch.setattr(steps, "freeze_unused_parameters", uncounted(steps.freeze_unused_parameters))
    run_training(config(tiny_dinov2, tmp_path / "plain", num_train_epochs=3))
    assert sum(read) == 3 * 48  # the counter sees training's reads: every example, every epoch
    read.clear()
    run_training(config(tiny_dinov2, tmp_path / "cached", num_train_epochs=3, method="grpo-rm", cache_frozen_features=True))
    assert sum(read) == 48


def test_resume_with_cached_features_is_bitwise_the_uninterrupted_run(tmp_path, tiny_dinov2, monkeypatch):
    extra = dict(method="grpo-rm", cache_frozen_features=True, checkpointing_steps=2)
    reference = run_training(config(tiny_dinov2, tmp_path / "reference", **extra))
    crash_at_step(monkeypatch, 5)  # after checkpoint-4, mid-epoch 2
    with pytest.raises(KeyboardInterrupt):
        run_training(config(tiny_dinov2, tmp_path / "resumed", **extra))
    monkeypatch.undo()
    resumed = run_training(config(tiny_dinov2, tmp_path / "resumed", resume_from_checkpoint="latest", **extra))
    assert resumed["resumed_from_checkpoint"].endswith("checkpoint-4")
    assert weights(tmp_path / "resumed") == weights(tmp_path / "reference")
    assert resumed["eval_loss"] == reference["eval_loss"]
    records = training_records(tmp_path / "resumed")
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 7))  # nothing lost, nothing twice
    for got, want in zip(records, training_records(tmp_path / "reference"), strict=True):
        assert got.keys() == want.keys()
        for key in got:
            assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-7), (got["step"], key)


def test_two_processes_train_the_head_as_one_does(two_process_runs, tmp_path, tiny_dinov2):
    """Each process holds every example's features, so accelerate may deal it any batch: two processes reading
    batches of 16 train the head as one process reading batches of 32, with cached features or without."""
    run = two_process_runs["cached_features"]
    assert RunConfig.from_run_dir(run).training.cache_frozen_features
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each of the two processes: CPU kernels round differently with more threads
    try:
        one = {name: run_training(RunConfig.from_dict({**CACHED_FEATURES_RUN, "model_name_or_path": tiny_dinov2,
                                                       "output_dir": str(tmp_path / name),
                                                       "per_device_train_batch_size": 32,
                                                       "cache_frozen_features": cache}))
               for name, cache in (("cached", True), ("plain", False))}
    finally:
        torch.set_num_threads(threads)
    two = json.loads((run / "all_results.json").read_text())
    assert two["total_steps"] == one["cached"]["total_steps"] == 4
    for name in ("cached", "plain"):
        for key, tensor in load_file(tmp_path / name / "head.safetensors").items():
            torch.testing.assert_close(load_file(run / "head.safetensors")[key], tensor, rtol=1e-5, atol=1e-6)
        assert two["eval_accuracy"] == one[name]["eval_accuracy"]


@pytest.mark.parametrize("pooling", POOLING_MODES)
def test_the_head_reads_the_cached_vector_back_exactly(tiny_dinov2, pooling):
    model = ImageClassificationTask.model_for(RunConfig.from_dict({"model_name_or_path": tiny_dinov2,
                                                                    "pooling": pooling}).model, list("0123456789"))
    model.eval()
    pixel_values = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        features = model.pooled_features(pixel_values=pixel_values)
        rebuilt = EncoderOutput(**model.as_encoder_output(features))
        assert torch.equal(pool(rebuilt, pooling), features)
        assert torch.equal(model(encoder_output=model.as_encoder_output(features)), model(pixel_values=pixel_values))


def test_compare_caches_the_frozen_row_when_nothing_is_augmented(tmp_path):
    fixed = RunConfig.from_dict({"output_dir": str(tmp_path / "a"), "random_resized_crop_scale": [1.0, 1.0],
                                 "hflip_prob": 0.0})
    plan = plan_comparison(fixed, ["frozen", "ce"], [0])
    assert [p.config.training.cache_frozen_features for p in plan] == [True, False]
    augmented = plan_comparison(RunConfig.from_dict({"output_dir": str(tmp_path / "b")}), ["frozen"], [0])
    assert augmented[0].config.training.cache_frozen_features is False
