"""Shared pytest fixtures: paths to the shared data, seeded RNGs."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
ESC50_MINI = SHARED / "data" / "esc50-mini"


@pytest.fixture
def esc50_mini() -> Path:
    """The 50 real ESC-50 clips in ../shared (skip when absent; never copied into the repo)."""
    if not (ESC50_MINI / "meta" / "esc50.csv").exists():
        pytest.skip("../shared/data/esc50-mini is not present")
    return ESC50_MINI
