"""Rule: more than ``intensity`` restarts within ``period`` (failed restart attempts
included) make the supervisor stop its children and escalate -- to its parent, or at the
root to the host's callback; a child failing to start while the supervisor starts fails it."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from supervisors import (
    ChildExited,
    ChildRestarted,
    ChildSpec,
    ChildStarted,
    Escalated,
    EscalationTarget,
    ExitKind,
    ExitReason,
    IntensityReached,
    SupervisorFlags,
    SupervisorGaveUp,
    SupervisorStopped,
    supervisor_child,
)
from supervisors import SupervisorHandle as Handle
from tests.fakes import ManualClock
from tests.supervisors.conftest import Events
from tests.supervisors.scripted import Boom, Journal

pytestmark = pytest.mark.timeout(20)


class GiveUps:
    """The host's callback: records the reason and lets the test wait for it."""

    def __init__(self) -> None:
        self.reasons: list[ExitReason] = []
        self.called = threading.Event()

    def __call__(self, reason: ExitReason) -> None:
        self.reasons.append(reason)
        self.called.set()

    def wait(self) -> SupervisorGaveUp:
        assert self.called.wait(10), "the host callback was not called"
        error = self.reasons[0].error
        assert isinstance(error, SupervisorGaveUp)
        return error


def test_a_second_crash_within_the_period_stops_the_children_and_calls_the_host(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, journal: Journal, clock: ManualClock,
) -> None:
    give_ups = GiveUps()
    sup = start_supervisor([child("a"), child("b"), child("c")], SupervisorFlags(),
                           on_give_up=give_ups)
    events.wait_for(ChildStarted, 3)

    sup.child("b").tell("crash")
    events.wait_for(ChildRestarted)
    clock.advance(4.9)
    sup.child("b").tell("crash")

    error = give_ups.wait()
    assert (error.supervisor, error.context, error.child_id) == (
        "root", "reached_max_restart_intensity", "b")
    assert isinstance(error.cause, Boom)
    assert journal.lifecycle()[-2:] == [("stop", "c"), ("stop", "a")]
    assert events.of(IntensityReached)[0].at == 4.9
    assert [e.target for e in events.of(Escalated)] == [EscalationTarget.HOST]
    assert len(events.of(SupervisorStopped)) == 1
    assert not sup.is_alive()


def test_crashes_further_apart_than_the_period_never_exhaust_intensity(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, clock: ManualClock,
) -> None:
    give_ups = GiveUps()
    sup = start_supervisor([child("a")], SupervisorFlags(intensity=1, period=5.0),
                           on_give_up=give_ups)
    events.wait_for(ChildStarted)
    for count in range(1, 4):
        sup.child("a").tell("crash")
        events.wait_for(ChildRestarted, count)
        clock.advance(5.001)
    assert sup.is_alive()
    assert sup.child("a").ask("whoami", timeout=5) == 4
    assert not give_ups.called.is_set()


def test_failed_restart_attempts_count_against_intensity(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, journal: Journal,
) -> None:
    give_ups = GiveUps()
    sup = start_supervisor([child("a", fail_starts_from=2)], SupervisorFlags(intensity=3),
                           on_give_up=give_ups)
    events.wait_for(ChildStarted)

    sup.child("a").tell("crash")  # restart 1; its start fails: 2; again: 3; again: 4 > 3
    error = give_ups.wait()

    failed = [e for e in events.of(ChildExited) if e.reason.kind is ExitKind.START_FAILED]
    assert len(failed) == 3
    assert [n for what, _, n in journal.entries() if what == "start"] == [1, 2, 3, 4]
    assert error.context == "reached_max_restart_intensity"


def test_a_constructor_that_raises_is_a_failed_start_too(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec], events: Events,
) -> None:
    give_ups = GiveUps()
    sup = start_supervisor([child("a", fail_in_init_from=2)], SupervisorFlags(intensity=2),
                           on_give_up=give_ups)
    events.wait_for(ChildStarted)
    sup.child("a").tell("crash")
    give_ups.wait()
    kinds = [e.reason.kind for e in events.of(ChildExited)]
    assert kinds == [ExitKind.CRASHED, ExitKind.START_FAILED, ExitKind.START_FAILED]


def test_a_child_failing_its_first_start_fails_the_supervisor_and_stops_earlier_children(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, journal: Journal,
) -> None:
    give_ups = GiveUps()
    start_supervisor([child("a"), child("b", fail_starts={1}), child("c")],
                     SupervisorFlags(intensity=10), on_give_up=give_ups)
    error = give_ups.wait()
    assert (error.context, error.child_id) == ("start_error", "b")
    assert journal.lifecycle() == [("start", "a"), ("start", "b"), ("stop", "a")]


def test_escalation_climbs_two_levels_of_supervisors_to_the_host(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, clock: ManualClock,
) -> None:
    give_ups = GiveUps()
    middle = supervisor_child("middle", SupervisorFlags(intensity=0), [child("worker")],
                              clock=clock, liveness_interval=None)
    root = start_supervisor([middle], SupervisorFlags(intensity=1), on_give_up=give_ups)
    worker = root.child("middle").child("worker")
    events.wait_for(ChildStarted, child_id="middle")

    worker.tell("crash")  # middle (intensity 0) gives up; root restarts middle (1 restart)
    events.wait_for(ChildRestarted, child_id="middle")
    assert worker.ask("whoami", timeout=5) == 2  # the same handle reaches the new worker

    worker.tell("crash")  # middle gives up again; root's second restart exceeds intensity 1
    error = give_ups.wait()

    assert (error.supervisor, error.child_id) == ("root", "middle")
    assert isinstance(error.cause, SupervisorGaveUp)
    assert error.cause.supervisor == "middle"
    escalations = [(e.supervisor, e.target) for e in events.of(Escalated)]
    assert escalations == [
        ("middle", EscalationTarget.PARENT),
        ("middle", EscalationTarget.PARENT),
        ("root", EscalationTarget.HOST),
    ]
    assert len(events.of(IntensityReached, supervisor="middle")) == 2
    assert len(events.of(IntensityReached, supervisor="root")) == 1
