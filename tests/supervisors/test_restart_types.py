"""Rule: permanent children always restart, transient ones only after an abnormal exit,
temporary ones never; an exception while answering an ask is not a death."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from supervisors import (
    ChildExited,
    ChildNotRunning,
    ChildRestarted,
    ChildSpec,
    ChildStarted,
    ChildState,
    ExitKind,
    Restart,
    SupervisorFlags,
)
from supervisors import SupervisorHandle as Handle
from tests.supervisors.conftest import Events
from tests.supervisors.scripted import Boom

pytestmark = pytest.mark.timeout(20)


def _start(start_supervisor: Callable[..., Handle], spec: ChildSpec, events: Events) -> Handle:
    sup = start_supervisor([spec], SupervisorFlags(intensity=5))
    events.wait_for(ChildStarted)
    return sup


def test_a_permanent_child_is_restarted_after_a_normal_exit(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec], events: Events
) -> None:
    sup = _start(start_supervisor, child("a"), events)
    sup.child("a").tell("exit")
    exited = events.wait_for(ChildExited)[0]
    events.wait_for(ChildRestarted)
    assert exited.reason.kind is ExitKind.NORMAL
    assert sup.child("a").ask("whoami", timeout=5) == 2


def test_a_permanent_child_is_restarted_after_a_crash(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec], events: Events
) -> None:
    sup = _start(start_supervisor, child("a"), events)
    sup.child("a").tell("crash")
    exited = events.wait_for(ChildExited)[0]
    events.wait_for(ChildRestarted)
    assert exited.reason.kind is ExitKind.CRASHED
    assert isinstance(exited.reason.error, Boom)


def test_a_transient_child_is_not_restarted_after_a_normal_exit(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec], events: Events
) -> None:
    sup = _start(start_supervisor, child("a", restart=Restart.TRANSIENT), events)
    sup.child("a").tell("exit")
    events.wait_for(ChildExited)

    [info] = sup.which_children()
    assert (info.state, info.instance) == (ChildState.STOPPED, None)
    assert events.of(ChildRestarted) == []
    with pytest.raises(ChildNotRunning):
        sup.child("a").ask("whoami", timeout=5)


def test_a_transient_child_is_restarted_after_a_crash(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec], events: Events
) -> None:
    sup = _start(start_supervisor, child("a", restart=Restart.TRANSIENT), events)
    sup.child("a").tell("crash")
    events.wait_for(ChildRestarted)
    assert sup.child("a").ask("whoami", timeout=5) == 2


def test_a_temporary_child_is_never_restarted_and_leaves_the_children_list(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec], events: Events
) -> None:
    sup = start_supervisor([child("a", restart=Restart.TEMPORARY), child("b")],
                           SupervisorFlags(intensity=5))
    events.wait_for(ChildStarted, 2)
    sup.child("a").tell("crash")
    events.wait_for(ChildExited)

    assert [info.id for info in sup.which_children()] == ["b"]
    assert sup.count_children().specs == 1
    assert events.of(ChildRestarted) == []
    with pytest.raises(ChildNotRunning):
        sup.child("a").tell("whoami")


def test_an_exception_while_answering_an_ask_goes_to_the_caller_and_is_not_a_death(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec], events: Events
) -> None:
    sup = _start(start_supervisor, child("a"), events)
    with pytest.raises(ValueError, match="bad request"):
        sup.child("a").ask("fail", timeout=5)
    assert sup.child("a").ask("whoami", timeout=5) == 1
    assert events.of(ChildExited) == []


def test_a_child_whose_on_stop_raises_has_exited_abnormally(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec], events: Events
) -> None:
    sup = _start(start_supervisor, child("a", restart=Restart.TRANSIENT, fail_on_stop=True),
                 events)
    sup.child("a").tell("exit")
    exited = events.wait_for(ChildExited)[0]
    events.wait_for(ChildRestarted)  # transient, and this exit was abnormal
    assert exited.reason.kind is ExitKind.CRASHED
    assert isinstance(exited.reason.error, Boom)
