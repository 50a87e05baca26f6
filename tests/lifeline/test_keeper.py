"""The LevelKeeper's record of level changes is bounded; the total is counted apart."""

from __future__ import annotations

import pytest

from actors.routing import Channel
from lifeline.health import ChannelDegraded
from lifeline.keeper import CHANGES_KEPT, LevelKeeper
from lifeline.levels import Level
from lifeline.system import SystemStatus
from tests.fakes import ManualClock
from tests.lifeline.test_levels import RULES

pytestmark = pytest.mark.timeout(30)


def test_the_keeper_keeps_the_latest_1000_changes_and_counts_every_one() -> None:
    clock = ManualClock()
    keeper = LevelKeeper(RULES, clock)
    keeper.start()
    try:
        for n in range(CHANGES_KEPT + 500):  # level 0 -> 1 -> 0 ...: one change each
            keeper.observe(ChannelDegraded(clock.monotonic(), Channel.WEBSOCKET, n % 2 == 0))
        assert keeper.settle(20.0)
    finally:
        keeper.stop(5.0)
    assert CHANGES_KEPT == 1000
    assert keeper.change_count == CHANGES_KEPT + 500
    changes = keeper.changes
    assert len(changes) == CHANGES_KEPT
    assert changes[-1].new is Level.NORMAL  # the last (n odd): back to 0
    status = SystemStatus(Level.NORMAL, "local", False, (), changes=changes,
                          changes_total=keeper.change_count).to_dict()
    assert len(status["changes"]) == CHANGES_KEPT
    assert status["changes_total"] == CHANGES_KEPT + 500
