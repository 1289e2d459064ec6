"""transformers vision encoders seen through one interface: a class token and patch tokens.

DINOv2 (with or without registers), ViT and other encoders whose output starts with
a class token load through ``AutoModel``. The tokens between the class token and the
patch grid (DINOv2 registers, DeiT's distillation token) are never treated as patches.
"""

from __future__ import annotations

import inspect
from typing import Optional

import torch
from torch import nn
from transformers import PreTrainedModel

from ..processing import ImageProcessing
from .encoders import Encoder, EncoderOutput, EncoderState


class VisionEncoder(Encoder):
    """A transformers vision model returning its class token and patch tokens."""

    modality = "image"
    default_pooling = "cls"
    splittable_model_types = frozenset({"dinov2", "dinov2_with_registers", "vit", "deit"})

    def __init__(self, model: PreTrainedModel):
        super().__init__(model)
        config = model.config
        self.patch_size = _as_int(getattr(config, "patch_size", None))
        if self.patch_size is None:
            raise ValueError(
                f"{type(model).__name__} has no patch_size in its config; grpo-rm needs a ViT-style encoder "
                "whose output starts with a class token (DINOv2, ViT, DeiT, BEiT ...)"
            )
        self._forward_kwargs = (
            {"interpolate_pos_encoding": True}
            if "interpolate_pos_encoding" in inspect.signature(model.forward).parameters
            else {}
        )

    def check_image_size(self, image_size: int) -> None:
        if image_size <= 0 or image_size % self.patch_size:
            lower = max(self.patch_size, image_size // self.patch_size * self.patch_size)
            upper = lower + self.patch_size if lower < image_size else lower
            raise ValueError(
                f"image_size {image_size} is not a multiple of the patch size {self.patch_size} of "
                f"{self.config.name_or_path or type(self.model).__name__}; nearest valid sizes: "
                f"{sorted({lower, upper})}"
            )

    def load_processor(self, name_or_path: str, image_size: Optional[int] = None, **_) -> ImageProcessing:
        processor = ImageProcessing.from_pretrained(name_or_path, self.default_image_size(), image_size)
        self.check_image_size(processor.image_size)
        return processor

    def default_image_size(self) -> int:
        image_size = getattr(self.config, "image_size", 224)
        return int(image_size[0] if isinstance(image_size, (tuple, list)) else image_size)

    def final_norm(self) -> nn.Module:
        return getattr(self.model, "layernorm", None) or nn.Identity()

    def forward(self, pixel_values: torch.Tensor, num_layers: int = 1) -> EncoderOutput:
        """Tokens of the last layer; with ``num_layers > 1`` also the patch tokens of the last
        ``num_layers`` layers, normed like the output (DINOv2's multi-layer evaluation heads)."""
        if self.can_split:
            return self.tail(self.prefix(pixel_values, num_layers), num_layers)
        grid = self._grid(pixel_values)
        output = self.model(pixel_values=pixel_values, output_hidden_states=num_layers > 1, **self._forward_kwargs)
        hidden = output.last_hidden_state
        earlier = list(output.hidden_states[-num_layers:-1]) if num_layers > 1 else None
        return self.make_output(hidden, earlier, self.final_norm(), grid, tuple(pixel_values.shape[-2:]),
                                self._num_prefix_tokens(hidden.shape[1], grid))

    def prefix(self, pixel_values: torch.Tensor, num_layers: int = 1) -> EncoderState:
        grid = self._grid(pixel_values)
        state = self._run_prefix({"pixel_values": pixel_values, **self._forward_kwargs}, num_layers, grid_size=grid,
                                 input_size=tuple(pixel_values.shape[-2:]))
        state.output_fields["num_prefix_tokens"] = self._num_prefix_tokens(state.hidden_states[-1].shape[1], grid)
        return state

    @staticmethod
    def make_output(hidden: torch.Tensor, earlier: Optional[list[torch.Tensor]], norm: nn.Module,
                    grid_size: tuple[int, int], input_size: tuple[int, int], num_prefix_tokens: int) -> EncoderOutput:
        layers = None
        if earlier is not None:
            layers = [norm(h)[:, num_prefix_tokens:] for h in earlier]
            layers.append(hidden[:, num_prefix_tokens:])
        return EncoderOutput(hidden[:, 0], hidden[:, num_prefix_tokens:], grid_size=grid_size, input_size=input_size,
                             layer_tokens=layers)

    def _grid(self, pixel_values: torch.Tensor) -> tuple[int, int]:
        height, width = pixel_values.shape[-2:]
        if height % self.patch_size or width % self.patch_size:
            self.check_image_size(height if height % self.patch_size else width)
        return height // self.patch_size, width // self.patch_size

    def _num_prefix_tokens(self, num_tokens: int, grid: tuple[int, int]) -> int:
        """The tokens before the patches: the class token, then registers or a distillation token."""
        num_prefix_tokens = num_tokens - grid[0] * grid[1]
        if num_prefix_tokens < 1:
            raise ValueError(
                f"{type(self.model).__name__} returned {num_tokens} tokens for a {grid[0]}x{grid[1]} patch grid; "
                "expected a class token before the patch tokens"
            )
        return num_prefix_tokens


def _as_int(value) -> Optional[int]:
    if isinstance(value, (tuple, list)):
        if len(set(value)) != 1:
            raise ValueError(f"non-square patch size {value} is not supported")
        value = value[0]
    return None if value is None else int(value)
