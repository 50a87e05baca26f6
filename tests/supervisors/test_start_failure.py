"""Rule: a child failing its *first* start fails its supervisor (OTP's ``start_error``),
unless its spec says ``start_failure=StartFailure.RESTART`` (only under ``one_for_one``): then
the failed start is treated like a crash -- counted against intensity, restarted after the
child's backoff on the injected clock, the children after it starting without waiting for
it, and the supervisor giving up and escalating as usual once intensity is exceeded."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from quotation.backoff import Backoff
from supervisors import (
    ChildExited,
    ChildRestarted,
    ChildSpec,
    ChildStarted,
    ChildState,
    Escalated,
    EscalationTarget,
    ExitKind,
    ExitReason,
    IntensityReached,
    SpecError,
    StartFailure,
    Strategy,
    Supervisor,
    SupervisorFlags,
    SupervisorGaveUp,
    supervisor_child,
)
from supervisors import SupervisorHandle as Handle
from tests.fakes import ManualClock
from tests.supervisors.conftest import Events
from tests.supervisors.scripted import Journal, ScriptedChild

pytestmark = pytest.mark.timeout(20)

RESTART = StartFailure.RESTART


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


def start_failures(events: Events, **fields: object) -> list[ChildExited]:
    return [e for e in events.of(ChildExited, **fields) if e.reason.kind is ExitKind.START_FAILED]


def test_a_child_spec_aborts_on_a_failed_first_start_by_default_as_otp() -> None:
    assert ChildSpec("a", ScriptedChild).start_failure is StartFailure.ABORT
    assert ChildSpec("a", ScriptedChild, start_failure="restart").start_failure is RESTART  # type: ignore[arg-type]


def test_an_unknown_start_failure_is_rejected_naming_the_field() -> None:
    with pytest.raises(SpecError) as caught:
        ChildSpec("a", ScriptedChild, start_failure="ignore")  # type: ignore[arg-type]
    assert (caught.value.field, caught.value.reason) == ("start_failure", "invalid_start_failure")


@pytest.mark.parametrize("strategy", [Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE])
def test_restart_on_a_failed_first_start_is_only_allowed_under_one_for_one(
    strategy: Strategy
) -> None:
    children = [ChildSpec("a", ScriptedChild), ChildSpec("b", ScriptedChild,
                                                         start_failure=RESTART)]
    with pytest.raises(SpecError) as caught:
        Supervisor.start(SupervisorFlags(strategy=strategy), children)
    assert (caught.value.field, caught.value.reason) == ("children[1].start_failure",
                                                         "invalid_start_failure")


def test_a_failed_first_start_is_restarted_at_once_and_the_supervisor_carries_on(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, journal: Journal,
) -> None:
    give_ups = GiveUps()
    sup = start_supervisor([child("a"), child("b", fail_starts={1, 2}, start_failure=RESTART),
                            child("c")], SupervisorFlags(intensity=2), on_give_up=give_ups)
    events.wait_for(ChildStarted, child_id="c")

    assert journal.lifecycle() == [("start", "a"), ("start", "b"), ("start", "b"),
                                   ("start", "b"), ("start", "c")]
    assert len(start_failures(events, child_id="b")) == 2
    assert [e.instance for e in events.of(ChildRestarted, child_id="b")] == [4]
    assert not events.of(ChildStarted, child_id="b")  # it replaced two failed instances
    assert sup.child("b").ask("whoami", timeout=5) == 3
    assert [info.state for info in sup.which_children()] == [ChildState.RUNNING] * 3
    assert not give_ups.called.is_set()


def test_a_failed_first_start_waits_its_backoff_while_the_children_after_it_start(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, clock: ManualClock,
) -> None:
    backoff = Backoff(initial=30.0, cap=30.0)
    sup = start_supervisor(
        [child("a", fail_starts={1}, start_failure=RESTART, backoff=backoff), child("b")],
        SupervisorFlags(intensity=1, period=10.0))
    events.wait_for(ChildStarted, child_id="b")

    assert clock.wait_for_sleeps(1) == [30.0]
    assert [(i.id, i.state) for i in sup.which_children()] == [
        ("a", ChildState.RESTARTING), ("b", ChildState.RUNNING)]
    assert sup.child("b").ask("whoami", timeout=5) == 1

    clock.advance(30.0)  # the failed start has aged out of the period: no give-up later
    events.wait_for(ChildRestarted, child_id="a")
    assert sup.child("a").ask("whoami", timeout=5) == 2


def test_failed_first_starts_beyond_intensity_give_up_as_a_crash_loop_does(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, journal: Journal,
) -> None:
    give_ups = GiveUps()
    start_supervisor([child("a"), child("b", fail_starts_from=1, start_failure=RESTART),
                      child("c")], SupervisorFlags(intensity=3), on_give_up=give_ups)
    error = give_ups.wait()

    assert (error.context, error.child_id) == ("reached_max_restart_intensity", "b")
    assert len(start_failures(events, child_id="b")) == 4  # 1 start + 3 restarts, the 4th over
    assert len(events.of(IntensityReached)) == 1
    assert journal.lifecycle()[-1] == ("stop", "a")
    assert ("start", "c") not in journal.lifecycle()


def test_a_supervisor_whose_child_never_starts_escalates_and_its_parent_restarts_it_later(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, journal: Journal, clock: ManualClock,
) -> None:
    """The lifeline shape: router_sup (a worker failing its first starts) escalates while the
    root starts; root restarts it after a recovery backoff instead of failing to start."""
    give_ups = GiveUps()
    middle = supervisor_child(
        "middle", SupervisorFlags(intensity=1),
        [child("worker", fail_starts={1, 2}, start_failure=RESTART)],
        backoff=Backoff(initial=5.0, cap=5.0), start_failure=RESTART, clock=clock,
        liveness_interval=None)
    root = start_supervisor([middle, child("sibling")], SupervisorFlags(intensity=1, period=3.0),
                            on_give_up=give_ups)
    events.wait_for(ChildStarted, child_id="sibling", supervisor="root")

    assert [(e.supervisor, e.target) for e in events.of(Escalated)] == [
        ("middle", EscalationTarget.PARENT)]
    assert len(start_failures(events, supervisor="middle")) == 2
    exited = events.of(ChildExited, supervisor="root", child_id="middle")
    assert [e.reason.kind for e in exited] == [ExitKind.CRASHED]
    assert isinstance(exited[0].reason.error, SupervisorGaveUp)
    assert clock.wait_for_sleeps(1) == [5.0]
    assert root.child("sibling").ask("whoami", timeout=5) == 1

    clock.advance(5.0)  # the recovery attempt: middle starts again, its worker's 3rd start
    events.wait_for(ChildRestarted, supervisor="root", child_id="middle")
    assert root.child("middle").child("worker").ask("whoami", timeout=5) == 3
    assert [e.child_id for e in events.of(ChildStarted, supervisor="middle")] == ["worker"]
    assert not give_ups.called.is_set()
    assert [n for what, name, n in journal.entries("start") if name == "worker"] == [1, 2, 3]


def test_under_one_for_one_a_child_waiting_for_its_backoff_holds_back_no_sibling(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, clock: ManualClock,
) -> None:
    sup = start_supervisor([child("slow", backoff=Backoff(initial=60.0, cap=60.0)), child("quick")],
                           SupervisorFlags(intensity=5, period=10.0))
    events.wait_for(ChildStarted, 2)
    sup.child("slow").tell("crash")
    assert clock.wait_for_sleeps(1) == [60.0]

    sup.child("quick").tell("crash")  # restarted at once, not after slow's 60 s
    events.wait_for(ChildRestarted, child_id="quick")
    assert sup.child("quick").ask("whoami", timeout=5) == 2
    assert sup.which_children()[0].state is ChildState.RESTARTING
