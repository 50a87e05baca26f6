"""Fixtures the actor tests share: no actor outlives a test, a still simulator, and a fault
board on a manual clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pykka
import pytest

from actors.faults import FaultBoard
from tests.fakes import ManualClock
from upbit_sim import Simulator

STOP_WAIT = 10.0
"""Real seconds the actors still running after a test get to stop."""


@pytest.fixture(autouse=True)
def _stop_actors() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all(timeout=STOP_WAIT)


@pytest.fixture
def quiet(sim_factory: Callable[..., Simulator]) -> Simulator:
    """A simulator with still markets (after subscribing, exactly the snapshot of each kind
    arrives) and no server-side rate limit."""
    return sim_factory(seed=1, auto_trade=False, rate_limit=None)


@pytest.fixture
def clock() -> ManualClock:
    """The fault board's clock (a client may still run on the real one)."""
    return ManualClock()


@pytest.fixture
def board(clock: ManualClock) -> Iterator[FaultBoard]:
    made = FaultBoard(enabled=True, clock=clock, memory_chunk_bytes=4096)
    yield made
    made.clear_all()  # releases a hang a failed test left behind
