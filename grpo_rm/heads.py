"""Task heads on top of an encoder's tokens."""

from __future__ import annotations

from typing import Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import EncoderOutput

HeadInput = Literal["cls", "cls+mean"]
HEAD_INPUTS = ("cls", "cls+mean")
HEAD_TYPES = ("linear", "mlp")


def image_features(output: EncoderOutput, head_input: HeadInput) -> torch.Tensor:
    """One vector per image: the class token, or class token ++ mean patch token as in DINOv2's linear eval."""
    if head_input == "cls":
        return output.cls_token
    if head_input == "cls+mean":
        return torch.cat([output.cls_token, output.patch_tokens.mean(dim=1)], dim=-1)
    raise ValueError(f"head_input={head_input!r} is not one of {HEAD_INPUTS}")


def feature_dim(hidden_size: int, head_input: HeadInput) -> int:
    return 2 * hidden_size if head_input == "cls+mean" else hidden_size


class ClassificationHead(nn.Module):
    """Linear (default) or one-hidden-layer MLP classifier on pooled image features."""

    def __init__(
        self,
        hidden_size: int,
        num_labels: int,
        head_type: str = "linear",
        head_input: HeadInput = "cls",
        mlp_hidden_dim: Optional[int] = None,
    ):
        super().__init__()
        if head_type not in HEAD_TYPES:
            raise ValueError(f"head_type={head_type!r} is not one of {HEAD_TYPES}")
        if head_input not in HEAD_INPUTS:
            raise ValueError(f"head_input={head_input!r} is not one of {HEAD_INPUTS}")
        self.head_type = head_type
        self.head_input = head_input
        self.hidden_size = hidden_size
        self.num_labels = num_labels
        in_features = feature_dim(hidden_size, head_input)
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
        return self.layers(image_features(output, self.head_input))

    num_layers = 1  # encoder layers the head reads

    def settings(self) -> dict:
        """Everything needed to rebuild this head, as saved in ``head_config.json``."""
        return {
            "task": "classification",
            "head_type": self.head_type,
            "head_input": self.head_input,
            "hidden_size": self.hidden_size,
            "num_labels": self.num_labels,
            "mlp_hidden_dim": self.mlp_hidden_dim,
        }


class SegmentationHead(nn.Module):
    """Per-pixel linear head on patch tokens (DINOv2's linear / multi-layer segmentation head).

    Patch tokens on their h x w grid (concatenated over the last ``num_layers`` layers)
    go through BatchNorm (optional) and a 1x1 conv to C logits, which are bilinearly
    upsampled to the requested size. BatchNorm in eval mode and the 1x1 conv are
    per-pixel affine maps, so this equals upsampling the tokens first and projecting
    after, at a fraction of the memory; in training BatchNorm's batch statistics come
    from the patch grid rather than the upsampled one.
    """

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

    def forward(self, output: EncoderOutput, size: tuple[int, int]) -> torch.Tensor:
        tokens = output.layer_patch_tokens if self.num_layers > 1 else [output.patch_tokens]
        if tokens is None or len(tokens) != self.num_layers:
            raise ValueError(f"the head needs patch tokens of {self.num_layers} layers")
        grid = torch.cat(tokens, dim=-1).transpose(1, 2).reshape(
            tokens[0].shape[0], -1, *output.grid_size
        ).contiguous()
        logits = self.classifier(self.norm(grid))
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)

    def settings(self) -> dict:
        return {
            "task": "segmentation",
            "head_type": "linear",
            "hidden_size": self.hidden_size,
            "num_labels": self.num_labels,
            "num_layers": self.num_layers,
            "batchnorm": self.batchnorm,
        }
