"""The allocator tuning of processing processes (adcoffea.execution.allocator)."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import resource, sys
import numpy as np
if sys.argv[1] == "tuned":
    from adcoffea.execution.allocator import tune_allocator
    assert tune_allocator()
def chunk():  # a chunk's worth of temporaries: 8 MB arrays made, touched and freed
    for _ in range(4):
        a = np.ones(1_000_000)
        a += 1.0
chunk()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    chunk()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""


def _faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_freed_chunk_memory_is_reused_without_page_faults():
    """80 arrays of 8 MB: with glibc's defaults the heap hands freed memory back to the
    kernel and later arrays fault their pages in again (16,000 faults here, ~2000 per
    array that does); tuned, the freed memory is kept and reused."""
    default, tuned = _faults("default"), _faults("tuned")
    assert default > 4000
    assert tuned < default / 10


def test_futures_workers_are_tuned():
    from adcoffea.execution import init_worker, worker_pool_factory

    assert worker_pool_factory().keywords["initializer"] is init_worker
