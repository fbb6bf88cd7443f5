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


@pytest.fixture(autouse=True)
def _own_decoder_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test registers trained decoders in a cache of its own, never the developer's
    (``lmaczs train`` makes its decoder the default for the model's weights)."""
    monkeypatch.setenv("LMACZS_DECODER_CACHE", str(tmp_path_factory.mktemp("decoders")))
