"""Where a comparison's rows run on this machine: one after the other in this process, or several at once, each a
``grpo-rm train`` process of its own with its share of the cores or its GPUs.

Cores are split between the rows that run at once: each row's ``num_threads`` (and its ``OMP_NUM_THREADS``) is
its share, so N rows on C cores never run more than C threads (benchmarks/RESULTS.md: two unbudgeted runs on two
cores each take several times as long as one alone). GPUs go to rows in groups of ``gpus_per_row`` devices
(``CUDA_VISIBLE_DEVICES``); a row with several runs under ``torchrun`` (DDP).

A row that exits with grpo-rm's pre-emption code (SIGTERM / SIGUSR1: it wrote a checkpoint) is started again, and
continues from its checkpoint (every compare row has ``--resume_from_checkpoint latest``).
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
import traceback
from typing import Callable, Optional, Sequence

from ..config import RunConfig
from ..training import PREEMPTED_EXIT_CODE
from .rows import Outcome, Progress, Row

logger = logging.getLogger(__name__)

# How often a row pre-empted again and again is started before it counts as failed.
MAX_RESTARTS = 3


class InProcessLauncher:
    """Every row in this process, one after the other, as ``compare`` always did: ``train`` is the train command's
    function (``commands.train.run_training``)."""

    def __init__(self, train: Callable[[RunConfig], dict], show_progress: bool = True):
        self.train = train
        self.show_progress = show_progress

    def run(self, rows: Sequence[Row]) -> list[Outcome]:
        progress = Progress(rows, self.show_progress)
        outcomes = []
        try:
            for row in rows:
                progress.started(row)
                try:
                    self.train(row.config)
                    outcome = Outcome(row, "finished")
                except Exception as error:  # the row's own failure: report it and go on with the others
                    row.launch_dir.mkdir(parents=True, exist_ok=True)
                    row.log_path.write_text(traceback.format_exc())
                    outcome = Outcome(row, "failed", f"{type(error).__name__}: {error}; see {row.log_path}")
                progress.ended(outcome)
                outcomes.append(outcome)
        finally:
            progress.close()
        return outcomes


class LocalLauncher:
    """Up to ``max_parallel`` rows at once, each its own ``grpo-rm train`` process.

    On GPUs (``gpus`` devices, default: those this process sees) each row gets ``gpus_per_row`` of them; on CPU
    each gets ``cores // max_parallel`` threads. A row that fails is reported with its log; the others go on.
    """

    def __init__(self, max_parallel: int, gpus_per_row: int = 1, gpus: Optional[Sequence[str]] = None,
                 cores: Optional[int] = None, show_progress: bool = True, poll_seconds: float = 0.2):
        if max_parallel < 1:
            raise ValueError(f"max_parallel={max_parallel} must be >= 1")
        self.gpus = list(gpus) if gpus is not None else visible_gpus()
        self.gpus_per_row = gpus_per_row
        if self.gpus:
            slots = len(self.gpus) // gpus_per_row
            if slots < 1:
                raise ValueError(f"gpus_per_row={gpus_per_row} but only {len(self.gpus)} GPU(s) are visible")
            if max_parallel > slots:
                logger.info("max_parallel %d > %d groups of %d GPU(s): running %d rows at once", max_parallel,
                            slots, gpus_per_row, slots)
            self.max_parallel = min(max_parallel, slots)
            self.threads = None
        else:
            self.max_parallel = max_parallel
            self.threads = max(1, (cores or os.cpu_count() or 1) // max_parallel)
        self.show_progress = show_progress
        self.poll_seconds = poll_seconds

    def row_config(self, row: Row) -> RunConfig:
        """The row's config as launched: on CPU with its share of the cores."""
        return row.config if self.threads is None else row.config.with_overrides(num_threads=self.threads)

    def _environment(self, slot: int) -> dict[str, str]:
        env = dict(os.environ)
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(self.gpus[slot * self.gpus_per_row:(slot + 1) * self.gpus_per_row])
        else:
            env["OMP_NUM_THREADS"] = str(self.threads)
            env["MKL_NUM_THREADS"] = str(self.threads)
        return env

    def run(self, rows: Sequence[Row]) -> list[Outcome]:
        pending = list(rows)
        for row in pending:
            row.config = self.row_config(row)
            row.write_config()
        running: dict[int, tuple[Row, subprocess.Popen, int]] = {}  # slot -> (row, process, attempt)
        outcomes: list[Outcome] = []
        progress = Progress(rows, self.show_progress)
        processes = self.gpus_per_row if self.gpus else 1
        try:
            while pending or running:
                for slot in range(self.max_parallel):
                    if slot not in running and pending:
                        row = pending.pop(0)
                        running[slot] = (row, self._start(row, slot, processes), 1)
                        progress.started(row)
                for slot, (row, process, attempt) in list(running.items()):
                    code = process.poll()
                    if code is None:
                        continue
                    if code == PREEMPTED_EXIT_CODE and attempt <= MAX_RESTARTS:
                        logger.info("%s was pre-empted (it saved a checkpoint): starting it again", row.label)
                        running[slot] = (row, self._start(row, slot, processes), attempt + 1)
                        continue
                    del running[slot]
                    outcome = (Outcome(row, "finished", attempts=attempt) if code == 0 and row.finished else
                               Outcome(row, "failed", f"exit code {code}; see {row.log_path}", attempts=attempt))
                    progress.ended(outcome)
                    outcomes.append(outcome)
                time.sleep(self.poll_seconds)
        finally:
            for _, process, _ in running.values():  # interrupted (Ctrl-C): no row keeps running unseen
                process.terminate()
            progress.close()
        return outcomes

    def _start(self, row: Row, slot: int, processes: int) -> subprocess.Popen:
        with row.log_path.open("a") as log:  # the process writes to its own copy of the file descriptor
            log.write(f"$ {' '.join(row.command(processes))}\n")
            log.flush()
            return subprocess.Popen(row.command(processes), env=self._environment(slot), stdout=log,
                                    stderr=subprocess.STDOUT)


def visible_gpus() -> list[str]:
    """The CUDA devices this process may use, as ``CUDA_VISIBLE_DEVICES`` names them."""
    import torch

    if not torch.cuda.is_available():
        return []
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed:
        return [device.strip() for device in listed.split(",") if device.strip()]
    return [str(index) for index in range(torch.cuda.device_count())]
