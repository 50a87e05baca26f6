"""Fixtures for the quotation tests: a real simulator on 127.0.0.1, torn down after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from quotation.simulator import Simulator


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
