"""Seeds derived from a run's seed and a position (epoch, sample index, optimizer step, process).

Randomness keyed by position rather than drawn from a global generator does not depend on
how far an iterator has run, how many DataLoader workers or processes there are, or
whether the run was resumed from a checkpoint: each draw is a function of where it is.
"""

from __future__ import annotations

import numpy as np
import torch


def derive_seed(*keys: int) -> int:
    """A well-mixed 63-bit seed from integers (numpy's SeedSequence hashing)."""
    state = np.random.SeedSequence([int(key) for key in keys]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def generator_for(*keys: int) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(*keys))


class EpochSeededDataset(torch.utils.data.Dataset):
    """A dataset whose random transforms draw from a generator keyed by (seed, epoch, index).

    ``seed`` None (evaluation) gives no generator. The training loop calls ``set_epoch``
    before each epoch, as for HF datasets.
    """

    seed: int | None = None
    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def sample_generator(self, index: int) -> torch.Generator | None:
        return None if self.seed is None else generator_for(self.seed, self.epoch, index)
