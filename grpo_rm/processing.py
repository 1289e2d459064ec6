"""What an encoder expects of its inputs: image preprocessing settings, or a tokenizer and a length limit.

A processor is read from a checkpoint (``preprocessor_config.json``; the tokenizer files and
``sentence_bert_config.json``) and saved beside the post-trained encoder, so a run directory
carries everything needed to feed it. This module is a leaf: data code and model code both
import it, and it imports neither.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase
from transformers.image_processing_utils import ImageProcessingMixin, get_size_dict
from transformers.utils import cached_file

from .files import PREPROCESSOR_FILE_NAME, SENTENCE_BERT_CONFIG_NAME, write_text_atomic

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BICUBIC = 3  # PIL.Image.Resampling.BICUBIC, the DINOv2 processor's default


@dataclass(frozen=True)
class ImageProcessing:
    """What an encoder expects of its input images.

    Evaluation resizes the shorter side to ``image_size / crop_pct`` and center-crops
    ``image_size``; ``crop_pct`` is 224/256 for DINOv2's processor.
    """

    image_size: int
    image_mean: tuple[float, ...] = IMAGENET_MEAN
    image_std: tuple[float, ...] = IMAGENET_STD
    crop_pct: float = 1.0
    resample: int = BICUBIC

    @property
    def resize_size(self) -> int:
        return int(round(self.image_size / self.crop_pct))

    def with_image_size(self, image_size: Optional[int]) -> "ImageProcessing":
        if image_size is None:
            return self
        return ImageProcessing(image_size, self.image_mean, self.image_std, self.crop_pct, self.resample)

    def to_processor_dict(self) -> dict[str, Any]:
        """A ``preprocessor_config.json`` that ``AutoImageProcessor`` loads as DINOv2's processor."""
        return {
            "image_processor_type": "BitImageProcessor",
            "do_convert_rgb": True,
            "do_resize": True,
            "size": {"shortest_edge": self.resize_size},
            "resample": self.resample,
            "do_center_crop": True,
            "crop_size": {"height": self.image_size, "width": self.image_size},
            "do_rescale": True,
            "rescale_factor": 1 / 255,
            "do_normalize": True,
            "image_mean": list(self.image_mean),
            "image_std": list(self.image_std),
        }

    def protocol(self) -> dict[str, Any]:
        """What changes the features of an image, recorded with frozen-feature results."""
        return {"image_size": self.image_size, "preprocessing": self.to_processor_dict()}

    @classmethod
    def from_processor_dict(cls, processor: dict[str, Any], default_size: int) -> "ImageProcessing":
        # Older checkpoints (ViT, DeiT) store plain integers; normalise as their processors do.
        crop = get_size_dict(processor["crop_size"], param_name="crop_size") if processor.get("crop_size") else {}
        size = get_size_dict(processor["size"]) if processor.get("size") else {}
        crop_side = crop.get("height") if processor.get("do_center_crop", bool(crop)) else None
        resize_side = size.get("shortest_edge") or size.get("height")
        image_size = crop_side or resize_side or default_size
        crop_pct = image_size / resize_side if crop_side and resize_side else 1.0
        return cls(
            image_size=int(image_size),
            image_mean=tuple(processor.get("image_mean", IMAGENET_MEAN)),
            image_std=tuple(processor.get("image_std", IMAGENET_STD)),
            crop_pct=float(crop_pct),
            resample=int(processor.get("resample", BICUBIC)),
        )

    @classmethod
    def from_pretrained(cls, name_or_path: str, default_size: int, image_size: Optional[int] = None) -> "ImageProcessing":
        """The checkpoint's image-processor settings, or ImageNet defaults when it has none."""
        try:
            processor, _ = ImageProcessingMixin.get_image_processor_dict(name_or_path)
        except (OSError, ValueError) as error:
            logger.info("no image processor for %s (%s); using ImageNet defaults", name_or_path, error)
            processor = {}
        return cls.from_processor_dict(processor, default_size).with_image_size(image_size)

    def save_pretrained(self, directory: str | Path) -> None:
        write_text_atomic(Path(directory) / PREPROCESSOR_FILE_NAME, json.dumps(self.to_processor_dict(), indent=2) + "\n")


@dataclass(frozen=True)
class TextProcessing:
    """A tokenizer and the length texts are truncated to (sentence-transformers' ``max_seq_length``).

    Batches are padded to their longest text only (dynamic padding), as HF's
    ``DataCollatorWithPadding`` does.
    """

    tokenizer: PreTrainedTokenizerBase
    max_seq_length: int

    def __call__(self, texts: Sequence[str], text_pairs: Optional[Sequence[str]] = None) -> dict[str, torch.Tensor]:
        return dict(self.tokenizer(list(texts), list(text_pairs) if text_pairs is not None else None, padding=True,
                                   truncation=True, max_length=self.max_seq_length, return_tensors="pt"))

    def lengths(self, texts: Sequence[str], text_pairs: Optional[Sequence[str]] = None) -> list[int]:
        """Token counts after truncation, for length-grouped batching."""
        encoded = self.tokenizer(list(texts), list(text_pairs) if text_pairs is not None else None, truncation=True,
                                 max_length=self.max_seq_length)
        return [len(ids) for ids in encoded["input_ids"]]

    def protocol(self) -> dict[str, Any]:
        return {"max_seq_length": self.max_seq_length, "tokenizer": type(self.tokenizer).__name__,
                "vocab_size": len(self.tokenizer)}

    @classmethod
    def from_pretrained(cls, name_or_path: str, max_position_embeddings: Optional[int],
                        max_seq_length: Optional[int] = None) -> "TextProcessing":
        """The checkpoint's tokenizer; the length limit from ``max_seq_length``, else the checkpoint's
        ``sentence_bert_config.json``, else the smaller of the tokenizer's and the position embeddings' limits."""
        try:
            tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        except (OSError, ValueError) as error:
            raise ValueError(f"{name_or_path} has no tokenizer that AutoTokenizer can load ({error}); a text "
                             "encoder's folder needs its tokenizer files (save it with tokenizer.save_pretrained)") from error
        if max_seq_length is None:
            max_seq_length = read_sentence_transformers_file(name_or_path, SENTENCE_BERT_CONFIG_NAME).get("max_seq_length")
        if max_seq_length is None:
            limits = [v for v in (tokenizer.model_max_length, max_position_embeddings) if v and v < 1_000_000]
            max_seq_length = min(limits) if limits else 512
        if max_seq_length < 2:
            raise ValueError(f"max_seq_length={max_seq_length} must be at least 2 (room for the special tokens)")
        return cls(tokenizer, int(max_seq_length))

    def save_pretrained(self, directory: str | Path) -> None:
        self.tokenizer.save_pretrained(directory)
        write_text_atomic(Path(directory) / SENTENCE_BERT_CONFIG_NAME,
                          json.dumps({"max_seq_length": self.max_seq_length, "do_lower_case": False}, indent=2) + "\n")


def read_sentence_transformers_file(name_or_path: str, file_name: str) -> dict:
    """A sentence-transformers JSON file of a local folder or hub repository; {} when there is none."""
    try:
        path = cached_file(name_or_path, file_name, _raise_exceptions_for_missing_entries=False,
                           _raise_exceptions_for_connection_errors=False)
    except OSError:
        return {}
    return json.loads(Path(path).read_text()) if path else {}

