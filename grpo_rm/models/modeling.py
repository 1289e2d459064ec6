"""Encoder + task head as one model that saves and loads like a transformers checkpoint.

A saved model directory is a plain transformers encoder checkpoint (``config.json``,
``model.safetensors``, and the processor: ``preprocessor_config.json`` or the tokenizer),
so ``AutoModel.from_pretrained`` loads the post-trained encoder on its own; text encoders
are also a sentence-transformers folder. ``head.safetensors`` and ``head_config.json``
hold the head, ``run_config.yaml`` the run.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence, Union

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..config import ModelArguments, RunConfig
from ..files import HEAD_CONFIG_NAME, HEAD_WEIGHTS_NAME
from ..processing import ImageProcessing, TextProcessing
from .encoders import Encoder, EncoderOutput, EncoderState, load_config, modality_of, pool, resolve_model_name
from .heads import HEADS, ClassificationHead, SegmentationHead
from .text import TextEncoder
from .vision import VisionEncoder

Head = Union[ClassificationHead, SegmentationHead]
Processor = Union[ImageProcessing, TextProcessing]
ENCODERS = {"image": VisionEncoder, "text": TextEncoder}


def load_encoder(name_or_path: str) -> Encoder:
    """A vision or text encoder from a hub id, a ``save_pretrained`` directory or an alias (``minilm``)."""
    name_or_path = resolve_model_name(name_or_path)
    config = load_config(name_or_path)  # a clear error for a missing folder or an unreachable hub id
    return ENCODERS[modality_of(config)].from_pretrained(name_or_path)


class EncoderWithHead(nn.Module):
    """Logits [N, C] (classification head) or [N, C, H, W] at the input's resolution (segmentation head).

    ``forward`` takes the encoder's inputs by name (``pixel_values``, or ``input_ids`` and
    ``attention_mask``), so callers never ask which modality they run.
    """

    def __init__(self, encoder: Encoder, head: Head, processor: Processor, class_names: Sequence[str], task: str):
        super().__init__()
        if len(class_names) != head.num_labels:
            raise ValueError(f"{len(class_names)} class names for a head with {head.num_labels} outputs")
        self.encoder = encoder
        self.head = head
        self.processor = processor
        self.class_names = list(class_names)
        self.task = task

    @property
    def modality(self) -> str:
        return self.encoder.modality

    def forward(self, return_frozen_output: bool = False, encoder_output: Optional[Mapping[str, torch.Tensor]] = None,
                **inputs: torch.Tensor):
        """Logits; with ``return_frozen_output`` also what the frozen part of the model computed (see
        ``frozen_part``: the encoder's output, the frozen prefix's state, or None), so that the frozen
        policies finish from it instead of computing it again. ``encoder_output`` (see ``encode``) stands in for
        the inputs of a frozen encoder."""
        num_layers = self.head.num_layers
        if not return_frozen_output:
            return self.head(self.encode(encoder_output, **inputs))
        frozen_part = self.frozen_part
        if frozen_part == "prefix":
            state = self.encoder.prefix(**inputs, num_layers=num_layers)
            return self.head(self.encoder.tail(state, num_layers)), state
        encoded = self.encode(encoder_output, **inputs)
        return self.head(encoded), (encoded if frozen_part == "encoder" else None)

    def encode(self, encoder_output: Optional[Mapping[str, torch.Tensor]] = None,
               **inputs: torch.Tensor) -> EncoderOutput:
        """What the head reads: the encoder's output for the inputs, or, given ``encoder_output`` (the fields of an
        ``EncoderOutput`` computed beforehand: a frozen encoder's cached features, ``as_encoder_output``), that one,
        and the encoder does not run. Fields rather than the dataclass, so that data loaders move them to the device."""
        if encoder_output is not None:
            return EncoderOutput(**encoder_output)
        return self.encoder(**inputs, num_layers=self.head.num_layers)

    def pooled_features(self, **inputs: torch.Tensor) -> torch.Tensor:
        """[N, F]: what a classification head reads of each input, the encoder's output pooled. Pooling is per input
        and the head reads nothing else, so these vectors, computed once, stand for a frozen encoder's inputs in
        training (``--cache_frozen_features``; fed back through ``as_encoder_output``)."""
        return pool(self.encode(**inputs), self.head.pooling)

    def as_encoder_output(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """The fields of a one-token ``EncoderOutput`` that the head pools back to ``features`` (``pooled_features``)
        exactly: for cls ++ mean the class token and the one token; for every other pooling the one vector as the class
        token and as the token, whose mean and max are itself."""
        if self.head.pooling == "cls+mean":
            cls_token, mean = features.chunk(2, dim=-1)
            return {"cls_token": cls_token, "tokens": mean[:, None]}
        return {"cls_token": features, "tokens": features[:, None]}

    @property
    def encoder_is_frozen(self) -> bool:
        return not any(p.requires_grad for p in self.encoder.parameters())

    @property
    def frozen_part(self) -> Optional[str]:
        """What of the model is frozen, and so the same in every policy: ``"encoder"`` (all of it), ``"prefix"``
        (the embeddings and first blocks, ``--train_last_n_blocks``, where the architecture can run them apart:
        ``Encoder.frozen_blocks``), or None (nothing to share: full fine-tuning, or an architecture that cannot split)."""
        if self.encoder_is_frozen:
            return "encoder"
        return "prefix" if self.encoder.frozen_blocks() is not None else None

    def trainable_tail(self) -> "TrainableTail":
        """The model after its frozen prefix, as a module of its own that shares this model's weights."""
        return TrainableTail(self)

    def save_pretrained(self, directory: str | Path, run_config: Optional[RunConfig] = None) -> Path:
        """Write every file to a staging folder first, then move each into place whole."""
        directory = Path(directory)
        staging = directory / ".saving"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        config = self.encoder.config
        config.id2label = dict(enumerate(self.class_names))
        config.label2id = {name: index for index, name in enumerate(self.class_names)}
        self.encoder.save_pretrained(staging, pooling=getattr(self.head, "pooling", None))
        self.processor.save_pretrained(staging)
        head_state = {name: tensor.detach().cpu().contiguous() for name, tensor in self.head.state_dict().items()}
        save_file(head_state, staging / HEAD_WEIGHTS_NAME)
        head_config = {"task": self.task, "modality": self.modality, **self.head.settings(),
                       "class_names": self.class_names}
        (staging / HEAD_CONFIG_NAME).write_text(json.dumps(head_config, indent=2) + "\n")
        if run_config is not None:
            run_config.save(staging)
        for item in sorted(staging.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if item.is_file():
                target = directory / item.relative_to(staging)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(item, target)
        shutil.rmtree(staging)
        return directory

    @classmethod
    def from_pretrained(cls, path: str | Path, image_size: Optional[int] = None,
                        max_seq_length: Optional[int] = None) -> "EncoderWithHead":
        """Load a model saved by ``save_pretrained`` (a grpo-rm run's output directory)."""
        head_config = read_head_config(path)
        if head_config is None:
            raise FileNotFoundError(
                f"{path} has no {HEAD_CONFIG_NAME}: it is an encoder checkpoint, not a grpo-rm model "
                "(train one with `grpo-rm train` first)"
            )
        encoder = load_encoder(str(path))
        processor = encoder.load_processor(str(path), image_size=image_size, max_seq_length=max_seq_length)
        head = _head_from_config(head_config, encoder.hidden_size, path)
        _load_head_weights(head, path)
        return cls(encoder, head, processor, head_config["class_names"], head_config["task"])


class TrainableTail(nn.Module):
    """The blocks after an EncoderWithHead's frozen prefix, its final norm and its head: logits from the prefix's
    ``EncoderState``. A frozen policy deep-copies one, the size of the trainable part, and finishes the
    training model's prefix with it."""

    def __init__(self, model: EncoderWithHead):
        super().__init__()
        encoder = model.encoder
        self.first_block = encoder.frozen_blocks()
        if self.first_block is None:
            raise ValueError(f"{type(encoder.model).__name__} has no frozen prefix to finish from")
        self.blocks = nn.ModuleList(encoder.blocks()[self.first_block:])
        self.norm = encoder.final_norm()
        self.head = model.head
        self.encoder_type = type(encoder)  # how its outputs are built (Encoder.run_tail); holds no weights

    def forward(self, state: EncoderState) -> torch.Tensor:
        if state.next_block != self.first_block:
            raise ValueError(f"a prefix state stopped before block {state.next_block}, but this tail starts at block "
                             f"{self.first_block}: the frozen blocks changed since the tail was made")
        return self.head(self.encoder_type.run_tail(state, self.blocks, self.norm, self.head.num_layers))


def read_head_config(path: str | Path) -> Optional[dict]:
    file = Path(path) / HEAD_CONFIG_NAME
    if not file.is_file():
        return None
    config = json.loads(file.read_text())
    # Runs saved before text encoders name the head by their task ("classification" / "segmentation")
    # and the pooling "head_input".
    config.setdefault("head", config["task"])
    if "head_input" in config:
        config.setdefault("pooling", config.pop("head_input"))
    return config


def _head_from_config(head_config: dict, hidden_size: int, path) -> Head:
    if head_config["hidden_size"] != hidden_size:
        raise ValueError(
            f"{path}/{HEAD_CONFIG_NAME} is for an encoder of width {head_config['hidden_size']}, "
            f"but the encoder there has width {hidden_size}"
        )
    if head_config["head"] not in HEADS:
        raise ValueError(f"{path}/{HEAD_CONFIG_NAME}: unknown head {head_config['head']!r}; known: {list(HEADS)}")
    return HEADS[head_config["head"]].from_settings(head_config)


def _load_head_weights(head: Head, path) -> None:
    file = Path(path) / HEAD_WEIGHTS_NAME
    if not file.is_file():
        raise FileNotFoundError(f"{file} is missing: the saved model has a head config but no head weights")
    try:
        head.load_state_dict(load_file(file))
    except RuntimeError as error:
        raise ValueError(f"{file} does not match {HEAD_CONFIG_NAME}: {error}") from error


def assemble_model(args: ModelArguments, class_names: Sequence[str], task: str, modality: str,
                make_head: Callable[[Encoder, int], Head]) -> EncoderWithHead:
    """The model to train: an encoder from ``args.model_name_or_path`` with its saved head when it
    fits ``class_names`` and the requested head, a new head (``make_head(encoder, num_labels)``) otherwise."""
    if not args.model_name_or_path:
        raise ValueError("model_name_or_path is required")
    encoder = load_encoder(args.model_name_or_path)
    if encoder.modality != modality:
        raise ValueError(f"task {task!r} needs a {modality} encoder, but {args.model_name_or_path} is a "
                         f"{encoder.modality} model ({type(encoder.model).__name__})")
    encoder.set_trainable(args.freeze_backbone, args.train_last_n_blocks)
    path = resolve_model_name(args.model_name_or_path)
    processor = encoder.load_processor(path, image_size=args.image_size, max_seq_length=args.max_seq_length)
    head = make_head(encoder, len(class_names))
    saved = read_head_config(path)
    if saved is not None:
        wanted = {**head.settings(), "class_names": list(class_names)}
        differences = {key: (saved.get(key), value) for key, value in wanted.items() if saved.get(key) != value}
        if not differences:
            _load_head_weights(head, path)
        elif not args.ignore_mismatched_sizes:
            details = "; ".join(f"{key}: checkpoint {old!r}, requested {new!r}" for key, (old, new) in differences.items())
            raise ValueError(
                f"the head saved in {args.model_name_or_path} does not fit this run ({details}). "
                "Pass --ignore_mismatched_sizes to start a new head on its encoder."
            )
    return EncoderWithHead(encoder, head, processor, class_names, task)
