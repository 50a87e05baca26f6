"""The shared feed's metrics, read from ``status().feed`` at scrape time."""

from __future__ import annotations

import pytest

from lifeline.levels import Level
from lifeline.system import SystemStatus
from tests.lifeline.test_metrics import collect, samples

pytestmark = pytest.mark.timeout(30)


def test_local_mode_is_role_0_no_lag_no_takeovers() -> None:
    found = collect(SystemStatus(Level.NORMAL, "local", True, ()))
    assert samples(found["lifeline_feed_role"]) == {(): 0.0}
    assert samples(found["lifeline_feed_lag_seconds"]) == {}
    assert samples(found["lifeline_feed_takeovers"]) == {(): 0.0}


@pytest.mark.parametrize(("role", "value"), [("local", 0), ("follower", 1), ("leader", 2)])
def test_the_role_lag_and_takeovers_of_a_shared_host(role: str, value: int) -> None:
    feed = {"mode": "shared", "role": role, "leader": "h/1", "lease_age": 3.0, "lag": 0.25,
            "takeovers": 2}
    found = collect(SystemStatus(Level.NORMAL, "shared", True, (), feed=feed))
    assert samples(found["lifeline_feed_role"]) == {(): float(value)}
    assert samples(found["lifeline_feed_lag_seconds"]) == {(): 0.25}
    assert samples(found["lifeline_feed_takeovers"]) == {(): 2.0}
