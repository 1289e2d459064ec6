"""Task heads on top of an encoder's output: one vector per input (classification), or per pixel."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .encoders import POOLING_MODES, EncoderOutput, pool, pooled_dim

HEAD_TYPES = ("linear", "mlp")


class ClassificationHead(nn.Module):
    """Linear (default) or one-hidden-layer MLP classifier on the pooled encoder output."""

    kind = "classification"
    num_layers = 1  # encoder layers the head reads

    def __init__(self, hidden_size: int, num_labels: int, head_type: str = "linear", pooling: str = "cls",
                 mlp_hidden_dim: Optional[int] = None):
        super().__init__()
        if head_type not in HEAD_TYPES:
            raise ValueError(f"head_type={head_type!r} is not one of {HEAD_TYPES}")
        if pooling not in POOLING_MODES:
            raise ValueError(f"pooling={pooling!r} is not one of {POOLING_MODES}")
        self.head_type = head_type
        self.pooling = pooling
        self.hidden_size = hidden_size
        self.num_labels = num_labels
        in_features = pooled_dim(hidden_size, pooling)
        if head_type == "linear":
            self.mlp_hidden_dim = None
            self.layers = nn.Linear(in_features, num_labels)
            # DINOv2's linear evaluation initialisation.
            nn.init.normal_(self.layers.weight, std=0.01)
            nn.init.zeros_(self.layers.bias)
        else:
            self.mlp_hidden_dim = mlp_hidden_dim or hidden_size
            self.layers = nn.Sequential(
                nn.Linear(in_features, self.mlp_hidden_dim), nn.GELU(), nn.Linear(self.mlp_hidden_dim, num_labels)
            )

    def forward(self, output: EncoderOutput) -> torch.Tensor:
        return self.layers(pool(output, self.pooling))

    def settings(self) -> dict:
        """Everything needed to rebuild this head, as saved in ``head_config.json``."""
        return {
            "head": self.kind,
            "head_type": self.head_type,
            "pooling": self.pooling,
            "hidden_size": self.hidden_size,
            "num_labels": self.num_labels,
            "mlp_hidden_dim": self.mlp_hidden_dim,
        }

    @classmethod
    def from_settings(cls, settings: dict) -> "ClassificationHead":
        return cls(settings["hidden_size"], settings["num_labels"], settings["head_type"], settings["pooling"],
                   settings["mlp_hidden_dim"])


class SegmentationHead(nn.Module):
    """Per-pixel linear head on patch tokens (DINOv2's linear / multi-layer segmentation head).

    Patch tokens on their h x w grid (concatenated over the last ``num_layers`` layers)
    go through BatchNorm (optional) and a 1x1 conv to C logits, which are bilinearly
    upsampled to the input's size. BatchNorm in eval mode and the 1x1 conv are
    per-pixel affine maps, so this equals upsampling the tokens first and projecting
    after, at a fraction of the memory; in training BatchNorm's batch statistics come
    from the patch grid rather than the upsampled one.
    """

    kind = "segmentation"

    def __init__(self, hidden_size: int, num_labels: int, num_layers: int = 1, batchnorm: bool = True):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers={num_layers} must be >= 1")
        self.hidden_size = hidden_size
        self.num_labels = num_labels
        self.num_layers = num_layers
        self.batchnorm = batchnorm
        channels = hidden_size * num_layers
        self.norm = nn.BatchNorm2d(channels) if batchnorm else nn.Identity()
        self.classifier = nn.Conv2d(channels, num_labels, kernel_size=1)
        nn.init.normal_(self.classifier.weight, std=0.01)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, output: EncoderOutput) -> torch.Tensor:
        if output.grid_size is None:
            raise ValueError("the segmentation head needs an image encoder's patch grid")
        tokens = output.layer_tokens if self.num_layers > 1 else [output.tokens]
        if tokens is None or len(tokens) != self.num_layers:
            raise ValueError(f"the head needs patch tokens of {self.num_layers} layers")
        grid = torch.cat(tokens, dim=-1).transpose(1, 2).reshape(
            tokens[0].shape[0], -1, *output.grid_size
        ).contiguous()
        logits = self.classifier(self.norm(grid))
        return F.interpolate(logits, size=output.input_size, mode="bilinear", align_corners=False)

    def settings(self) -> dict:
        return {
            "head": self.kind,
            "head_type": "linear",
            "hidden_size": self.hidden_size,
            "num_labels": self.num_labels,
            "num_layers": self.num_layers,
            "batchnorm": self.batchnorm,
        }

    @classmethod
    def from_settings(cls, settings: dict) -> "SegmentationHead":
        return cls(settings["hidden_size"], settings["num_labels"], settings["num_layers"], settings["batchnorm"])


HEADS = {head.kind: head for head in (ClassificationHead, SegmentationHead)}
