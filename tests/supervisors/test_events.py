"""Rule: supervision is observable -- events in order, OTP-shaped log reports on the
library's own loggers, and ``which_children``/``count_children``."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from supervisors import (
    ChildCounts,
    ChildExited,
    ChildRestarted,
    ChildSpec,
    ChildStarted,
    ChildState,
    ChildType,
    ExitKind,
    SupervisionEvent,
    SupervisorFlags,
    supervisor_child,
)
from supervisors import SupervisorHandle as Handle
from tests.fakes import ManualClock
from tests.supervisors.conftest import Events

pytestmark = pytest.mark.timeout(20)


def test_a_crash_and_restart_produce_exited_then_restarted_with_the_clock_time(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, clock: ManualClock,
) -> None:
    sup = start_supervisor([child("a")])
    started = events.wait_for(ChildStarted)[0]
    clock.advance(3.0)
    sup.child("a").tell("crash")
    restarted = events.wait_for(ChildRestarted)[0]
    exited = events.of(ChildExited)[0]

    assert events.all() == [started, exited, restarted]
    assert (exited.supervisor, exited.child_id, exited.instance) == ("root", "a", started.instance)
    assert exited.reason.kind is ExitKind.CRASHED and exited.at == 3.0
    assert restarted.instance > started.instance


def test_a_crash_is_logged_in_otp_report_shape(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="supervisors")
    sup = start_supervisor([child("a")])
    events.wait_for(ChildStarted)
    sup.child("a").tell("crash")
    events.wait_for(ChildRestarted)

    [record] = [r for r in caplog.records if r.name == "supervisors.supervisor"]
    assert record.getMessage() == (
        "Supervisor: root; Context: child_terminated; Child: a; Reason: crashed: Boom('a crash')"
    )
    assert (record.supervisor, record.child_id, record.context) == (  # type: ignore[attr-defined]
        "root", "a", "child_terminated")


def test_which_children_and_count_children_describe_the_tree(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, clock: ManualClock,
) -> None:
    nested = supervisor_child("sub", SupervisorFlags(), [child("x")], clock=clock,
                              liveness_interval=None)
    sup = start_supervisor([child("a"), nested])
    events.wait_for(ChildStarted, child_id="sub")

    infos = sup.which_children()
    assert [(i.id, i.state, i.type, i.actor_class) for i in infos] == [
        ("a", ChildState.RUNNING, ChildType.WORKER, "ScriptedChild"),
        ("sub", ChildState.RUNNING, ChildType.SUPERVISOR, "Supervisor"),
    ]
    assert all(i.instance is not None for i in infos)
    assert sup.count_children() == ChildCounts(specs=2, active=2, supervisors=1, workers=1)


def test_nested_supervisor_events_reach_the_root_listeners(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, clock: ManualClock,
) -> None:
    nested = supervisor_child("sub", SupervisorFlags(), [child("x")], clock=clock,
                              liveness_interval=None)
    start_supervisor([nested])
    [inner] = events.wait_for(ChildStarted, supervisor="sub")
    [outer] = events.wait_for(ChildStarted, supervisor="root")
    assert (inner.child_id, outer.child_id) == ("x", "sub")


def test_a_listener_that_raises_is_logged_and_does_not_stop_supervision(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(event: SupervisionEvent) -> None:
        raise RuntimeError("listener bug")

    sup = start_supervisor([child("a")], listeners=[broken, events])
    events.wait_for(ChildStarted)
    sup.child("a").tell("crash")
    events.wait_for(ChildRestarted)
    assert any("listener raised" in r.getMessage() for r in caplog.records)


def test_a_listener_subscribed_later_sees_later_events(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec], events: Events,
) -> None:
    late = Events()
    sup = start_supervisor([child("a")])
    events.wait_for(ChildStarted)
    sup.subscribe(late)
    sup.child("a").tell("crash")
    late.wait_for(ChildRestarted)
    assert late.of(ChildStarted) == []
