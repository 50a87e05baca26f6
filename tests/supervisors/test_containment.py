"""Rule: a ``BaseException`` (``SystemExit``, ``KeyboardInterrupt``, ``GeneratorExit``, …)
raised in a supervised child is that child's crash only: pykka alone would stop every actor
in the process. The child is restarted per its spec, nothing else is touched, nothing it
leaves behind stays registered, and no message waiting for it is lost."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pykka
import pytest

from supervisors import (
    ChildAborted,
    ChildExited,
    ChildRestarted,
    ChildSpec,
    ChildStarted,
    ExitKind,
    ExitReason,
    Restart,
    SupervisionEvent,
    SupervisorFlags,
)
from supervisors import SupervisorHandle as Handle
from tests.supervisors.conftest import Events, script_of
from tests.supervisors.scripted import Journal

pytestmark = pytest.mark.timeout(20)

BASE_EXCEPTIONS = [SystemExit, KeyboardInterrupt, GeneratorExit]


def _join_instance(spec: ChildSpec, number: int) -> None:
    """Wait until the thread of the child's start ``number`` (1 = first) has ended."""
    thread = script_of(spec).threads[number - 1]
    thread.join(timeout=10)
    assert not thread.is_alive()


def _scripted_refs() -> list[pykka.ActorRef[pykka.ThreadingActor]]:
    return [ref for ref in pykka.ActorRegistry.get_all()
            if ref.actor_class.__name__ == "ScriptedChild"]


@pytest.mark.parametrize("error", BASE_EXCEPTIONS)
def test_a_base_exception_in_a_tell_restarts_only_that_child_and_the_tree_keeps_running(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, error: type[BaseException],
) -> None:
    sup = start_supervisor([child("a"), child("b")], SupervisorFlags(intensity=5))
    events.wait_for(ChildStarted, 2)

    sup.child("a").tell(("raise", error("on purpose")))
    [exited] = events.wait_for(ChildExited)
    events.wait_for(ChildRestarted, child_id="a")

    assert exited.reason.kind is ExitKind.CRASHED
    assert isinstance(exited.reason.error, error)
    assert sup.is_alive()
    assert [sup.child(name).ask("whoami", timeout=5) for name in "ab"] == [2, 1]


def test_a_base_exception_while_answering_an_ask_answers_the_caller_and_restarts_the_child(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec], events: Events,
) -> None:
    sup = start_supervisor([child("a")], SupervisorFlags(intensity=5))
    events.wait_for(ChildStarted)

    with pytest.raises(ChildAborted) as caught:
        sup.child("a").ask(("raise", KeyboardInterrupt()), timeout=5)
    [exited] = events.wait_for(ChildExited)
    events.wait_for(ChildRestarted)

    assert caught.value.child_id == "a"
    assert isinstance(caught.value.error, KeyboardInterrupt)
    assert caught.value.__cause__ is caught.value.error
    assert exited.reason == ExitReason(ExitKind.CRASHED, caught.value.error)
    assert sup.child("a").ask("whoami", timeout=5) == 2


def test_messages_queued_behind_a_base_exception_go_to_the_replacement_in_order(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec], events: Events,
) -> None:
    sup = start_supervisor([child("a")])
    events.wait_for(ChildStarted)
    handle = sup.child("a")

    handle.tell(("raise", SystemExit(3)))
    futures = [handle.ask_future(("record", i)) for i in range(100)]

    assert [f.get(timeout=10) for f in futures] == [(2, i) for i in range(100)]
    assert sup.is_alive()


def test_the_child_s_own_on_failure_runs_once_with_the_original_base_exception(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, journal: Journal,
) -> None:
    spec = child("a")
    sup = start_supervisor([spec])
    events.wait_for(ChildStarted)
    stop_request = SystemExit("stop")

    sup.child("a").tell(("raise", stop_request))
    events.wait_for(ChildRestarted)
    _join_instance(spec, 1)

    assert journal.entries("failure") == [("failure", "a", stop_request)]


