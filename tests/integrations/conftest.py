"""Fixtures of the integration tests: float64 training, and a tiny BERT without dropout."""

import pytest
import torch


@pytest.fixture
def float64():
    """Train in float64: encoders load, heads build and images normalise in torch's default dtype."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.fixture(scope="session")
def tiny_bert_without_dropout(tmp_path_factory):
    """``tiny_bert`` with dropout 0: grpo-rm train draws dropout from a generator keyed by the batch's position, the
    Trainer from the global generator, so only a model without dropout can train identically in both."""
    from transformers import BertConfig, BertModel

    from tests.text_fixtures import TINY_BERT, VOCAB, save_tokenizer

    directory = tmp_path_factory.mktemp("tiny-bert-no-dropout")
    save_tokenizer(directory)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(VOCAB), **TINY_BERT, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    BertModel(config).save_pretrained(directory)
    return str(directory)
