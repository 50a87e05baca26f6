"""Rule: a child with a backoff is restarted only after the delay, waited on the injected
clock: ``min`` doubling per restart within the period, capped at ``max``, spread by jitter."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from supervisors import (
    Backoff,
    ChildRestarted,
    ChildSpec,
    ChildStarted,
    ChildState,
    SupervisorFlags,
)
from supervisors import SupervisorHandle as Handle
from tests.supervisors.conftest import Events, FakeClock

pytestmark = pytest.mark.timeout(20)


def test_restarts_wait_the_doubling_backoff_on_the_injected_clock(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, clock: FakeClock,
) -> None:
    backoff = Backoff(min=0.5, max=1.5, jitter=0.0)
    sup = start_supervisor([child("a", backoff=backoff)],
                           SupervisorFlags(intensity=10, period=60.0))
    events.wait_for(ChildStarted)
    for restarts, expected in enumerate([0.5, 1.0, 1.5, 1.5], start=1):
        sup.child("a").tell("crash")
        assert clock.wait_for_sleeps(restarts)[-1] == expected
        assert sup.which_children()[0].state is ChildState.RESTARTING
        clock.advance(expected)
        events.wait_for(ChildRestarted, restarts)
    assert sup.child("a").ask("whoami", timeout=5) == 5


def test_jitter_comes_from_the_injected_random_draw(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, clock: FakeClock,
) -> None:
    sup = start_supervisor([child("a", backoff=Backoff(min=2.0, max=10.0, jitter=0.25))],
                           draw=lambda: 1.0)
    events.wait_for(ChildStarted)
    sup.child("a").tell("crash")
    assert clock.wait_for_sleeps(1) == [2.5]
    clock.advance(2.5)
    events.wait_for(ChildRestarted)
