"""Shared fixtures: where the real Upbit recordings lie."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

RECORDINGS_ENV = "LIFELINE_RECORDINGS"
_DEFAULT_RECORDINGS = Path(__file__).resolve().parent.parent.parent / "shared" / "upbit-recordings"


def recordings_path() -> Path:
    """``$LIFELINE_RECORDINGS`` if set, else ``../shared/upbit-recordings`` beside the repo."""
    return Path(os.environ.get(RECORDINGS_ENV, _DEFAULT_RECORDINGS))


@pytest.fixture(scope="session")
def recordings_dir() -> Path:
    """The folder of real Upbit recordings; skips the test with the reason if it is absent."""
    path = recordings_path()
    if not path.is_dir():
        pytest.skip(
            f"Upbit recordings not found at {path} "
            f"(set {RECORDINGS_ENV} to the upbit-recordings folder)"
        )
    return path
