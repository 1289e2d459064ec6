"""Pre-emption: SIGTERM (what SLURM and Kubernetes send before a kill), SIGUSR1 (what SLURM's ``--signal`` can
send) or SIGUSR2 (submitit's signal for a job that is pre-empted or about to time out) asks the run to finish its
optimizer step, checkpoint and exit."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Optional

import torch
from accelerate import Accelerator

logger = logging.getLogger(__name__)

PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


class PreemptionWatch:
    """Records a pre-emption signal; every process agrees on whether one arrived anywhere."""

    def __init__(self):
        self.signal_name: Optional[str] = None
        self._previous = {}
        if threading.current_thread() is not threading.main_thread():
            logger.warning("training outside the main thread: pre-emption signals are not handled")
            return
        for number in PREEMPTION_SIGNALS:
            self._previous[number] = signal.signal(number, self._record)

    def _record(self, number, frame) -> None:
        self.signal_name = signal.Signals(number).name
        logger.warning("%s received: finishing this step, then saving a checkpoint", self.signal_name)

    def requested(self, accelerator: Accelerator) -> bool:
        flag = torch.tensor(float(self.signal_name is not None), device=accelerator.device)
        if accelerator.num_processes > 1:
            flag = accelerator.reduce(flag, reduction="sum")
        if flag.item() > 0 and self.signal_name is None:
            self.signal_name = "a pre-emption signal to another process"
        return flag.item() > 0

    def close(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}
