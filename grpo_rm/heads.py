"""Task heads on top of an encoder's tokens."""

from __future__ import annotations

from typing import Literal, Optional

import torch
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

    def settings(self) -> dict:
        """Everything needed to rebuild this head, as saved in ``head_config.json``."""
        return {
            "head_type": self.head_type,
            "head_input": self.head_input,
            "hidden_size": self.hidden_size,
            "num_labels": self.num_labels,
            "mlp_hidden_dim": self.mlp_hidden_dim,
        }
