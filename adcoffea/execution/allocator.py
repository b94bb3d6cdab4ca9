"""The C allocator of a processing process: freed chunk memory kept for the next chunk.

Every chunk allocates the same arrays again (columns, selections, features: tens of arrays
of 0.1 to 10 MB). glibc's malloc serves such sizes with fresh ``mmap`` pages and returns
them to the kernel when freed, so the next chunk touches new pages and takes a page fault
for each 4 kB: 33,000 faults per million events for the dijet processor, 10 to 30 % of
its time on this project's virtual machines (``benchmarks/throughput.py``, with and
without ``--default-allocator``). :func:`tune_allocator` raises glibc's thresholds so that such arrays come from
the heap and freed memory is kept for reuse (up to :data:`TRIM_THRESHOLD` free at its top).

The peak memory of a chunk is unchanged (measured: 733 MB for a 100k-event chunk with
constituents, either way); what changes is that a process keeps up to its peak between
chunks instead of handing it back. It is applied where adcoffea owns the process: the
``adcoffea`` command and the futures executor's worker processes. A library caller's own
process is left as it is (call :func:`tune_allocator` to opt in), and so are dask workers,
whose nanny sets its own (lower) trim threshold so that its memory monitor sees freed
memory returned.

Example:
    >>> import sys
    >>> tune_allocator() == sys.platform.startswith("linux")  # glibc's Linux
    True
"""

from __future__ import annotations

import ctypes
import sys

#: Allocations of at most this size come from the heap (glibc's own maximum on 64-bit).
MMAP_THRESHOLD = 32 * 1024 * 1024
#: Free memory the heap keeps at its top before returning it to the kernel.
TRIM_THRESHOLD = 128 * 1024 * 1024

# mallopt parameters (glibc malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_allocator() -> bool:
    """Set this process's glibc malloc thresholds (see the module docstring).

    Returns:
        Whether they were set: False on another platform or C library (musl, macOS), which
        is left as it is.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
