"""Rule: callers address children by id and always reach the current instance; a message
sent around a restart is delivered to the new instance (in order) or answered with a typed
error -- never silently lost."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from quotation.backoff import Backoff
from supervisors import (
    ChildNotRunning,
    ChildRestarted,
    ChildRestarting,
    ChildSpec,
    ChildStarted,
    ChildState,
    Restart,
    SupervisorFlags,
    UnknownChild,
    supervisor_child,
)
from supervisors import SupervisorHandle as Handle
from tests.fakes import ManualClock
from tests.supervisors.conftest import Events
from tests.supervisors.scripted import Journal

pytestmark = pytest.mark.timeout(30)


def test_a_handle_reaches_the_replacement_after_each_restart(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec], events: Events
) -> None:
    sup = start_supervisor([child("a")], SupervisorFlags(intensity=10))
    events.wait_for(ChildStarted)
    handle = sup.child("a")
    for number in range(1, 5):
        assert handle.ask("whoami", timeout=5) == number
        handle.tell("crash")
        events.wait_for(ChildRestarted, number)
    assert handle.ask("whoami", timeout=5) == 5


def test_messages_queued_behind_a_crash_go_to_the_replacement_in_order(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, journal: Journal,
) -> None:
    sup = start_supervisor([child("a")])
    events.wait_for(ChildStarted)
    handle = sup.child("a")

    handle.tell("crash")
    futures = [handle.ask_future(("record", i)) for i in range(200)]

    assert [f.get(timeout=10) for f in futures] == [(2, i) for i in range(200)]
    assert [detail for _, _, detail in journal.entries("record")] == list(range(200))


def test_no_message_is_lost_while_concurrent_senders_race_repeated_restarts(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, journal: Journal,
) -> None:
    senders, per_sender, crashes = 4, 300, 30
    sup = start_supervisor([child("a")], SupervisorFlags(intensity=1000))
    events.wait_for(ChildStarted)
    handle = sup.child("a")
    go = threading.Event()
    answers: dict[int, list[Any]] = {}

    def send(sender: int) -> None:
        go.wait()
        futures = [handle.ask_future(("record", (sender, i))) for i in range(per_sender)]
        answers[sender] = [f.get(timeout=20)[1] for f in futures]

    threads = [threading.Thread(target=send, args=(n,)) for n in range(senders)]
    for thread in threads:
        thread.start()
    go.set()
    for _ in range(crashes):
        handle.tell("crash")
    for thread in threads:
        thread.join(timeout=25)
    events.wait_for(ChildRestarted, crashes)

    for sender in range(senders):
        assert answers[sender] == [(sender, i) for i in range(per_sender)]
    recorded = [detail for _, _, detail in journal.entries("record")]
    assert sorted(recorded) == sorted((s, i) for s in range(senders) for i in range(per_sender))
    for sender in range(senders):  # each sender's messages were handled in the order sent
        assert [i for s, i in recorded if s == sender] == list(range(per_sender))


def test_messages_sent_during_a_backoff_wait_are_delivered_to_the_new_instance(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, clock: ManualClock,
) -> None:
    sup = start_supervisor([child("a", backoff=Backoff(initial=1.0, cap=1.0))],
                           max_pending=2)
    events.wait_for(ChildStarted)
    handle = sup.child("a")
    handle.tell("crash")
    clock.wait_for_sleeps(1)  # the restart waits on the clock now
    assert sup.which_children()[0].state is ChildState.RESTARTING

    first, second = handle.ask_future(("record", 1)), handle.ask_future(("record", 2))
    with pytest.raises(ChildRestarting) as caught:
        handle.tell(("record", 3))  # the buffer holds two
    assert caught.value.child_id == "a"

    clock.advance(1.0)
    assert (first.get(timeout=5), second.get(timeout=5)) == ((2, 1), (2, 2))


def test_messages_for_a_child_that_will_not_restart_are_answered_not_running(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec], events: Events
) -> None:
    sup = start_supervisor([child("a", restart=Restart.TEMPORARY)])
    events.wait_for(ChildStarted)
    handle = sup.child("a")
    handle.tell("crash")
    waiting = handle.ask_future("whoami")
    with pytest.raises(ChildNotRunning) as caught:
        waiting.get(timeout=5)
    assert caught.value.child_id == "a"


def test_an_unknown_child_id_is_rejected_at_once(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec]
) -> None:
    sup = start_supervisor([child("a")])
    with pytest.raises(UnknownChild) as caught:
        sup.child("b")
    assert caught.value.child_id == "b"


def test_a_path_handle_reaches_a_grandchild_through_a_nested_supervisor(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, clock: ManualClock,
) -> None:
    nested = supervisor_child("router_sup", SupervisorFlags(intensity=5), [child("router")],
                              clock=clock, liveness_interval=None)
    sup = start_supervisor([nested, child("probe")])
    events.wait_for(ChildStarted, child_id="probe")
    router = sup.child("router_sup").child("router")
    assert router.ask("whoami", timeout=5) == 1
    router.tell("crash")
    events.wait_for(ChildRestarted, child_id="router")
    assert router.ask("whoami", timeout=5) == 2
    with pytest.raises(UnknownChild):
        sup.child("router_sup").child("nobody").tell("whoami")
