"""Shared fixtures: paths of the real reference samples (read-only)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

# XRootD's C extension can crash (SIGSEGV) when it is first imported while other threads are
# inside uproot (seen when a test's timed-out pre-flight thread was still reading a file).
# adcoffea's pre-flight imports it in the calling thread before it starts its workers; the
# tests import it once here, before any test starts a thread. No client installed: nothing.
with contextlib.suppress(ImportError):
    import XRootD.client  # noqa: F401


def _pin_xdist_worker() -> None:
    """Give each pytest-xdist worker its own share of the cores (``-n N``).

    adcoffea sizes its torch/OpenMP thread pools and executors from the cores a process may
    run on (``threads.available_cores``, the affinity mask). Unpinned, every worker would see
    all cores and N workers would oversubscribe them N-fold (a training that takes seconds
    alone took minutes that way); pinned, ``workers x threads <= cores`` holds for the suite
    as for a run.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if not worker.startswith("gw") or count < 2 or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < count:
        return
    i = int(worker[2:])
    share = cores[i * len(cores) // count : (i + 1) * len(cores) // count]
    os.sched_setaffinity(0, share)


_pin_xdist_worker()


def _find_shared() -> Path:
    """``shared/data`` next to the checkout (or any parent), or ``$ADCOFFEA_SHARED_DATA``."""
    env = os.environ.get("ADCOFFEA_SHARED_DATA")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        cand = parent / "shared" / "data"
        if cand.is_dir():
            return cand
    return here.parents[1].parent / "shared" / "data"


SHARED = _find_shared()
NANOAOD = SHARED / "nanoaod"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"reference samples not found at {SHARED} (set ADCOFFEA_SHARED_DATA)")
    return SHARED


@pytest.fixture(scope="session")
def nanoaod_dir() -> Path:
    if not NANOAOD.is_dir():
        pytest.skip(f"reference NanoAOD samples not found at {NANOAOD}")
    return NANOAOD
