"""Where a run executes: one Accelerator set up the same way for training and evaluation."""

from __future__ import annotations

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState


def make_accelerator(use_cpu: bool = False, **kwargs) -> Accelerator:
    """An ``Accelerator`` that also forms a process group on CPU-only machines.

    Without ``cpu=True`` accelerate ignores a torchrun launch on a machine with no
    accelerator, and every process would train alone believing it is the main one.
    """
    cpu = use_cpu or not torch.accelerator.is_available()
    # accelerate keeps one state per process; a new run (another precision, say) needs a fresh
    # one. The process group (PartialState) stays, as transformers' Trainer also does.
    AcceleratorState._reset_state()
    return Accelerator(cpu=cpu, **kwargs)