def test_a_base_exception_in_on_start_is_a_failed_start_and_leaves_no_zombie_registered(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec], events: Events,
) -> None:
    spec = child("a", fail_starts={2}, error=SystemExit)
    sup = start_supervisor([spec, child("b")], SupervisorFlags(intensity=5))
    events.wait_for(ChildStarted, 2)

    sup.child("a").tell("crash")  # restart #2 raises SystemExit in on_start, #3 runs
    events.wait_for(ChildRestarted, child_id="a")
    _join_instance(spec, 2)

    [failed] = [e for e in events.of(ChildExited) if e.reason.kind is ExitKind.START_FAILED]
    assert isinstance(failed.reason.error, SystemExit)
    assert sup.child("a").ask("whoami", timeout=5) == 3
    assert len(_scripted_refs()) == sup.count_children().active == 2


def test_a_base_exception_in_a_first_start_fails_the_supervisor_and_leaves_nothing_registered(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
) -> None:
    gave_up = threading.Event()
    spec = child("b", fail_starts={1}, error=SystemExit)

    def on_give_up(reason: ExitReason) -> None:
        gave_up.set()

    start_supervisor([child("a"), spec], on_give_up=on_give_up)
    assert gave_up.wait(10)
    _join_instance(spec, 1)

    assert pykka.ActorRegistry.get_all() == []


def test_a_base_exception_in_on_stop_runs_on_stop_once_and_is_a_crash_of_that_child_only(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, journal: Journal,
) -> None:
    spec = child("a", restart=Restart.TRANSIENT, fail_stops={1}, error=SystemExit)
    sup = start_supervisor([spec, child("b")])
    events.wait_for(ChildStarted, 2)

    sup.child("a").tell("exit")
    [exited] = events.wait_for(ChildExited)
    events.wait_for(ChildRestarted, child_id="a")  # transient, and the exit was abnormal
    _join_instance(spec, 1)

    assert exited.reason.kind is ExitKind.CRASHED
    assert isinstance(exited.reason.error, SystemExit)
    assert journal.entries("stop") == [("stop", "a", 1)]
    assert [sup.child(name).ask("whoami", timeout=5) for name in "ab"] == [2, 1]


def test_a_base_exception_in_on_stop_during_shutdown_does_not_hold_up_the_stop(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec], events: Events,
) -> None:
    sup = start_supervisor([child("a", fail_on_stop=True, error=KeyboardInterrupt)])
    events.wait_for(ChildStarted)

    assert sup.stop(timeout=10)

    kinds = [e.reason.kind for e in events.of(ChildExited)]
    assert kinds == [ExitKind.SHUTDOWN]  # stopped in time: not abandoned as KILLED


def test_a_listener_raising_system_exit_is_logged_and_the_root_keeps_supervising(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, caplog: pytest.LogCaptureFixture,
) -> None:
    def exits(event: SupervisionEvent) -> None:
        if isinstance(event, ChildExited):
            raise SystemExit("host code calling sys.exit on the supervisor's thread")

    sup = start_supervisor([child("a"), child("b")], listeners=[exits, events])
    events.wait_for(ChildStarted, 2)
    sup.child("a").tell("crash")
    events.wait_for(ChildRestarted)

    assert sup.is_alive()
    assert [sup.child(name).ask("whoami", timeout=5) for name in "ab"] == [2, 1]
    assert any("listener raised" in r.getMessage() for r in caplog.records)


def test_a_constructor_raising_system_exit_is_a_failed_start_and_the_root_keeps_supervising(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec], events: Events,
) -> None:
    sup = start_supervisor([child("a", fail_inits={2}, error=SystemExit)],
                           SupervisorFlags(intensity=5))
    events.wait_for(ChildStarted)

    sup.child("a").tell("crash")  # the replacement's __init__ raises, on the supervisor's thread
    events.wait_for(ChildRestarted)  # and the one after it starts
    failed = events.of(ChildExited)[1]

    assert failed.reason.kind is ExitKind.START_FAILED
    assert isinstance(failed.reason.error, SystemExit)
    assert sup.is_alive()
    assert sup.child("a").ask("whoami", timeout=5) == 2
