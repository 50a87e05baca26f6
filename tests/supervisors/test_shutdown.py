"""Rule: children start in order (each after the previous finished starting) and stop in
reverse order; a child that does not stop within its ``shutdown`` is abandoned, so shutdown
never hangs."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pykka
import pytest

from quotation.backoff import Backoff
from supervisors import (
    ChildExited,
    ChildNotRunning,
    ChildSpec,
    ChildStarted,
    ExitKind,
    SupervisorStopped,
)
from supervisors import SupervisorHandle as Handle
from tests.fakes import ManualClock
from tests.supervisors.conftest import Events, script_of
from tests.supervisors.scripted import Journal

pytestmark = pytest.mark.timeout(20)


def test_children_start_in_order_and_stop_in_reverse_order(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, journal: Journal,
) -> None:
    sup = start_supervisor([child(name) for name in "abcd"])
    events.wait_for(ChildStarted, 4)
    assert [e.child_id for e in events.of(ChildStarted)] == list("abcd")

    assert sup.stop(timeout=10)

    assert journal.lifecycle() == [("start", n) for n in "abcd"] + [("stop", n) for n in "dcba"]
    assert [e.child_id for e in events.of(ChildExited)] == list("dcba")
    assert all(e.reason.kind is ExitKind.SHUTDOWN for e in events.of(ChildExited))
    assert len(events.of(SupervisorStopped)) == 1


def test_a_child_that_does_not_stop_in_time_is_abandoned_and_shutdown_completes(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, journal: Journal,
) -> None:
    sup = start_supervisor([child("a"), child("stuck", shutdown=0.2)])
    events.wait_for(ChildStarted, 2)
    sup.child("stuck").tell("hang")
    assert len(pykka.ActorRegistry.get_all()) == 3  # the supervisor and its two children

    assert sup.stop(timeout=10)

    kinds = {e.child_id: e.reason.kind for e in events.of(ChildExited)}
    assert kinds == {"stuck": ExitKind.KILLED, "a": ExitKind.SHUTDOWN}
    assert journal.lifecycle()[-1] == ("stop", "a")
    assert pykka.ActorRegistry.get_all() == []  # the stuck one is unregistered, not waited on
    with pytest.raises(ChildNotRunning):
        sup.child("stuck").ask("whoami", timeout=5)


def test_messages_waiting_for_a_child_are_answered_when_the_supervisor_stops(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec], events: Events,
) -> None:
    sup = start_supervisor([child("a")])
    events.wait_for(ChildStarted)
    sup.stop(timeout=10)
    with pytest.raises(ChildNotRunning):
        sup.child("a").ask("whoami", timeout=5)


def test_a_stop_while_a_child_is_still_starting_waits_for_it_then_stops_it(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, journal: Journal,
) -> None:
    slow = child("slow", hang_in_start=True)
    sup = start_supervisor([slow, child("later")])
    script = script_of(slow)
    assert script.hanging.wait(10)

    stopped = sup.ref.stop(block=False)  # queued while "slow" is still in on_start
    script.release.set()

    assert stopped.get(timeout=10) is True
    assert journal.lifecycle() == [("start", "slow"), ("stop", "slow")]  # "later" never starts
    assert [(e.child_id, e.reason.kind) for e in events.of(ChildExited)] == [
        ("slow", ExitKind.SHUTDOWN)]
    assert pykka.ActorRegistry.get_all() == []


def test_a_stop_during_a_backoff_wait_stops_at_once_and_the_late_timer_starts_nothing(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, journal: Journal, clock: ManualClock,
) -> None:
    sup = start_supervisor([child("a", backoff=Backoff(initial=10.0, cap=10.0))])
    events.wait_for(ChildStarted)
    sup.child("a").tell("crash")
    clock.wait_for_sleeps(1)  # the restart now waits 10 s on the clock
    [timer] = [t for t in threading.enumerate() if t.name == "root-backoff-a"]

    assert sup.stop(timeout=10)
    clock.advance(10.0)  # the timer wakes and tells a supervisor that is gone
    timer.join(timeout=10)

    assert not timer.is_alive()
    assert journal.lifecycle() == [("start", "a")]
    assert len(events.of(SupervisorStopped)) == 1
    assert pykka.ActorRegistry.get_all() == []
    with pytest.raises(ChildNotRunning):
        sup.child("a").ask("whoami", timeout=5)
