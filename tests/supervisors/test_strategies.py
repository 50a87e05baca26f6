"""Rule: when a child dies, the strategy decides which children restart, and the group is
stopped in reverse order and started again in order."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from supervisors import ChildRestarted, ChildSpec, ChildStarted, Strategy, SupervisorFlags
from supervisors import SupervisorHandle as Handle
from tests.supervisors.conftest import Events
from tests.supervisors.scripted import Journal

pytestmark = pytest.mark.timeout(20)


def _start_abc(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec], events: Events,
    strategy: Strategy,
) -> Handle:
    sup = start_supervisor([child("a"), child("b"), child("c")],
                           SupervisorFlags(strategy=strategy, intensity=5))
    events.wait_for(ChildStarted, 3)
    return sup


def test_one_for_one_restarts_only_the_child_that_died(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, journal: Journal,
) -> None:
    sup = _start_abc(start_supervisor, child, events, Strategy.ONE_FOR_ONE)
    before = {info.id: info.instance for info in sup.which_children()}

    sup.child("b").tell("crash")
    events.wait_for(ChildRestarted, child_id="b")

    after = {info.id: info.instance for info in sup.which_children()}
    assert after["a"] == before["a"] and after["c"] == before["c"]
    assert after["b"] != before["b"]
    assert journal.lifecycle()[3:] == [("start", "b")]
    assert sup.child("b").ask("whoami", timeout=5) == 2


def test_one_for_all_stops_the_others_last_first_and_restarts_all_in_order(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, journal: Journal,
) -> None:
    sup = _start_abc(start_supervisor, child, events, Strategy.ONE_FOR_ALL)

    sup.child("b").tell("crash")
    events.wait_for(ChildRestarted, 3)

    assert journal.lifecycle()[3:] == [
        ("stop", "c"), ("stop", "a"), ("start", "a"), ("start", "b"), ("start", "c"),
    ]
    assert [e.child_id for e in events.of(ChildRestarted)] == ["a", "b", "c"]
    assert [sup.child(name).ask("whoami", timeout=5) for name in "abc"] == [2, 2, 2]


def test_rest_for_one_restarts_the_dead_child_and_those_started_after_it(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, journal: Journal,
) -> None:
    sup = _start_abc(start_supervisor, child, events, Strategy.REST_FOR_ONE)

    sup.child("b").tell("crash")
    events.wait_for(ChildRestarted, 2)

    assert journal.lifecycle()[3:] == [("stop", "c"), ("start", "b"), ("start", "c")]
    assert [sup.child(name).ask("whoami", timeout=5) for name in "abc"] == [1, 2, 2]


def test_rest_for_one_on_the_last_child_restarts_only_that_child(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, journal: Journal,
) -> None:
    sup = _start_abc(start_supervisor, child, events, Strategy.REST_FOR_ONE)

    sup.child("c").tell("crash")
    events.wait_for(ChildRestarted, child_id="c")

    assert journal.lifecycle()[3:] == [("start", "c")]
    assert [sup.child(name).ask("whoami", timeout=5) for name in "abc"] == [1, 1, 2]
