"""The C allocator of a processing process: freed chunk memory kept for the next chunk.

Every chunk allocates the same arrays again (columns, selections, features: tens of arrays
of 0.1 to 10 MB; with constituents, padded particle arrays of 30 to 130 MB). glibc's malloc
serves large sizes with fresh ``mmap`` pages and returns them to the kernel when freed, so
the next chunk touches new pages and takes a page fault for each 4 kB: 33,000 faults per
million events for the dijet processor, 130,000 with constituents, 10 to 30 % of the time on
this project's virtual machines (``benchmarks/throughput.py``, with and without
``--default-allocator``). :func:`tune_allocator` makes every size come from the heap
(no mmapped chunks: glibc's largest mmap threshold, 32 MiB, is below a constituent chunk's
padded arrays) and keeps freed memory for reuse, up to :data:`TRIM_THRESHOLD` free at its top.

The peak memory of a chunk is unchanged (measured: 727 MB for a 100k-event chunk with
constituents, 733 MB with glibc's defaults); what changes is that a process keeps up to its
peak between chunks instead of handing it back. It is applied where adcoffea owns the
process: the ``adcoffea`` command and the futures executor's worker processes (and, through
their environment, the workers of a ``LocalCluster`` adcoffea starts). A library caller's
own process is left as it is (call :func:`tune_allocator` to opt in), and so are the workers
of a cluster adcoffea only joins.

Example:
    >>> import sys
    >>> tune_allocator() == sys.platform.startswith("linux")  # glibc's Linux
    True
"""

from __future__ import annotations

import ctypes
import sys

#: glibc's largest mmap threshold (64-bit); set, it also stops the threshold from adapting.
MMAP_THRESHOLD = 32 * 1024 * 1024
#: Mapped chunks allowed: none, so that arrays above the threshold come from the heap too.
#: (glibc still maps memory when the heap cannot grow, whatever this says.)
MMAP_MAX = 0
#: Free memory the heap keeps at its top before returning it to the kernel: a chunk's
#: working set, constituents included (~0.5 GB for 100k events), stays for the next chunk.
TRIM_THRESHOLD = 1024 * 1024 * 1024

#: loky's worker memory-leak check (``LOKY_MAX_MEMORY_LEAK_SIZE``) for workers so tuned:
#: loky restarts a worker whose RSS grew 300 MB past its size after the first task, and a
#: worker that keeps its freed chunk memory grows by that much on purpose (the semi-visible
#: pipeline's training then constituent chunks: a restart and a "memory leak" warning per
#: run). Above what the heap may keep free (TRIM_THRESHOLD) plus loky's own 300 MB.
LOKY_LEAK_BYTES = TRIM_THRESHOLD + 300 * 1000 * 1000

# mallopt parameters (glibc malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4


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
    # mallopt returns 1 on success; every setting is tried (a list, not a short circuit)
    settings = ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_MMAP_MAX, MMAP_MAX))
    done = [
        mallopt(param, value) == 1
        for param, value in (*settings, (_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    ]
    return all(done)
