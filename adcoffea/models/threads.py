"""Thread counts of torch and of the OpenMP/BLAS pools (scikit-learn's boosted trees, numpy).

With several worker processes on a few cores, each library's default (one thread per core in
every process) oversubscribes the machine: a CWoLa training that takes seconds alone took
minutes next to busy workers. Training and scoring therefore run with ``workers x threads <=
cores``: :func:`default_threads` gives that count and :func:`set_threads` applies it to torch
(intra-op pool) and, through threadpoolctl, to every OpenMP and BLAS library loaded in the
process (scikit-learn's HistGradientBoosting uses OpenMP).

Example:
    >>> n = set_threads(default_threads(workers=1))
    >>> n >= 1 and current_threads() == n
    True
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_threads(workers: int = 1) -> int:
    """Threads per worker so that ``workers x threads <= cores`` (at least one)."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    return max(1, available_cores() // workers)


def _load_openmp() -> None:
    # threadpoolctl limits only libraries already loaded: import scikit-learn's OpenMP
    # extension first so the limit also reaches the boosted trees trained later.
    with contextlib.suppress(ImportError):
        import sklearn.ensemble._hist_gradient_boosting.gradient_boosting  # noqa: F401


def set_threads(n: int) -> int:
    """Use ``n`` threads in torch, OpenMP and BLAS from now on (process wide); returns ``n``."""
    if n < 1:
        raise ValueError(f"thread count must be >= 1, got {n}")
    torch.set_num_threads(n)
    _load_openmp()
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)
    # Child processes and libraries loaded later read the environment.
    os.environ["OMP_NUM_THREADS"] = str(n)
    return n


def current_threads() -> int:
    """The thread count set by :func:`set_threads` (torch's intra-op pool size)."""
    return torch.get_num_threads()


@contextlib.contextmanager
def limited_threads(n: int) -> Iterator[int]:
    """Context manager: ``n`` threads inside, the previous counts restored afterwards."""
    _load_openmp()
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield n
    finally:
        torch.set_num_threads(before)
