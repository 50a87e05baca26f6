"""Rule: a child that leaves a liveness ping unanswered past its deadline is hung: it is
abandoned (its daemon thread left behind) and replaced; one that answers is left alone."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pykka
import pytest

from supervisors import (
    ChildExited,
    ChildRestarted,
    ChildSpec,
    ChildStarted,
    ChildState,
    ExitKind,
    SupervisorFlags,
)
from supervisors import SupervisorHandle as Handle
from tests.supervisors.conftest import Events, FakeClock, script_of

pytestmark = pytest.mark.timeout(20)


def _wait_hanging(spec: ChildSpec) -> None:
    """Wait until the scripted child is really stuck in its "hang" message."""
    assert script_of(spec).hanging.wait(10)


def test_a_hung_child_is_replaced_once_its_deadline_passes_and_not_before(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, clock: FakeClock,
) -> None:
    spec = child("a", deadline=2.0)
    sup = start_supervisor([spec], SupervisorFlags(intensity=3))
    events.wait_for(ChildStarted)
    sup.child("a").tell("hang")
    _wait_hanging(spec)
    hung_thread_names = {t.name for t in threading.enumerate()}

    sup.check_liveness()          # ping sent at t=0, queued behind "hang"
    clock.advance(2.0)
    sup.check_liveness()          # t=2.0: exactly the deadline, not past it
    assert events.of(ChildExited) == []

    clock.advance(0.001)
    sup.check_liveness()          # t=2.001: hung
    exited = events.wait_for(ChildExited)[0]
    events.wait_for(ChildRestarted)

    assert exited.reason.kind is ExitKind.HUNG
    assert exited.at == 2.001
    assert sup.child("a").ask("whoami", timeout=5) == 2
    stuck = [t for t in threading.enumerate() if t.name in hung_thread_names
             and t.name.startswith("ScriptedChild")]
    assert stuck and all(t.daemon for t in stuck)  # abandoned, and cannot block exit
    assert len([r for r in pykka.ActorRegistry.get_all()
                if r.actor_class.__name__ == "ScriptedChild"]) == 1


def test_a_child_that_answers_its_pings_is_not_replaced(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, clock: FakeClock,
) -> None:
    sup = start_supervisor([child("a", deadline=1.0)])
    events.wait_for(ChildStarted)
    for _ in range(5):
        sup.check_liveness()
        sup.child("a").ask("whoami", timeout=5)  # answered after the ping: the ping is answered
        clock.advance(10.0)
    sup.check_liveness()
    assert events.of(ChildExited) == []
    assert sup.child("a").ask("whoami", timeout=5) == 1


def test_the_liveness_ticker_checks_on_its_own_every_interval(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, clock: FakeClock,
) -> None:
    spec = child("a", deadline=1.5)
    sup = start_supervisor([spec], liveness_interval=1.0)
    events.wait_for(ChildStarted)
    sup.child("a").tell("hang")
    _wait_hanging(spec)
    for tick in range(1, 4):  # ticks at t=1 (ping), t=2 (1 s unanswered), t=3 (2 s: hung)
        clock.wait_for_sleeps(tick)
        assert events.of(ChildExited) == []
        clock.advance(1.0)
        clock.wait_for_sleeps(tick + 1)  # the ticker told its check before sleeping again,
        sup.which_children()             # so this ask is answered after the check ran
    [exited] = events.wait_for(ChildExited)
    events.wait_for(ChildRestarted)
    assert (exited.reason.kind, exited.at) == (ExitKind.HUNG, 3.0)
    assert clock.sleeps[:3] == [1.0, 1.0, 1.0]


def test_a_late_report_from_the_abandoned_instance_is_ignored(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, clock: FakeClock,
) -> None:
    spec = child("a", deadline=1.0)
    sup = start_supervisor([spec])
    events.wait_for(ChildStarted)
    before = set(threading.enumerate())
    sup.child("a").tell("hang")
    _wait_hanging(spec)
    sup.check_liveness()
    clock.advance(1.5)
    sup.check_liveness()
    events.wait_for(ChildRestarted)
    [stuck] = [t for t in before if t.name.startswith("ScriptedChild")]

    script_of(spec).release.set()  # the old instance wakes, finds its stop, reports its exit
    stuck.join(timeout=10)
    assert not stuck.is_alive()

    [info] = sup.which_children()  # asked after the late report was told
    assert info.state is ChildState.RUNNING
    assert len(events.of(ChildExited)) == 1 and len(events.of(ChildRestarted)) == 1
    assert sup.child("a").ask("whoami", timeout=5) == 2
