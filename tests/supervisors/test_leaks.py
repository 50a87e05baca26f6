"""Rule: restarting does not leak: after 5,000 restarts the thread count is back at its
baseline once the supervisor stops, and only one instance is ever registered."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pykka
import pytest

from supervisors import ChildSpec, ChildStarted, SupervisorFlags
from supervisors import SupervisorHandle as Handle
from tests.supervisors.conftest import Events

RESTARTS = 5_000


@pytest.mark.timeout(60)
def test_five_thousand_restarts_leave_the_thread_count_at_its_baseline(
    start_supervisor: Callable[..., Handle], child: Callable[..., ChildSpec],
    events: Events, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.CRITICAL)  # 5,000 crash reports are expected here
    baseline = set(threading.enumerate())
    sup = start_supervisor([child("a")], SupervisorFlags(intensity=RESTARTS + 1))
    events.wait_for(ChildStarted)
    handle = sup.child("a")

    for number in range(1, RESTARTS + 1):
        handle.tell("crash")
        assert handle.ask("whoami", timeout=5) == number + 1  # answered by the replacement

    actors = pykka.ActorRegistry.get_all()
    assert len(actors) == 2  # the supervisor and the one current child
    assert sup.stop(timeout=10)
    for thread in set(threading.enumerate()) - baseline:
        thread.join(timeout=5)
    assert set(threading.enumerate()) == baseline
