"""Encoder + task head as one model that saves and loads like a transformers checkpoint.

A saved model directory is a plain transformers encoder checkpoint (``config.json``,
``model.safetensors``, ``preprocessor_config.json``), so ``AutoModel.from_pretrained``
loads the post-trained encoder on its own, plus ``head.safetensors`` and
``head_config.json`` for the classifier and ``run_config.yaml`` for the run.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Optional, Sequence, Union

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .backbones import Encoder, Preprocessing, default_image_size, load_encoder
from .config import ModelArguments, RunConfig
from .heads import ClassificationHead, SegmentationHead

HEAD_WEIGHTS_NAME = "head.safetensors"
HEAD_CONFIG_NAME = "head_config.json"


Head = Union[ClassificationHead, SegmentationHead]


class EncoderWithHead(nn.Module):
    """Logits [N, C] (classification head) or [N, C, H, W] at the input's resolution (segmentation head)."""

    def __init__(self, encoder: Encoder, head: Head, preprocessing: Preprocessing, class_names: Sequence[str]):
        super().__init__()
        if len(class_names) != head.num_labels:
            raise ValueError(f"{len(class_names)} class names for a head with {head.num_labels} outputs")
        encoder.check_image_size(preprocessing.image_size)
        self.encoder = encoder
        self.head = head
        self.preprocessing = preprocessing
        self.class_names = list(class_names)

    @property
    def task(self) -> str:
        return self.head.settings()["task"]

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        output = self.encoder(pixel_values, num_layers=self.head.num_layers)
        if isinstance(self.head, SegmentationHead):
            return self.head(output, size=pixel_values.shape[-2:])
        return self.head(output)

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
        self.encoder.save_pretrained(staging)
        self.preprocessing.save_pretrained(staging)
        head_state = {name: tensor.detach().cpu().contiguous() for name, tensor in self.head.state_dict().items()}
        save_file(head_state, staging / HEAD_WEIGHTS_NAME)
        head_config = {**self.head.settings(), "class_names": self.class_names}
        (staging / HEAD_CONFIG_NAME).write_text(json.dumps(head_config, indent=2) + "\n")
        if run_config is not None:
            run_config.save(staging)
        for item in staging.iterdir():
            os.replace(item, directory / item.name)
        staging.rmdir()
        return directory

    @classmethod
    def from_pretrained(cls, path: str | Path, image_size: Optional[int] = None) -> "EncoderWithHead":
        """Load a model saved by ``save_pretrained`` (a grpo-rm run's output directory)."""
        head_config = read_head_config(path)
        if head_config is None:
            raise FileNotFoundError(
                f"{path} has no {HEAD_CONFIG_NAME}: it is an encoder checkpoint, not a grpo-rm model "
                "(train one with `grpo-rm train` first)"
            )
        encoder = load_encoder(str(path))
        preprocessing = Preprocessing.from_pretrained(str(path), default_image_size(encoder)).with_image_size(image_size)
        head = _head_from_config(head_config, encoder.hidden_size, path)
        _load_head_weights(head, path)
        return cls(encoder, head, preprocessing, head_config["class_names"])


def read_head_config(path: str | Path) -> Optional[dict]:
    file = Path(path) / HEAD_CONFIG_NAME
    return json.loads(file.read_text()) if file.is_file() else None


def _head_from_config(head_config: dict, hidden_size: int, path) -> Head:
    if head_config["hidden_size"] != hidden_size:
        raise ValueError(
            f"{path}/{HEAD_CONFIG_NAME} is for an encoder of width {head_config['hidden_size']}, "
            f"but the encoder there has width {hidden_size}"
        )
    if head_config.get("task", "classification") == "segmentation":
        return SegmentationHead(hidden_size, head_config["num_labels"], head_config["num_layers"],
                                head_config["batchnorm"])
    return ClassificationHead(
        hidden_size,
        head_config["num_labels"],
        head_type=head_config["head_type"],
        head_input=head_config["head_input"],
        mlp_hidden_dim=head_config["mlp_hidden_dim"],
    )


def _load_head_weights(head: Head, path) -> None:
    file = Path(path) / HEAD_WEIGHTS_NAME
    if not file.is_file():
        raise FileNotFoundError(f"{file} is missing: the saved model has a head config but no head weights")
    try:
        head.load_state_dict(load_file(file))
    except RuntimeError as error:
        raise ValueError(f"{file} does not match {HEAD_CONFIG_NAME}: {error}") from error


def build_model(args: ModelArguments, class_names: Sequence[str]) -> EncoderWithHead:
    """The model to train: an encoder from ``args.model_name_or_path`` with its saved head when it
    fits ``class_names`` and the requested head, a new head otherwise."""
    if not args.model_name_or_path:
        raise ValueError("model_name_or_path is required")
    encoder = load_encoder(args.model_name_or_path)
    encoder.set_trainable(args.freeze_backbone, args.train_last_n_blocks)
    preprocessing = Preprocessing.from_pretrained(args.model_name_or_path, default_image_size(encoder))
    preprocessing = preprocessing.with_image_size(args.image_size)
    if args.task == "segmentation":
        head: Head = SegmentationHead(encoder.hidden_size, len(class_names), args.seg_num_layers, args.seg_batchnorm)
    else:
        head = ClassificationHead(
            encoder.hidden_size, len(class_names), args.head_type, args.head_input, args.mlp_hidden_dim
        )
    saved = read_head_config(args.model_name_or_path)
    if saved is not None:
        wanted = {**head.settings(), "class_names": list(class_names)}
        differences = {key: (saved.get(key), value) for key, value in wanted.items() if saved.get(key) != value}
        if not differences:
            _load_head_weights(head, args.model_name_or_path)
        elif not args.ignore_mismatched_sizes:
            details = "; ".join(f"{key}: checkpoint {old!r}, requested {new!r}" for key, (old, new) in differences.items())
            raise ValueError(
                f"the head saved in {args.model_name_or_path} does not fit this run ({details}). "
                "Pass --ignore_mismatched_sizes to start a new head on its encoder."
            )
    return EncoderWithHead(encoder, head, preprocessing, class_names)
