"""Rule: a child that leaves a liveness ping unanswered when its deadline comes is hung: it is
abandoned (its daemon thread left behind) and replaced; one that answers in time is left alone.

The bound: with pings every ``liveness_interval`` (one at a time), a child that stops
answering is found hung at least ``deadline`` and at most ``deadline + liveness_interval``
seconds after the last moment it was known alive (its last answer, or its start). Every time
here is a multiple of ``EPS``, so the fake clock's sums are exact.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pykka
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from supervisors import (
    ChildExited,
    ChildHandle,
    ChildRestarted,
    ChildSpec,
    ChildStarted,
    ChildState,
    ExitKind,
    SupervisorFlags,
)
from supervisors import SupervisorHandle as Handle
from tests.fakes import ManualClock
from tests.supervisors.conftest import Events, script_of
from tests.supervisors.scripted import Journal, Script, ScriptedChild

pytestmark = pytest.mark.timeout(60)

EPS = 2.0**-10
"""The step "just inside" a deadline."""


def _wait_hanging(spec: ChildSpec) -> None:
    """Wait until the scripted child is really stuck in its "hang" message."""
    assert script_of(spec).hanging.wait(10)


def _answer_then_hang_again(handle: ChildHandle, script: Script) -> None:
    """Let a hanging child answer what waits behind its hang (a ping), then hang it again."""
    script.release.set()
    handle.ask("whoami", timeout=5)  # queued behind the ping: the ping is answered
    script.release.clear()
    script.hanging.clear()
    handle.tell("hang")
    assert script.hanging.wait(10)


def _join_deadline_timers(supervisor: str, child_id: str) -> None:
    """Wait for the ping-deadline timers that have fired to finish telling the supervisor."""
    for thread in threading.enumerate():
        if thread.name == f"{supervisor}-deadline-{child_id}":
            thread.join(timeout=10)


def test_a_hung_child_is_replaced_the_moment_its_ping_deadline_comes_and_not_before(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, clock: ManualClock,
) -> None:
    spec = child("a", deadline=2.0)
    sup = start_supervisor([spec], SupervisorFlags(intensity=3))
    events.wait_for(ChildStarted)
    sup.child("a").tell("hang")
    _wait_hanging(spec)
    hung_thread_names = {t.name for t in threading.enumerate()}

    sup.check_liveness()          # ping sent at t=0, queued behind "hang"
    clock.advance(2.0 - EPS)
    sup.check_liveness()          # just before its deadline: not yet hung, no second ping
    assert events.of(ChildExited) == []

    clock.advance(EPS)            # t=2.0: the ping's own timer finds it unanswered
    exited = events.wait_for(ChildExited)[0]
    events.wait_for(ChildRestarted)

    assert exited.reason.kind is ExitKind.HUNG
    assert exited.at == 2.0
    assert sup.child("a").ask("whoami", timeout=5) == 2
    stuck = [t for t in threading.enumerate() if t.name in hung_thread_names
             and t.name.startswith("ScriptedChild")]
    assert stuck and all(t.daemon for t in stuck)  # abandoned, and cannot block exit
    assert len([r for r in pykka.ActorRegistry.get_all()
                if r.actor_class.__name__ == "ScriptedChild"]) == 1


def test_a_ping_answered_just_inside_its_deadline_does_not_make_the_child_hung(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, clock: ManualClock,
) -> None:
    spec = child("a", deadline=2.0)
    sup = start_supervisor([spec])
    events.wait_for(ChildStarted)
    sup.child("a").tell("hang")
    _wait_hanging(spec)
    sup.check_liveness()          # ping sent at t=0, queued behind "hang"

    clock.advance(2.0 - EPS)
    script_of(spec).release.set()
    assert sup.child("a").ask("whoami", timeout=5) == 1  # the ping was answered before it
    clock.advance(EPS)            # t=2.0: the deadline comes, the ping is answered
    _join_deadline_timers("root", "a")

    [info] = sup.which_children()  # asked after the deadline timer told
    assert (info.state, info.instance) == (ChildState.RUNNING, 1)
    assert events.of(ChildExited) == []


def test_a_child_that_answers_its_pings_is_not_replaced(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, clock: ManualClock,
) -> None:
    sup = start_supervisor([child("a", deadline=1.0)])
    events.wait_for(ChildStarted)
    for _ in range(5):
        sup.check_liveness()
        sup.child("a").ask("whoami", timeout=5)  # answered after the ping: the ping is answered
        clock.advance(10.0)
    _join_deadline_timers("root", "a")
    sup.check_liveness()
    assert events.of(ChildExited) == []
    assert sup.child("a").ask("whoami", timeout=5) == 1


def test_the_ticker_pings_every_interval_and_finds_a_hang_after_an_answer_within_the_bound(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, clock: ManualClock,
) -> None:
    """The worst case: the child answers a ping at once, then hangs; the next ping goes out
    one interval later and is judged one deadline after that: 1.0 + 1.5 + 1.0 = 3.5."""
    spec = child("a", deadline=1.5)
    sup = start_supervisor([spec], liveness_interval=1.0)
    events.wait_for(ChildStarted)
    clock.wait_for_sleeps(1)          # the ticker waits for t=1
    clock.advance(1.0)                # t=1: ping 1, and its timer waits for t=2.5
    clock.wait_for_sleeps(3)
    assert sup.child("a").ask("whoami", timeout=5) == 1  # ping 1 answered, at t=1
    sup.child("a").tell("hang")       # ... and the child hangs right after
    _wait_hanging(spec)

    clock.advance(1.0)                # t=2: ping 2 (ping 1 was answered), timer for t=3.5
    clock.wait_for_sleeps(5)
    sup.which_children()              # asked after the tick's check ran
    clock.advance(1.0)                # t=3: ping 2 outstanding, no new ping; ping 1's timer
    clock.wait_for_sleeps(6)          # finds it answered
    clock.advance(0.5 - EPS)
    sup.which_children()
    assert events.of(ChildExited) == []

    clock.advance(EPS)                # t=3.5: ping 2's deadline
    [exited] = events.wait_for(ChildExited)
    events.wait_for(ChildRestarted)
    assert (exited.reason.kind, exited.at) == (ExitKind.HUNG, 1.0 + 1.5 + 1.0)
    assert sorted(clock.sleeps[:6]) == [1.0, 1.0, 1.0, 1.0, 1.5, 1.5]


eighths = st.integers(min_value=1, max_value=16).map(lambda n: n / 8)


@settings(max_examples=30, deadline=None)
@given(interval=eighths, deadline=eighths, answer_after=st.none() | st.integers(0, 20))
@example(interval=1.0, deadline=1.5, answer_after=0)     # answers at a check, hangs at once
@example(interval=1.0, deadline=1.5, answer_after=8)     # answers just before the next check
@example(interval=0.5, deadline=1.0, answer_after=20)    # answers just inside its deadline
@example(interval=1.0, deadline=1.5, answer_after=None)  # never answers: known alive at start
def test_a_child_that_stops_answering_is_found_hung_within_deadline_plus_interval(
    interval: float, deadline: float, answer_after: int | None
) -> None:
    """Checks run every ``interval`` (the ticker's job, above); the child hangs from its start,
    answers the first ping ``answer_after`` eighths of a second late (at most just inside the
    deadline; ``None``: never), and then hangs for good."""
    clock = ManualClock(mono=0.0, blocking=True)
    events, script = Events(), Script(name="a", journal=Journal())
    spec = ChildSpec(id="a", start=ScriptedChild, args=(script,), deadline=deadline)
    sup = Handle.start(SupervisorFlags(), [spec], name="root", clock=clock,
                       listeners=[events], liveness_interval=None)
    now = 0.0

    def move_to(moment: float) -> None:
        nonlocal now
        clock.advance(moment - now)
        now = moment

    def check_at(moment: float) -> None:
        move_to(moment)
        sup.check_liveness()
        assert events.of(ChildExited) == [], f"reported hung at {moment}"

    try:
        events.wait_for(ChildStarted)
        handle = sup.child("a")
        handle.tell("hang")
        assert script.hanging.wait(10)
        checks = (k * interval for k in range(1, 1_000))
        first = next(checks)
        check_at(first)                              # ping 1, held behind the hang
        if answer_after is None:
            known_alive, pinged = 0.0, first         # its start; ping 1 is never answered
        else:
            known_alive = first + min(answer_after / 8, deadline - EPS)
            pinged = next(checks)
            while pinged < known_alive:              # ping 1 still outstanding: no new ping
                check_at(pinged)
                pinged = next(checks)
            move_to(known_alive)
            _answer_then_hang_again(handle, script)  # the last sign of life
            check_at(pinged)                         # ping 2, never answered
        hung_at = pinged + deadline
        for moment in checks:
            if moment >= hung_at:
                break
            check_at(moment)
        if hung_at - EPS > now:
            check_at(hung_at - EPS)
        move_to(hung_at)
        [exited] = events.wait_for(ChildExited)
        events.wait_for(ChildRestarted)

        assert exited.reason.kind is ExitKind.HUNG
        assert exited.at == hung_at
        assert known_alive + deadline <= exited.at <= known_alive + deadline + interval
        assert len(events.of(ChildExited)) == 1
    finally:
        script.release.set()
        sup.stop(timeout=10)
        clock.close()


def test_a_late_report_from_the_abandoned_instance_is_ignored(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, clock: ManualClock,
) -> None:
    spec = child("a", deadline=1.0)
    sup = start_supervisor([spec])
    events.wait_for(ChildStarted)
    before = set(threading.enumerate())
    sup.child("a").tell("hang")
    _wait_hanging(spec)
    sup.check_liveness()
    clock.advance(1.5)
    events.wait_for(ChildRestarted)
    [stuck] = [t for t in before if t.name.startswith("ScriptedChild")]

    script_of(spec).release.set()  # the old instance wakes, finds its stop, reports its exit
    stuck.join(timeout=10)
    assert not stuck.is_alive()

    [info] = sup.which_children()  # asked after the late report was told
    assert info.state is ChildState.RUNNING
    assert len(events.of(ChildExited)) == 1 and len(events.of(ChildRestarted)) == 1
    assert sup.child("a").ask("whoami", timeout=5) == 2
