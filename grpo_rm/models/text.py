"""transformers text encoders (BERT, MiniLM, MPNet, RoBERTa, DeBERTa ...) seen through the same interface.

The default pooling is what the checkpoint's sentence-transformers configuration says
(``modules.json`` -> the Pooling module's ``config.json``), else ``cls``. A saved text
encoder is written in sentence-transformers' layout too (``modules.json``,
``1_Pooling/config.json``, ``sentence_bert_config.json`` from the processor), so
``SentenceTransformer(run_dir)`` loads the post-trained encoder with the head's pooling.
"""

from __future__ import annotations

import inspect
import json
import logging
from pathlib import Path
from typing import Optional

import torch
from torch import nn
from transformers import PreTrainedModel

from ..files import POOLING_DIR, SENTENCE_TRANSFORMERS_MODULES_NAME, write_text_atomic
from ..processing import TextProcessing, read_sentence_transformers_file
from .encoders import Encoder, EncoderOutput, EncoderState

logger = logging.getLogger(__name__)

ST_POOLING_KEYS = {"cls": "pooling_mode_cls_token", "max": "pooling_mode_max_tokens", "mean": "pooling_mode_mean_tokens"}
ST_MODULE = "sentence_transformers.models."


class TextEncoder(Encoder):
    """A transformers text model returning its first token and all token embeddings with the attention mask."""

    modality = "text"
    splittable_model_types = frozenset({"bert", "roberta", "xlm-roberta", "electra", "distilbert", "mpnet"})

    def __init__(self, model: PreTrainedModel, default_pooling: str = "cls", normalize: bool = False):
        super().__init__(model)
        self.default_pooling = default_pooling
        self.normalize = normalize  # the source had a Normalize module: keep it in the sentence-transformers export
        self._accepts_token_type_ids = "token_type_ids" in inspect.signature(model.forward).parameters

    @classmethod
    def from_pretrained(cls, name_or_path: str) -> "TextEncoder":
        encoder = super().from_pretrained(name_or_path)
        encoder.default_pooling, encoder.normalize = sentence_transformers_pooling(name_or_path)
        return encoder

    def load_processor(self, name_or_path: str, max_seq_length: Optional[int] = None, **_) -> TextProcessing:
        return TextProcessing.from_pretrained(name_or_path, getattr(self.config, "max_position_embeddings", None),
                                              max_seq_length)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: Optional[torch.Tensor] = None, num_layers: int = 1) -> EncoderOutput:
        if self.can_split:
            return self.tail(self.prefix(input_ids, attention_mask, token_type_ids, num_layers), num_layers)
        hidden = self.model(**self._model_inputs(input_ids, attention_mask, token_type_ids)).last_hidden_state
        return self.make_output(hidden, None, self.final_norm(), attention_mask)

    def prefix(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               token_type_ids: Optional[torch.Tensor] = None, num_layers: int = 1) -> EncoderState:
        return self._run_prefix(self._model_inputs(input_ids, attention_mask, token_type_ids), num_layers,
                                token_mask=attention_mask)

    @staticmethod
    def make_output(hidden: torch.Tensor, earlier: Optional[list[torch.Tensor]], norm: nn.Module,
                    token_mask: torch.Tensor) -> EncoderOutput:
        return EncoderOutput(hidden[:, 0], hidden, token_mask=token_mask)

    def _model_inputs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      token_type_ids: Optional[torch.Tensor]) -> dict:
        extra = {"token_type_ids": token_type_ids} if token_type_ids is not None and self._accepts_token_type_ids else {}
        return {"input_ids": input_ids, "attention_mask": attention_mask, **extra}

    def save_pretrained(self, directory: str | Path, pooling: Optional[str] = None) -> None:
        """The transformers checkpoint plus sentence-transformers' modules and pooling config."""
        super().save_pretrained(directory)
        pooling = pooling or self.default_pooling
        modes = pooling.split("+")
        pooling_config = {"word_embedding_dimension": self.hidden_size,
                          **{key: mode in modes for mode, key in ST_POOLING_KEYS.items()},
                          "pooling_mode_mean_sqrt_len_tokens": False}
        write_text_atomic(Path(directory) / POOLING_DIR / "config.json", json.dumps(pooling_config, indent=2) + "\n")
        modules = [{"idx": 0, "name": "0", "path": "", "type": ST_MODULE + "Transformer"},
                   {"idx": 1, "name": "1", "path": POOLING_DIR, "type": ST_MODULE + "Pooling"}]
        if self.normalize:
            modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": ST_MODULE + "Normalize"})
        write_text_atomic(Path(directory) / SENTENCE_TRANSFORMERS_MODULES_NAME, json.dumps(modules, indent=2) + "\n")


def sentence_transformers_pooling(name_or_path: str) -> tuple[str, bool]:
    """(pooling mode, whether embeddings are normalised) from a sentence-transformers checkpoint; ("cls", False)
    for a plain transformers checkpoint."""
    modules = read_sentence_transformers_file(name_or_path, SENTENCE_TRANSFORMERS_MODULES_NAME)
    if not isinstance(modules, list):
        return "cls", False
    normalize = any(module.get("type", "").endswith("Normalize") for module in modules)
    pooling_module = next((m for m in modules if m.get("type", "").endswith("Pooling")), None)
    if pooling_module is None:
        return "cls", normalize
    config = read_sentence_transformers_file(name_or_path, f"{pooling_module['path']}/config.json")
    modes = [mode for mode, key in ST_POOLING_KEYS.items() if config.get(key)]
    if modes == ["cls", "mean"]:
        return "cls+mean", normalize
    if len(modes) != 1:
        logger.warning("%s: sentence-transformers pooling %s has no grpo-rm equivalent (cls, mean, max or cls+mean); "
                       "defaulting to cls, choose another with --pooling", name_or_path, config)
        return "cls", normalize
    return modes[0], normalize
