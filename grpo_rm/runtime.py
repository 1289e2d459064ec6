"""Where a run executes: one Accelerator set up the same way for training and evaluation."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accelerate import Accelerator

# torch and accelerate are imported in the functions that use them: the command line reads this module's OpenMP
# settings before torch loads OpenMP, which reads them once.


def make_accelerator(use_cpu: bool = False, **kwargs) -> "Accelerator":
    """An ``Accelerator`` that also forms a process group on CPU-only machines.

    Without ``cpu=True`` accelerate ignores a torchrun launch on a machine with no
    accelerator, and every process would train alone believing it is the main one.
    """
    import torch
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    cpu = use_cpu or not torch.accelerator.is_available()
    # accelerate keeps one state per process; a new run (another precision, say) needs a fresh
    # one. The process group (PartialState) stays, as transformers' Trainer also does.
    AcceleratorState._reset_state()
    return Accelerator(cpu=cpu, **kwargs)


# OpenMP variables the user may set; when any is set, the user decides how threads behave.
OPENMP_VARIABLES = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
# libgomp's idle threads spin this many iterations before they sleep when the machine is busy (its default: 300000).
BUSY_SPIN_COUNT = "1000"


def openmp_settings_for_shared_cores(load: float, cores: int, environ: dict) -> dict[str, str]:
    """What a run started on a busy machine sets before torch loads OpenMP: its threads, and how long idle ones spin.

    Alone, a run takes every core and libgomp's threads spin while they wait for work, which is the fastest
    (benchmarks/RESULTS.md: sleeping sooner costs 10-30 % on a small model). When other work already uses the cores
    (the load average is at least half a core), spinning threads steal the time the others need and every run
    slows down several times over; then the run takes the cores that look free and its idle threads sleep after a
    short spin. Nothing is set when the user set any OpenMP variable."""
    if any(name in environ for name in OPENMP_VARIABLES) or load < 0.5:
        return {}
    return {"OMP_NUM_THREADS": str(max(1, cores - round(load))), "GOMP_SPINCOUNT": BUSY_SPIN_COUNT}


def finish_trackers(accelerator: "Accelerator") -> None:
    """End a run's trackers (their files complete), as ``Accelerator.end_training`` does, but keep the process
    group: it belongs to the launch, where several runs may follow each other (compare's rows under torchrun);
    ``end_process_group`` ends it when the process is done."""
    for tracker in accelerator.trackers:
        tracker.finish()


def end_process_group() -> None:
    """Destroy the distributed process group, if any, before the process exits."""
    import torch

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


# glibc mallopt parameters (malloc.h); values as glibc's own MALLOC_*_ environment variables take them.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
# Blocks up to this size come from the heap and stay there when freed (mallopt takes a C int: below 2 GiB).
_KEEP_FREED_BYTES = 1 << 30


def keep_freed_cpu_memory() -> bool:
    """Make glibc keep freed memory for reuse, as PyTorch's caching allocator does on GPUs; whether it was set.

    On CPU every step frees its activations and allocates them again. By default glibc returns large freed
    blocks to the system and page-faults them back on the next pass, which costs most where a pass frees
    everything at once: GRPO-RM's old-policy forward under inference mode (benchmarks/RESULTS.md: 16 k page
    faults per forward, 1.35 -> 1.31 GRPO-RM/CE per run). Left alone where the allocator is not glibc's, or
    where the user set glibc's ``MALLOC_*_`` variables, which then decide.
    """
    import ctypes
    import ctypes.util
    import os

    if any(name.startswith("MALLOC_") and name.endswith("_") for name in os.environ):
        return False
    library = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(library)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # only glibc has it (musl and macOS differ in mallopt, or lack it)
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(_M_TRIM_THRESHOLD, _KEEP_FREED_BYTES) and mallopt(_M_MMAP_THRESHOLD, _KEEP_FREED_BYTES))
