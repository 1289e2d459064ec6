"""Process settings of a run: glibc keeps freed memory on CPU."""

import os
import subprocess
import sys

import pytest

# Allocate and free a 48 MiB buffer (an activation of a large batch) 20 times, touching every page; print the
# minor page faults that cost.
PROBE = """
import resource, sys, torch
from grpo_rm.runtime import keep_freed_cpu_memory
set_here = keep_freed_cpu_memory() if sys.argv[1] == "keep" else False
torch.ones(12 << 20)  # warm up
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    torch.ones(12 << 20)
print(set_here, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def probe(mode: str, **env) -> tuple[bool, int]:
    clean = {k: v for k, v in os.environ.items() if not (k.startswith("MALLOC_") and k.endswith("_"))}
    out = subprocess.run([sys.executable, "-c", PROBE, mode], env={**clean, **env}, capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_freed_buffers_are_reused_without_page_faults():
    set_default, faults_default = probe("default")
    set_kept, faults_kept = probe("keep")
    assert not set_default and set_kept
    assert faults_default >= 20 * 12288 * 0.9  # every 48 MiB buffer page-faulted in again (4 KiB pages)
    assert faults_kept <= 12288 * 1.1  # at most one buffer's pages, once: then the same memory serves every pass


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_the_users_own_malloc_settings_win():
    was_set, _ = probe("keep", MALLOC_ARENA_MAX_="2")
    assert not was_set
