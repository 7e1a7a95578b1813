"""Shared fixtures: where the real data of ../shared/data lies, skipping when it is absent."""

from __future__ import annotations

import os

# torch/OpenMP threads spin-wait by default and stall badly when another process shares the cores;
# passive waiting must be chosen before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """The real-data folder: $LEAPSCREEN_SHARED_DATA, else ../shared/data beside the checkout."""
    env = os.environ.get("LEAPSCREEN_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data")
    for path in candidates:
        if path.is_dir():
            return path
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data; the test is skipped with a reason where it is absent."""
    path = shared_data_dir()
    if path is None:
        pytest.skip(
            "real data not found: ../shared/data beside the checkout (or $LEAPSCREEN_SHARED_DATA)"
        )
    return path
