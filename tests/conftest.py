"""Shared fixtures: where the real Upbit recordings lie, and real simulators on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from quotation.rest.ratelimit import RateLimiter
from upbit_sim import Simulator

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



@pytest.fixture
def sim_factory() -> Iterator[Callable[..., Simulator]]:
    """Start simulators with custom parameters; every one is stopped after the test."""
    started: list[Simulator] = []

    def start(**kwargs: object) -> Simulator:
        sim = Simulator(**kwargs)  # type: ignore[arg-type]
        sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in reversed(started):
        sim.stop()


@pytest.fixture
def sim(sim_factory: Callable[..., Simulator]) -> Simulator:
    """A started simulator (seed 1), faults off."""
    return sim_factory(seed=1)


@pytest.fixture
def limiter() -> RateLimiter:
    """A rate limiter of the test's own (system clock).

    A ``RestClient`` built without one shares the process-wide limiter, whose slots,
    429 pauses and bans would carry over into later tests; pass this one instead.
    """
    return RateLimiter()
