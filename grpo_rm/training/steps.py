"""The pieces of a training step, public so that benchmarks (and other loops) run exactly the loop's code:
the optimizer and schedule, the step of the method (with an optional L2-SP penalty) and of the head warm-up,
gradient clipping, the finite-gradient check, and saving the model from every process."""

from __future__ import annotations

import logging
import math
from functools import partial
from pathlib import Path
from typing import Callable

import torch
from accelerate import Accelerator
from torch.optim.lr_scheduler import LambdaLR
from transformers import get_scheduler

from ..config import RunConfig, TrainingArguments
from ..methods import CrossEntropyMethod, FrozenPolicy, L2SPRegularizer, Method
from ..models import EncoderWithHead
from .state import TrainState

logger = logging.getLogger(__name__)


def build_optimizer(model: EncoderWithHead, args: TrainingArguments) -> torch.optim.Optimizer:
    """AdamW with separate learning rates for backbone and head; no weight decay on biases, norms and tokens."""
    head_lr = args.head_learning_rate if args.head_learning_rate is not None else args.learning_rate
    groups = []
    for part, module, lr in (("encoder", model.encoder, args.learning_rate), ("head", model.head, head_lr)):
        decay, no_decay = [], []
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            skip = param.ndim <= 1 or "token" in name or "position_embedding" in name
            (no_decay if skip else decay).append(param)
        groups += [
            {"params": decay, "lr": lr, "weight_decay": args.weight_decay, "part": part},
            {"params": no_decay, "lr": lr, "weight_decay": 0.0, "part": part},
        ]
    groups = [group for group in groups if group["params"]]
    if not groups:
        raise ValueError("no trainable parameters")
    return torch.optim.AdamW(groups)


def build_scheduler(optimizer: torch.optim.Optimizer, args: TrainingArguments, head_warmup_steps: int,
                    method_steps: int) -> LambdaLR:
    """transformers' schedule over the method's steps; before them, during a head warm-up, the head's peak rate
    and none for the encoder."""
    schedule = get_scheduler(args.lr_scheduler_type, optimizer, math.ceil(args.warmup_ratio * method_steps),
                             method_steps)
    if not head_warmup_steps:
        return schedule
    return LambdaLR(optimizer, [partial(_after_head_warmup, factor, head_warmup_steps, group["part"] == "head")
                                for factor, group in zip(schedule.lr_lambdas, optimizer.param_groups)])


def _after_head_warmup(factor: Callable[[int], float], head_warmup_steps: int, is_head: bool, step: int) -> float:
    if step < head_warmup_steps:
        return float(is_head)
    return factor(step - head_warmup_steps)


def freeze_unused_parameters(model: EncoderWithHead, dummy_inputs: dict) -> None:
    """Freeze trainable parameters that the forward pass never reaches (e.g. DINOv2's mask token),
    which distributed data parallel would otherwise reject."""
    model.eval()  # no side effects on BatchNorm statistics or random draws
    model(**dummy_inputs).sum().backward()
    model.train()
    unused = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    for name, param in model.named_parameters():
        if name in unused:
            param.requires_grad_(False)
        param.grad = None
    if unused:
        logger.info("parameters outside the forward pass, kept frozen: %s", unused)


def training_step(accelerator: Accelerator, model, method: Method, old_policy: FrozenPolicy | None,
                  reference_policy: FrozenPolicy | None, batch: dict, l2sp: L2SPRegularizer | None = None):
    """Forward, the frozen policies on the same batch, the method's loss and backward; (loss, metrics).

    With ``l2sp``, its penalty on the encoder joins the method's loss before backward, so that gradient
    accumulation, DDP's gradient averaging and fp16 loss scaling treat it exactly as they treat the loss; the
    metrics gain ``l2sp_distance``. The loss returned (and logged) stays the method's, comparable between runs
    with and without L2-SP; the penalty is l2sp.weight / 2 * l2sp_distance ** 2.
    """
    inputs = batch["inputs"]
    with accelerator.autocast():
        logits, frozen_output = model(**inputs, return_frozen_output=True)
        old_logits = old_policy(**inputs, frozen_output=frozen_output) if old_policy is not None else None
        ref_logits = reference_policy(**inputs, frozen_output=frozen_output) if reference_policy is not None else None
    output = method(logits, batch["labels"], old_logits=old_logits, ref_logits=ref_logits)
    loss, metrics = output.loss, output.metrics
    if l2sp is not None:  # outside autocast: the penalty reads the float32 master weights, in their precision
        encoder = accelerator.unwrap_model(model).encoder
        loss = loss + l2sp.penalty(encoder)
        metrics = {**metrics, "l2sp_distance": l2sp.distance(encoder)}
    accelerator.backward(loss)
    return output.loss.detach(), metrics


def head_warmup_step(accelerator: Accelerator, model: EncoderWithHead, loss_fn: CrossEntropyMethod, batch: dict):
    """Cross-entropy on the head alone. The encoder runs without a graph, so the step bypasses the
    distributed wrapper (which would wait for encoder gradients that never come) and averages the head's
    gradients over processes itself, once per optimizer step."""
    with accelerator.autocast():
        with torch.no_grad():
            encoded = model.encode(**batch["inputs"])
        output = loss_fn(model.head(encoded), batch["labels"])
    accelerator.backward(output.loss)
    if accelerator.sync_gradients and accelerator.num_processes > 1:
        for param in model.head.parameters():
            if param.grad is not None:
                param.grad = accelerator.reduce(param.grad, reduction="mean")
    return output.loss.detach(), output.metrics


def clip_gradients(accelerator: Accelerator, model, max_grad_norm: float) -> torch.Tensor:
    """Clip to ``max_grad_norm`` (0: no clipping) and return the norm of the true (unscaled) gradients."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    if max_grad_norm > 0:
        return accelerator.clip_grad_norm_(parameters, max_grad_norm).detach()
    accelerator.unscale_gradients()  # report the norm of the true gradients under fp16 loss scaling
    grads = [p.grad.detach().norm() for p in parameters if p.grad is not None]
    return torch.stack(grads).norm() if grads else torch.zeros((), device=accelerator.device)


def finite_step(accelerator: Accelerator, grad_norm: torch.Tensor, state: TrainState, skip: bool) -> bool:
    """Whether to take this optimizer step. The gradient norm is that of the all-reduced gradients, so every
    process decides alike. fp16 overflows are the gradient scaler's to handle."""
    if accelerator.scaler is not None or bool(torch.isfinite(grad_norm)):
        return True
    if not skip:
        raise FloatingPointError(
            f"the loss or gradients are not finite at step {state.step + 1}; the last checkpoint (if any) is kept. "
            "Lower --learning_rate, or pass --skip_nonfinite_steps to skip such steps"
        )
    state.nonfinite_steps_skipped += 1
    logger.warning("non-finite gradients at step %d: step skipped (%d so far)", state.step + 1,
                   state.nonfinite_steps_skipped)
    return False


def share_buffers(accelerator: Accelerator, model) -> None:
    """Give every process rank 0's buffers (BatchNorm running statistics).

    DDP copies them from rank 0 at each training forward, but each rank's last batch
    moves its own copy again; evaluation and saving must all see the same model.
    """
    if accelerator.num_processes > 1:
        for buffer in accelerator.unwrap_model(model).buffers():
            torch.distributed.broadcast(buffer, src=0)


def save_model(accelerator: Accelerator, model, directory: Path, config: RunConfig) -> None:
    """The model as a run directory (``EncoderWithHead.save_pretrained``), written by the main process while
    the others wait."""
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(directory, run_config=config)
    accelerator.wait_for_everyone()
