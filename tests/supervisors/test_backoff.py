"""Rule: a child with a backoff is restarted only after ``backoff.delay(attempt, draw)``,
waited on the injected clock: ``attempt`` counts the restarts within the period and ``draw``
comes from the supervisor's injected random draw. The policy is ``quotation.backoff.Backoff``
(``initial`` doubling per restart, capped at ``cap``, spread by ``spread``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from quotation.backoff import Backoff, Jitter
from supervisors import (
    ChildRestarted,
    ChildSpec,
    ChildStarted,
    ChildState,
    SupervisorFlags,
)
from supervisors import SupervisorHandle as Handle
from tests.fakes import ManualClock
from tests.supervisors.conftest import Events

pytestmark = pytest.mark.timeout(20)


def test_restarts_wait_the_doubling_backoff_on_the_injected_clock(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, clock: ManualClock,
) -> None:
    backoff = Backoff(initial=0.5, cap=1.5)  # no jitter: exactly the ceilings
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
    events: Events, clock: ManualClock,
) -> None:
    backoff = Backoff(initial=2.0, cap=10.0, jitter=Jitter.SPREAD, spread=0.25)
    sup = start_supervisor([child("a", backoff=backoff)], draw=lambda: 1.0)
    events.wait_for(ChildStarted)
    sup.child("a").tell("crash")
    assert clock.wait_for_sleeps(1) == [2.5]
    clock.advance(2.5)
    events.wait_for(ChildRestarted)
