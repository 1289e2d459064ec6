"""transformers vision encoders seen through one interface: a class token and patch tokens.

DINOv2 (with or without registers), ViT and other encoders whose output starts with
a class token load through ``AutoModel``. The tokens between the class token and the
patch grid (DINOv2 registers, DeiT's distillation token) are never treated as patches.
"""

from __future__ import annotations

import inspect
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers.image_processing_utils import ImageProcessingMixin, get_size_dict

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PREPROCESSOR_FILE_NAME = "preprocessor_config.json"
BICUBIC = 3  # PIL.Image.Resampling.BICUBIC, the DINOv2 processor's default


@dataclass(frozen=True)
class Preprocessing:
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

    def with_image_size(self, image_size: Optional[int]) -> "Preprocessing":
        if image_size is None:
            return self
        return Preprocessing(image_size, self.image_mean, self.image_std, self.crop_pct, self.resample)

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

    @classmethod
    def from_processor_dict(cls, processor: dict[str, Any], default_size: int) -> "Preprocessing":
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
    def from_pretrained(cls, name_or_path: str, default_size: int) -> "Preprocessing":
        """The checkpoint's image-processor settings, or ImageNet defaults when it has none."""
        try:
            processor, _ = ImageProcessingMixin.get_image_processor_dict(name_or_path)
        except (OSError, ValueError) as error:
            logger.info("no image processor for %s (%s); using ImageNet defaults", name_or_path, error)
            processor = {}
        return cls.from_processor_dict(processor, default_size)

    def save_pretrained(self, directory: str | Path) -> None:
        path = Path(directory) / PREPROCESSOR_FILE_NAME
        path.write_text(json.dumps(self.to_processor_dict(), indent=2) + "\n")


@dataclass
class EncoderOutput:
    cls_token: torch.Tensor  # [N, D]
    patch_tokens: torch.Tensor  # [N, h*w, D]
    grid_size: tuple[int, int]  # (h, w)
    # Patch tokens of the last layers, first to last, each after the final norm; only when asked for.
    layer_patch_tokens: Optional[list[torch.Tensor]] = None


class Encoder(nn.Module):
    """A transformers vision model returning its class token and patch tokens."""

    def __init__(self, model: PreTrainedModel):
        super().__init__()
        self.model = model
        config = model.config
        self.patch_size = _as_int(getattr(config, "patch_size", None))
        if self.patch_size is None:
            raise ValueError(
                f"{type(model).__name__} has no patch_size in its config; grpo-rm needs a ViT-style encoder "
                "whose output starts with a class token (DINOv2, ViT, DeiT, BEiT ...)"
            )
        self.hidden_size = int(config.hidden_size)
        self._forward_kwargs = (
            {"interpolate_pos_encoding": True}
            if "interpolate_pos_encoding" in inspect.signature(model.forward).parameters
            else {}
        )
        # The pooler (if any) is not part of the class-token path: keep its weights,
        # but out of training so that distributed training sees no unused parameters.
        pooler = getattr(model, "pooler", None)
        if pooler is not None:
            pooler.requires_grad_(False)

    @property
    def config(self):
        return self.model.config

    def check_image_size(self, image_size: int) -> None:
        if image_size <= 0 or image_size % self.patch_size:
            lower = max(self.patch_size, image_size // self.patch_size * self.patch_size)
            upper = lower + self.patch_size if lower < image_size else lower
            raise ValueError(
                f"image_size {image_size} is not a multiple of the patch size {self.patch_size} of "
                f"{self.config.name_or_path or type(self.model).__name__}; nearest valid sizes: "
                f"{sorted({lower, upper})}"
            )

    def forward(self, pixel_values: torch.Tensor, num_layers: int = 1) -> EncoderOutput:
        """Tokens of the last layer; with ``num_layers > 1`` also the patch tokens of the last
        ``num_layers`` layers, normed like the output (DINOv2's multi-layer evaluation heads)."""
        height, width = pixel_values.shape[-2:]
        if height % self.patch_size or width % self.patch_size:
            self.check_image_size(height if height % self.patch_size else width)
        grid = (height // self.patch_size, width // self.patch_size)
        output = self.model(pixel_values=pixel_values, output_hidden_states=num_layers > 1, **self._forward_kwargs)
        hidden = output.last_hidden_state
        num_prefix_tokens = hidden.shape[1] - grid[0] * grid[1]
        if num_prefix_tokens < 1:
            raise ValueError(
                f"{type(self.model).__name__} returned {hidden.shape[1]} tokens for a {grid[0]}x{grid[1]} patch grid; "
                "expected a class token before the patch tokens"
            )
        layers = None
        if num_layers > 1:
            norm = getattr(self.model, "layernorm", None) or nn.Identity()
            layers = [norm(h)[:, num_prefix_tokens:] for h in output.hidden_states[-num_layers:-1]]
            layers.append(hidden[:, num_prefix_tokens:])
        return EncoderOutput(hidden[:, 0], hidden[:, num_prefix_tokens:], grid, layers)

    def blocks(self) -> nn.ModuleList:
        """The transformer blocks, first to last."""
        depth = getattr(self.config, "num_hidden_layers", None)
        for module in self.model.modules():
            if isinstance(module, nn.ModuleList) and len(module) == depth:
                return module
        raise ValueError(f"cannot find the {depth} transformer blocks of {type(self.model).__name__}")

    def set_trainable(self, freeze_backbone: bool, train_last_n_blocks: Optional[int]) -> None:
        """Freeze all, or everything up to the last N blocks (those and the final norm stay trainable)."""
        if freeze_backbone:
            self.model.requires_grad_(False)
            return
        if train_last_n_blocks is None:
            return
        blocks = self.blocks()
        if not 0 <= train_last_n_blocks <= len(blocks):
            raise ValueError(f"train_last_n_blocks={train_last_n_blocks} must be in [0, {len(blocks)}]")
        frozen_blocks = {id(p) for block in blocks[: len(blocks) - train_last_n_blocks] for p in block.parameters()}
        for name, param in self.model.named_parameters():
            if name.startswith("embeddings.") or id(param) in frozen_blocks:
                param.requires_grad_(False)

    def save_pretrained(self, directory: str | Path) -> None:
        self.model.save_pretrained(directory)


def _as_int(value) -> Optional[int]:
    if isinstance(value, (tuple, list)):
        if len(set(value)) != 1:
            raise ValueError(f"non-square patch size {value} is not supported")
        value = value[0]
    return None if value is None else int(value)


def load_encoder(name_or_path: str) -> Encoder:
    """Load an encoder from a hub id or a ``save_pretrained`` directory."""
    name_or_path = str(Path(name_or_path).expanduser()) if name_or_path.startswith("~") else name_or_path
    if Path(name_or_path).exists() and not (Path(name_or_path) / "config.json").is_file():
        raise FileNotFoundError(f"{name_or_path} has no config.json: it is not a save_pretrained model directory")
    # Weights load in float32 whatever they were saved in: training keeps float32 master
    # weights, and mixed precision is accelerate's job.
    return Encoder(AutoModel.from_pretrained(name_or_path, dtype=torch.float32))


def default_image_size(encoder: Encoder) -> int:
    image_size = getattr(encoder.config, "image_size", 224)
    return int(image_size[0] if isinstance(image_size, (tuple, list)) else image_size)
