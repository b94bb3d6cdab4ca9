"""The allocator tuning of processing processes (adcoffea.execution.allocator)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def freed_array_faults(values: int = 1_000_000) -> int:
    """Page faults of a chunk's worth of temporaries made, touched and freed 20 times
    (arrays of ``values`` float64, 8 MB by default, 4 per chunk), after one warm-up chunk.
    Also run in dask workers (tests/test_dask.py)."""
    import resource

    import numpy as np

    def chunk():
        for _ in range(4):
            a = np.ones(values)
            a += 1.0

    chunk()
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        chunk()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0


# a fresh process per mode: glibc's thresholds cannot be put back once set
SCRIPT = """
import runpy, sys
if sys.argv[1] == "tuned":
    from adcoffea.execution.allocator import tune_allocator
    assert tune_allocator()
print(runpy.run_path(sys.argv[2])["freed_array_faults"](int(sys.argv[3])))
"""


def _faults(mode: str, values: int = 1_000_000) -> int:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode, __file__, str(values)],
        capture_output=True,
        text=True,
        check=True,
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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_arrays_above_glibcs_largest_mmap_threshold_are_reused_too():
    """80 arrays of 64 MB, above the 32 MiB that glibc's mmap threshold can reach (a
    constituent chunk's padded particle arrays): mapped and faulted in anew each time
    unless mapped chunks are switched off (44,000 faults here with glibc's defaults; with
    only the thresholds tuned, as before, as many)."""
    values = 8_000_000
    default, tuned = _faults("default", values), _faults("tuned", values)
    assert default > 20_000
    assert tuned < 2000


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_futures_workers_reuse_freed_chunk_memory():
    import cloudpickle

    from adcoffea.execution import futures_pool

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with futures_pool(1) as pool:
        assert pool.submit(freed_array_faults).result() < 2000


def _allocate_and_free(mb: int) -> int:
    """Touch ``mb`` MB and free them (a tuned worker keeps them); wait out loky's 1 s delay
    between two memory checks; return the worker's pid."""
    import os
    import time

    import numpy as np

    block = np.ones(mb * 2**20 // 8)
    del block
    time.sleep(1.2)
    return os.getpid()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_futures_workers_keeping_freed_memory_are_not_restarted_as_leaking():
    """loky restarts a worker whose RSS grew 300 MB past its size after the first task;
    a tuned worker keeps that much after a constituent chunk on purpose."""
    import os

    import cloudpickle

    from adcoffea.execution import futures_pool

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with futures_pool(1) as pool:
        first = pool.submit(os.getpid).result()  # loky's reference size is taken after it
        assert pool.submit(_allocate_and_free, 600).result() == first
        assert pool.submit(os.getpid).result() == first  # the same worker: not restarted
