"""Process settings of a run: glibc keeps freed memory on CPU, unless the user set glibc's own variables; a new
run in the same process forms the process group that an earlier run ended."""

import os
import subprocess
import sys

import pytest

from grpo_rm.runtime import keep_freed_cpu_memory

# In a fresh process (this one's allocator is already set by the tests that train): allocate and free a 32 MiB buffer
# (an activation of a large batch) 8 times, touching every page, with glibc's defaults and then after
# keep_freed_cpu_memory; print whether it set the allocator and the minor page faults of each.
PROBE = """
import resource, torch
import accelerate  # loaded, as in every training process, before the run sets the allocator
from grpo_rm.runtime import keep_freed_cpu_memory

def faults():
    torch.ones(8 << 20)  # warm up
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(8):
        torch.ones(8 << 20)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

default = faults()
print(keep_freed_cpu_memory(), default, faults())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_freed_buffers_are_reused_without_page_faults():
    clean = {k: v for k, v in os.environ.items() if not (k.startswith("MALLOC_") and k.endswith("_"))}
    out = subprocess.run([sys.executable, "-c", PROBE], env=clean, capture_output=True, text=True, check=True)
    was_set, faults_default, faults_kept = out.stdout.split()
    assert was_set == "True"
    assert int(faults_default) >= 8 * 8192 * 0.9  # every 32 MiB buffer page-faulted in again (4 KiB pages)
    assert int(faults_kept) <= 8192 * 1.1  # at most one buffer's pages, once: then the same memory serves every pass


def test_the_users_own_malloc_settings_win(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX_", "2")
    assert keep_freed_cpu_memory() is False  # and glibc's settings are left to the user's variables


def test_a_busy_machine_gets_the_free_cores_and_sleeping_threads():
    from grpo_rm.runtime import openmp_settings_for_shared_cores as settings

    assert settings(0.2, 8, {}) == {}  # alone: every core, OpenMP's own (fastest) waiting
    assert settings(1.1, 2, {}) == {"OMP_NUM_THREADS": "1", "GOMP_SPINCOUNT": "1000"}
    assert settings(3.6, 8, {}) == {"OMP_NUM_THREADS": "4", "GOMP_SPINCOUNT": "1000"}
    assert settings(9.0, 8, {}) == {"OMP_NUM_THREADS": "1", "GOMP_SPINCOUNT": "1000"}  # never fewer than one
    assert settings(3.0, 4, {"OMP_NUM_THREADS": "2"}) == {}  # the user decides
    assert settings(3.0, 4, {"OMP_WAIT_POLICY": "PASSIVE"}) == {}
