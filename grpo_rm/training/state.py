"""Everything a resumed run needs that is not a tensor of the model, optimizer or frozen policies.

``TrainState`` is saved as JSON in every checkpoint (like HF Trainer's ``trainer_state.json``),
so reading it can never run code.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator

from ..files import write_text_atomic
from ..objective import at_least_float32


@dataclass
class TrainState:
    step: int = 0  # optimizer steps done
    epoch: int = 0  # the epoch in progress (0-based)
    batches_in_epoch: int = 0  # batches of that epoch consumed: the data position
    samples_seen: int = 0  # over all processes
    loss_sum: float = 0.0  # sum over logged steps of the loss, for train_loss
    train_runtime: float = 0.0  # seconds of training before this process started (resumes add up)
    best_score: float = -1.0
    best_epoch: int = 0
    nonfinite_steps_skipped: int = 0
    log_lines: int = 0  # lines of metrics.jsonl written: a resume keeps exactly these
    validation_metrics: dict = field(default_factory=dict)  # the last epoch's
    best_validation_metrics: dict = field(default_factory=dict)  # those of the epoch with the best score
    tracker_run_ids: dict = field(default_factory=dict)  # MLflow's and W&B's run ids, continued on resume
    # The metric window since the last log: sums of per-step means, already averaged over processes.
    window_sums: dict = field(default_factory=dict)
    window_counts: dict = field(default_factory=dict)  # batches behind each sum
    window_steps: int = 0  # optimizer steps in the window

    def state_dict(self) -> dict:
        return dataclasses.asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)

    def save(self, path: str | Path) -> None:
        write_text_atomic(path, json.dumps(self.state_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "TrainState":
        state = cls()
        state.load_state_dict(json.loads(Path(path).read_text()))
        return state


class MetricWindow:
    """Sums of per-step metrics since the last log, averaged over steps and processes when logged.

    ``snapshot`` stores the window in the ``TrainState`` averaged over processes; since the
    logged value is a mean, a window restored on every process from that snapshot logs the
    same numbers as the uninterrupted run would.
    """

    def __init__(self, state: TrainState, device: torch.device):
        self.sums = {name: torch.tensor(value, device=device) for name, value in state.window_sums.items()}
        self.counts = dict(state.window_counts)
        self.steps = state.window_steps
        self.last_steps = 0
        self.data_seconds = 0.0  # time spent waiting for batches since the last log (this process)

    def add(self, **metrics: torch.Tensor) -> None:
        """Per-batch metrics (each micro-batch when gradients accumulate)."""
        for name, value in metrics.items():
            value = at_least_float32(value.detach())
            self.sums[name] = self.sums[name] + value if name in self.sums else value
            self.counts[name] = self.counts.get(name, 0) + 1

    def add_step(self, **metrics: torch.Tensor) -> None:
        """Per-optimizer-step metrics (the gradient norm); also counts the step."""
        self.add(**metrics)
        self.steps += 1

    def _reduced(self, accelerator: Accelerator) -> dict[str, float]:
        names = sorted(self.sums)
        if not names:
            return {}
        stacked = accelerator.reduce(torch.stack([self.sums[name] for name in names]), reduction="mean")
        return dict(zip(names, stacked.tolist()))

    def pop_mean(self, accelerator: Accelerator) -> dict[str, float]:
        names = sorted(self.sums)
        means = torch.stack([self.sums[name] / self.counts[name] for name in names])
        stacked = accelerator.reduce(means, reduction="mean")
        self.last_steps, self.steps, self.sums, self.counts = self.steps, 0, {}, {}
        return dict(zip(names, stacked.tolist()))

    def snapshot(self, state: TrainState, accelerator: Accelerator) -> None:
        state.window_sums, state.window_counts, state.window_steps = self._reduced(accelerator), self.counts, self.steps
