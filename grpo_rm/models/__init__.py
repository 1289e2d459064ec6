"""Encoders (vision and text), pooling, heads, encoder + head as one saveable model, and weight interpolation
between two checkpoints of one architecture (WiSE-FT)."""

from .encoders import POOLING_MODES, Encoder, EncoderOutput, pool, resolve_model_name
from .heads import ClassificationHead, SegmentationHead
from .interpolation import interpolate_state_dicts
from .modeling import EncoderWithHead, assemble_model, load_encoder, read_head_config
from .text import TextEncoder
from .vision import VisionEncoder

__all__ = [
    "POOLING_MODES",
    "ClassificationHead",
    "Encoder",
    "EncoderOutput",
    "EncoderWithHead",
    "SegmentationHead",
    "TextEncoder",
    "VisionEncoder",
    "assemble_model",
    "interpolate_state_dicts",
    "load_encoder",
    "pool",
    "read_head_config",
    "resolve_model_name",
]
