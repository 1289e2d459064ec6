"""Seeded image runs pinned to known numbers.

A refactor of batches, tasks or the loop must not change what an image run computes.
Re-pin only where a change deliberately alters the numbers, and say so here and in its commit.
"""

import pytest

from grpo_rm.config import RunConfig
from grpo_rm.training import train

# Re-pinned when augmentation and dropout began drawing from generators keyed by (seed, epoch, sample
# index) and (seed, step, process), for exact resume (issue 8); the task redesign before it changed nothing.
PINNED = {
    "grpo-rm": {"eval_loss": 2.337540626525879, "eval_accuracy": 0.041666666666666664, "train_loss": 0.0008348928858241184},
    "ce": {"eval_loss": 2.335932413736979, "eval_accuracy": 0.041666666666666664, "train_loss": 2.295810752444797},
    "segmentation": {"eval_mean_iou": 0.07891829758296375, "eval_overall_accuracy": 0.6486002604166666,
                     "train_loss": 1.7313447203681775e-10},
}


def _run(config: dict, output_dir) -> dict:
    values = dict(output_dir=str(output_dir), logging_steps=1, disable_tqdm=True, report_to="none", **config)
    return train(RunConfig.from_dict(values))


@pytest.mark.parametrize("method", ["grpo-rm", "ce"])
def test_image_classification_numbers_are_unchanged(tmp_path, tiny_dinov2, method):
    results = _run(dict(model_name_or_path=tiny_dinov2, dataset_name="digits", method=method, max_train_samples=96,
                        max_eval_samples=48, per_device_train_batch_size=16, num_train_epochs=3, learning_rate=3e-3,
                        random_resized_crop_scale=[0.5, 1.0]), tmp_path)
    for key, value in PINNED[method].items():
        assert results[key] == pytest.approx(value, rel=1e-6, abs=1e-12), key


def test_image_segmentation_numbers_are_unchanged(tmp_path, tiny_dinov2):
    results = _run(dict(model_name_or_path=tiny_dinov2, dataset_name="digits-seg", task="segmentation",
                        method="grpo-rm", max_train_samples=16, max_eval_samples=6, per_device_train_batch_size=8,
                        num_train_epochs=1, image_size=16, learning_rate=1e-3, seg_scale_range=[0.8, 1.2]), tmp_path)
    for key, value in PINNED["segmentation"].items():
        # One epoch, old policy refreshed at its start: every ratio is 1 and the loss is 0 up to rounding,
        # whose last digits depend on the number of threads; 1e-8 still catches any real change.
        noise = 1e-8 if key == "train_loss" else 1e-12
        assert results[key] == pytest.approx(value, rel=1e-6, abs=noise), key
