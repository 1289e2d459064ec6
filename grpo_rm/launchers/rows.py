"""A comparison's row as something to launch: a ``grpo-rm train`` with a config file, and what became of it.

The row's configuration is written to ``<compare output>/launch/<row>-seed<N>/run_config.yaml`` and its output
to ``log.txt`` beside it, so a row run by any launcher (this process, a local process, a SLURM job) is the same
command on the same file: its run directory and results are those a sequential comparison would have.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from tqdm.auto import tqdm

from ..config import RunConfig
from ..files import ALL_RESULTS_NAME, CONFIG_FILE_NAME, LAUNCH_LOG_NAME


@dataclass
class Row:
    """One (row, seed) of a comparison to train. ``launch_dir`` holds its config file and its log."""

    name: str
    seed: int
    config: RunConfig
    launch_dir: Path

    @property
    def label(self) -> str:
        return f"{self.name} seed {self.seed}"

    @property
    def run_dir(self) -> Path:
        return Path(self.config.training.output_dir)

    @property
    def config_path(self) -> Path:
        return self.launch_dir / CONFIG_FILE_NAME

    @property
    def log_path(self) -> Path:
        return self.launch_dir / LAUNCH_LOG_NAME

    @property
    def finished(self) -> bool:
        return (self.run_dir / ALL_RESULTS_NAME).is_file()

    def write_config(self) -> Path:
        """The row's configuration as the file its command reads."""
        self.config.save(self.launch_dir)
        return self.config_path

    def command(self, processes: int = 1) -> list[str]:
        """The command that trains the row: ``grpo-rm train --config <file>``, under ``torchrun`` for several
        processes (GPUs) of one machine."""
        train = ["-m", "grpo_rm.cli", "train", "--config", str(self.config_path)]
        if processes > 1:
            return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                    str(processes), *train]
        return [sys.executable, *train]


@dataclass
class Outcome:
    """What launching a row came to: ``finished``, ``failed`` (with the log to read) or ``submitted`` (a job still
    pending or running, collected by running the comparison again)."""

    row: Row
    status: str
    detail: Optional[str] = None
    attempts: int = 1
    extra: dict = field(default_factory=dict)


class Progress:
    """One bar over a comparison's rows: done, running, pending, failed, and the time left."""

    def __init__(self, rows: Sequence[Row], enabled: bool = True):
        self.total = len(rows)
        self.counts = {"running": 0, "failed": 0}
        self.bar = tqdm(total=self.total, desc="compare rows", unit="row", disable=not enabled or not rows)
        self.start = time.perf_counter()
        self._show()

    def started(self, row: Row) -> None:
        self.counts["running"] += 1
        self._show()

    def ended(self, outcome: Outcome) -> None:
        self.counts["running"] -= 1
        if outcome.status == "failed":
            self.counts["failed"] += 1
        self.bar.update(1)
        self._show()

    def _show(self) -> None:
        pending = self.total - self.bar.n - self.counts["running"]
        self.bar.set_postfix(running=self.counts["running"], pending=pending, failed=self.counts["failed"],
                             refresh=True)

    def close(self) -> None:
        self.bar.close()
