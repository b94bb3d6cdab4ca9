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
