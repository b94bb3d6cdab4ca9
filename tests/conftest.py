"""Shared fixtures: paths of the real reference samples (read-only)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NANOAOD = SHARED / "nanoaod"


@pytest.fixture(scope="session")
def nanoaod_dir() -> Path:
    if not NANOAOD.is_dir():
        pytest.skip(f"reference NanoAOD samples not found at {NANOAOD}")
    return NANOAOD
