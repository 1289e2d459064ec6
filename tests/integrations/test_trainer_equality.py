"""GrpoRmTrainer against `grpo-rm train`: the same model, data, optimizer, schedule and seed give the same weights.

Both loops use accelerate's seedable sampler seeded from the run's seed, so they draw the same batches in the same
order; GrpoRmTrainer also sets the epoch of grpo-rm's task datasets, whose random augmentation is keyed by
(seed, epoch, index), so augmented batches match too. What differs, and how these runs avoid it:
- dropout: grpo-rm train seeds it from the batch's position, the Trainer draws it from the global generator, so the
  models here have none (DINOv2's default; a BERT built without it);
- the optimizer and schedule: the Trainer's defaults (one learning rate, decay on all but biases and LayerNorm
  weights, linear schedule) are not grpo-rm's, so the Trainer gets grpo-rm's own (``optimizers=``);
- an epoch whose batches do not fill the last accumulation group: the Trainer divides that group's loss by its
  length, accelerate in grpo-rm train by gradient_accumulation_steps, so the runs here fill every group.
"""

import math

import pytest
import torch
from accelerate.utils import set_seed
from transformers import TrainingArguments

from grpo_rm.commands.train import run_training
from grpo_rm.config import PRESET_KEYS, RunConfig
from grpo_rm.integrations import GrpoRmArguments, GrpoRmTrainer
from grpo_rm.models import EncoderWithHead
from grpo_rm.tasks import build_task
from grpo_rm.training import steps

# float64 in both loops, and the same operations in the same order (the Trainer divides the loss by the accumulation
# steps where accelerate's backward does): measured, the weights are equal to the last bit. 1e-12 relative leaves room
# for a library's change of summation order (~1e-16 per operation, amplified over a dozen Adam steps) and still fails
# on any real difference: another batch, refresh step, reward or learning rate moves the weights by 1e-4 or more.
TOLERANCE = 1e-12


def _trainer_run(config: RunConfig, output_dir) -> tuple[torch.nn.Module, dict]:
    """The run ``config`` describes, with GrpoRmTrainer: the task's model, datasets and collate, and the loop's own
    optimizer and schedule (built before anything else draws from the seeded generator, as the loop builds them).
    Returns the trained model and its weights before training."""
    args = config.training
    set_seed(args.seed)
    task = build_task(config)
    model = task.build_model()
    processor = model.processor
    steps.freeze_unused_parameters(model, task.dummy_inputs(processor))
    dataset = task.dataset("train", processor, train=True)
    batches_per_epoch = math.ceil(len(dataset) / args.per_device_train_batch_size)
    total_steps = math.ceil(batches_per_epoch / args.gradient_accumulation_steps) * args.num_train_epochs
    optimizer = steps.build_optimizer(model, args)
    scheduler = steps.build_scheduler(optimizer, args, 0, total_steps)
    trainer_args = TrainingArguments(
        output_dir=str(output_dir), per_device_train_batch_size=args.per_device_train_batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps, num_train_epochs=args.num_train_epochs,
        max_grad_norm=args.max_grad_norm, seed=args.seed, use_cpu=True, report_to="none", save_strategy="no",
        logging_steps=1, disable_tqdm=True)
    grpo_rm_args = GrpoRmArguments(objective_preset=config.objective.objective_preset,
                                   **{key: getattr(config.objective, key) for key in PRESET_KEYS})
    trainer = GrpoRmTrainer(model=model, args=trainer_args, train_dataset=dataset, data_collator=task.collate(processor),
                            optimizers=(optimizer, scheduler), grpo_rm_args=grpo_rm_args)
    initial = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    trainer.train()
    return model, initial


def _assert_same_weights(model, run_dir):
    """``model``'s weights against those of the model grpo-rm train saved in ``run_dir`` (loaded as users load it:
    transformers 5 renames some weights on save, so the files' keys are not the module's)."""
    expected = EncoderWithHead.from_pretrained(run_dir).state_dict()
    got = model.state_dict()
    assert got.keys() == expected.keys()
    for name, tensor in got.items():
        assert tensor.dtype == expected[name].dtype == torch.float64, name
        torch.testing.assert_close(tensor, expected[name], rtol=TOLERANCE, atol=TOLERANCE, msg=name)


def _config(tmp_path, **values):
    return RunConfig.from_dict(dict(output_dir=str(tmp_path / "grpo-rm-train"), report_to="none", disable_tqdm=True,
                                    logging_steps=1, method="grpo-rm", **values))


def test_image_classifier_trains_as_grpo_rm_train_does(float64, tmp_path, tiny_dinov2, imagefolder):
    # 32 images, batches of 8: four steps an epoch, two epochs, the old policy refreshed at each epoch start; random
    # crops and flips.
    config = _config(tmp_path, model_name_or_path=tiny_dinov2, dataset_name=imagefolder, max_train_samples=32,
                     per_device_train_batch_size=8, num_train_epochs=2, learning_rate=1e-3, head_learning_rate=1e-2,
                     random_resized_crop_scale=[0.5, 1.0], hflip_prob=0.5)
    run_training(config)
    model, initial = _trainer_run(config, tmp_path / "trainer")
    _assert_same_weights(model, tmp_path / "grpo-rm-train")
    assert not torch.allclose(model.state_dict()["head.layers.weight"], initial["head.layers.weight"], atol=1e-4)


# 32 texts in micro-batches of 8. Fine-tuned: accumulated in pairs (two optimizer steps an epoch, three epochs), the old
# policy refreshed every 3 steps (mid-epoch), a reference policy (beta > 0). Frozen encoder: the head alone, refreshed
# at each epoch start, its frozen policies fed the training model's features (FrozenPolicy shares the encoder).
TEXT_RUNS = {
    "fine-tuned": dict(gradient_accumulation_steps=2, num_train_epochs=3, old_policy_refresh="3", beta=0.04),
    "frozen-encoder": dict(num_train_epochs=2, freeze_backbone=True),
}


@pytest.mark.parametrize("run", list(TEXT_RUNS))
def test_text_classifier_trains_as_grpo_rm_train_does(float64, tmp_path, tiny_bert_without_dropout, text_parquet, run):
    config = _config(tmp_path, task="text-classification", model_name_or_path=tiny_bert_without_dropout,
                     dataset_name=text_parquet, max_train_samples=32, per_device_train_batch_size=8,
                     learning_rate=3e-3, head_learning_rate=3e-2, pooling="mean", **TEXT_RUNS[run])
    run_training(config)
    model, initial = _trainer_run(config, tmp_path / "trainer")
    _assert_same_weights(model, tmp_path / "grpo-rm-train")
    trained = "head.layers.weight" if config.model.freeze_backbone else "encoder.model.encoder.layer.1.output.dense.weight"
    assert not torch.allclose(model.state_dict()[trained], initial[trained], atol=1e-4)
