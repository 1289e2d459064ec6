"""Checkpoints named as HF Trainer names them (``checkpoint-<step>``), written so that none is ever half there.

A checkpoint is accelerate's ``save_state`` (model as safetensors, optimizer, gradient
scaler, the RNG states of every library and process) plus, in formats that cannot run
code when read: the ``TrainState`` and the LR scheduler as JSON, the frozen old (and
reference) policy as safetensors, and the run config. It is written to a hidden sibling
folder and renamed into place, so a kill during the write leaves the previous checkpoint
the latest one. accelerate reads its own files with ``torch.load(weights_only=True)``;
``register_for_checkpointing`` would read ours with ``weights_only=False``, which is why
the state is JSON instead.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Optional

from accelerate import Accelerator
from safetensors.torch import load_file, save_file

from ..config import RunConfig, resumable_keys
from ..files import (
    CHECKPOINT_PREFIX,
    POLICY_FILE_NAMES,
    SCHEDULER_STATE_NAME,
    TRAINER_STATE_NAME,
    write_text_atomic,
)
from ..methods import FrozenPolicy
from .state import TrainState

logger = logging.getLogger(__name__)

PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL: try again later (a scheduler's requeue resumes the run)


class TrainingPreempted(Exception):
    """Raised after a pre-emption signal once the checkpoint is written; the CLI exits with ``PREEMPTED_EXIT_CODE``."""

    def __init__(self, checkpoint: Path, signal_name: str):
        super().__init__(f"{signal_name} received: saved {checkpoint}; continue with --resume_from_checkpoint latest")
        self.checkpoint = checkpoint


def checkpoint_step(path: Path) -> Optional[int]:
    match = re.fullmatch(rf"{CHECKPOINT_PREFIX}(\d+)", path.name)
    return int(match.group(1)) if match and (path / TRAINER_STATE_NAME).is_file() else None


def list_checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    if not output_dir.is_dir():
        return []
    found = [(checkpoint_step(p), p) for p in output_dir.iterdir() if p.is_dir()]
    return [path for step, path in sorted((s, p) for s, p in found if s is not None)]


def resolve_checkpoint(spec: Optional[str], output_dir: Path) -> Optional[Path]:
    """``latest`` -> the newest complete checkpoint in ``output_dir`` (None when there is none yet);
    a path -> that checkpoint, which must be complete."""
    if not spec:
        return None
    if spec == "latest":
        checkpoints = list_checkpoints(output_dir)
        return checkpoints[-1] if checkpoints else None
    path = Path(spec).expanduser()
    if not (path / TRAINER_STATE_NAME).is_file():
        raise FileNotFoundError(f"resume_from_checkpoint {spec}: no {TRAINER_STATE_NAME} there; pass a "
                                f"{CHECKPOINT_PREFIX}<step> folder of a run, or 'latest'")
    return path


def check_resumable(checkpoint: Path, config: RunConfig) -> None:
    """Refuse to resume with settings that change the model, data, method or objective: every key but those whose
    field says a resumed run may change them (``config.resumable_keys``)."""
    saved = RunConfig.from_run_dir(checkpoint).to_dict()
    wanted = config.to_dict()
    allowed = set(resumable_keys())
    differing = sorted(k for k in wanted if k not in allowed and saved.get(k) != wanted[k])
    if differing:
        details = ", ".join(f"{k}: {saved.get(k)!r} in the checkpoint, {wanted[k]!r} now" for k in differing)
        raise ValueError(f"cannot resume from {checkpoint} with other settings ({details}); resume with the "
                         "checkpoint's settings, or start a new run in another --output_dir")


def save_checkpoint(accelerator: Accelerator, output_dir: Path, state: TrainState, scheduler,
                    policies: dict[str, Optional[FrozenPolicy]], config: RunConfig,
                    save_total_limit: Optional[int]) -> Path:
    final = output_dir / f"{CHECKPOINT_PREFIX}{state.step}"
    staging = output_dir / f".{final.name}.tmp"
    if accelerator.is_main_process and staging.exists():
        shutil.rmtree(staging)  # left by a run killed while writing
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging), safe_serialization=True)
    if accelerator.is_main_process:
        write_text_atomic(staging / SCHEDULER_STATE_NAME, json.dumps(scheduler.state_dict()) + "\n")
        for name, policy in policies.items():
            if policy is not None:
                save_file({k: v.detach().cpu().contiguous() for k, v in policy.model.state_dict().items()},
                          staging / POLICY_FILE_NAMES[name])
        config.save(staging)
        state.save(staging / TRAINER_STATE_NAME)  # last: its presence marks a complete checkpoint
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
        _rotate(output_dir, save_total_limit)
        logger.info("saved %s", final)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator: Accelerator, checkpoint: Path, scheduler,
                    policies: dict[str, Optional[FrozenPolicy]]) -> TrainState:
    """Restore model, optimizer, scaler and RNG states (accelerate), then the scheduler, frozen policies and state."""
    accelerator.load_state(str(checkpoint))
    scheduler.load_state_dict(json.loads((checkpoint / SCHEDULER_STATE_NAME).read_text()))
    for name, policy in policies.items():
        if policy is not None:
            file = checkpoint / POLICY_FILE_NAMES[name]
            try:
                policy.model.load_state_dict(load_file(file))
            except RuntimeError as error:  # e.g. a whole-model copy, as grpo-rm wrote before sharing frozen blocks
                raise ValueError(
                    f"{file} does not hold the frozen policy this run builds ({policy.model.__class__.__name__} of the "
                    f"trainable part): {str(error).splitlines()[0]} It was written by another grpo-rm version or "
                    "with other freezing settings; resume it with the grpo-rm version that wrote it, or start a new "
                    "run in another --output_dir") from error
    state = TrainState.load(checkpoint / TRAINER_STATE_NAME)
    logger.info("resumed from %s at step %d (epoch %d, batch %d)", checkpoint, state.step, state.epoch + 1,
                state.batches_in_epoch)
    return state


def _rotate(output_dir: Path, save_total_limit: Optional[int]) -> None:
    if not save_total_limit:
        return
    for old in list_checkpoints(output_dir)[:-save_total_limit]:
        shutil.rmtree(old)
