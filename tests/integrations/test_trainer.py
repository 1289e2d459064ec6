"""GrpoRmTrainer with transformers classifiers, as a Trainer script uses it: it trains, resumes exactly, and logs the
GRPO-RM metrics to every tracker; a frozen encoder is shared with the old policy, not copied."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import (
    AutoModelForImageClassification,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    TrainerCallback,
    TrainingArguments,
)

from grpo_rm.integrations import GrpoRmArguments, GrpoRmTrainer
from grpo_rm.integrations.policies import SharedFrozenCopy
from tests.text_fixtures import TOPICS, sentence

METRICS = ("reward", "reward_std", "frac_reward_zero_std", "clip_ratio/low_mean", "clip_ratio/high_mean",
           "clip_ratio/region_mean", "entropy")


def colour_images(count: int, seed: int = 0) -> list[dict]:
    """16x16 images whose dominant channel is the label, as a transforms pipeline would hand them to the Trainer."""
    generator = torch.Generator().manual_seed(seed)
    examples = []
    for index in range(count):
        label = index % 3
        pixels = torch.rand(3, 16, 16, generator=generator) * 0.3
        pixels[label] += 0.7
        examples.append({"pixel_values": pixels, "labels": label})
    return examples


def topic_texts(tokenizer, count: int, seed: int = 0) -> list[dict]:
    import random

    rng, topics = random.Random(seed), list(TOPICS)
    return [{**tokenizer(sentence(rng, topics[index % 3])), "labels": index % 3} for index in range(count)]


def image_trainer(tiny_dinov2, output_dir, **overrides) -> GrpoRmTrainer:
    torch.manual_seed(0)  # the new classifier's initialisation
    model = AutoModelForImageClassification.from_pretrained(tiny_dinov2, num_labels=3)
    values = dict(output_dir=str(output_dir), per_device_train_batch_size=8, num_train_epochs=2, learning_rate=3e-3,
                  logging_steps=1, save_strategy="steps", save_steps=4, use_cpu=True, report_to="none", seed=0,
                  disable_tqdm=True)
    return GrpoRmTrainer(model=model, args=TrainingArguments(**{**values, **overrides}),
                         train_dataset=colour_images(24), grpo_rm_args=GrpoRmArguments(beta=0.04))


class WeightsAtEachStep(TrainerCallback):
    def __init__(self):
        self.weights = {}

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.weights[state.global_step] = {name: tensor.clone() for name, tensor in model.state_dict().items()}


def test_resume_restores_the_old_and_reference_policies_exactly(tmp_path, tiny_dinov2):
    # Three steps an epoch, two epochs; checkpoint-4 is mid-epoch 2, where the old policy is the model after step 3
    # (refreshed as epoch 2 started) and the reference policy the model before training.
    uninterrupted = image_trainer(tiny_dinov2, tmp_path / "uninterrupted")
    steps = WeightsAtEachStep()
    uninterrupted.add_callback(steps)
    initial = {name: tensor.clone() for name, tensor in uninterrupted.model.state_dict().items()}
    uninterrupted.train()
    checkpoint = tmp_path / "uninterrupted" / "checkpoint-4"
    saved_old = load_file(checkpoint / "old_policy.safetensors")
    saved_reference = load_file(checkpoint / "reference_policy.safetensors")
    for name, tensor in saved_old.items():
        torch.testing.assert_close(tensor, steps.weights[3][name], rtol=0, atol=0)
        torch.testing.assert_close(saved_reference[name], initial[name], rtol=0, atol=0)
    # The old policy is not the model at the checkpoint: a resume that took the model as its old policy would differ.
    assert not torch.equal(saved_old["classifier.weight"], steps.weights[4]["classifier.weight"])

    resumed = image_trainer(tiny_dinov2, tmp_path / "resumed")
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert resumed.state.global_step == 6
    # Same operations in the same order, on one thread: the resumed run is the uninterrupted one, bit for bit.
    for name, tensor in resumed.model.state_dict().items():
        torch.testing.assert_close(tensor, uninterrupted.model.state_dict()[name], rtol=0, atol=0, msg=name)

    # A checkpoint without the policies (not GrpoRmTrainer's, or beta was 0) cannot continue this run exactly.
    (checkpoint / "reference_policy.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="reference_policy.safetensors"):
        image_trainer(tiny_dinov2, tmp_path / "refused").train(resume_from_checkpoint=str(checkpoint))


class RecordLogs(TrainerCallback):
    """What every report_to tracker receives: the Trainer hands each the logs of on_log."""

    def __init__(self):
        self.logs = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append(dict(logs))


def expected_reward(model, batch) -> float:
    """The paper's reward (accuracy + uniformity, w = 1) in expectation under the old policy, computed by hand: the
    model in eval mode, before training, is the old policy of the first epoch."""
    model.eval()
    with torch.no_grad():
        probs = model(**{k: v for k, v in batch.items() if k != "labels"}).logits.softmax(-1).double()
    model.train()
    target = torch.nn.functional.one_hot(batch["labels"], probs.shape[-1]).double()
    rewards = target - probs * (1 - target)
    return float((probs * rewards).sum(-1).mean())


def test_a_text_classifier_logs_the_grpo_rm_metrics_to_the_trackers(tmp_path, tiny_bert):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=3)
    texts = topic_texts(tokenizer, 8)
    collator = DataCollatorWithPadding(tokenizer)
    # One batch of all eight texts: the mean over the batch does not depend on the order the sampler draws.
    reward = expected_reward(model, collator(texts))
    records = RecordLogs()
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=8, per_device_eval_batch_size=8,
                             num_train_epochs=1, logging_steps=1, save_strategy="no", use_cpu=True, report_to="none",
                             disable_tqdm=True)
    trainer = GrpoRmTrainer(model=model, args=args, train_dataset=texts, eval_dataset=texts, data_collator=collator,
                            processing_class=tokenizer, callbacks=[records],
                            compute_metrics=lambda p: {"accuracy": float((np.argmax(p.predictions, -1) ==
                                                                          p.label_ids).mean())})
    trainer.train()
    step_log = next(log for log in records.logs if "loss" in log)
    assert set(METRICS) <= set(step_log) and "kl" not in step_log  # kl only with beta > 0, as in TRL
    assert step_log["reward"] == pytest.approx(reward, rel=1e-5)
    assert step_log["clip_ratio/region_mean"] == 0.0  # the first step: the policy is its old policy

    # Evaluated on the same texts, with the old policy still the model before training: the same expected reward.
    metrics = trainer.evaluate()
    eval_log = records.logs[-1]
    assert {f"eval_{name}" for name in METRICS} <= set(eval_log) and "eval_accuracy" in metrics
    assert eval_log["eval_reward"] == pytest.approx(reward, rel=1e-5)


def test_a_frozen_encoder_is_shared_with_the_old_policy_and_left_out_of_checkpoints(tmp_path, tiny_bert):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=3)
    model.bert.requires_grad_(False)
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=1, save_steps=1,
                             use_cpu=True, report_to="none", disable_tqdm=True)
    trainer = GrpoRmTrainer(model=model, args=args, train_dataset=topic_texts(tokenizer, 4),
                            data_collator=DataCollatorWithPadding(tokenizer))
    trainer.train()
    old = trainer.old_policy
    assert isinstance(old, SharedFrozenCopy)
    assert all(copied is original for copied, original in zip(old.model.bert.parameters(), model.bert.parameters()))
    assert old.model.classifier.weight is not model.classifier.weight
    saved = load_file(tmp_path / "checkpoint-1" / "old_policy.safetensors")
    assert {name for name in saved if not name.startswith("classifier.")} <= {name for name, _ in model.named_buffers()}
    assert {"classifier.weight", "classifier.bias"} <= set(saved)
