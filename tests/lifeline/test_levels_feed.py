"""``feed.mode: shared``: losing the shared feed's Redis is Level ≥ 1 ("shared feed lost"),
its return ends it; a level already above 1 is unchanged by it."""

from __future__ import annotations

import pytest

from lifeline.health import FeedLost, ProbeResult
from lifeline.levels import SHARED_FEED_LOST, Cause, Level, LevelState, step
from tests.lifeline.test_levels import RULES

pytestmark = pytest.mark.timeout(10)


def test_losing_the_feed_is_level_1_and_its_return_level_0() -> None:
    state = LevelState.starting(0.0)
    state, change = step(state, FeedLost(1.0, True), RULES)
    assert state.level is Level.DEGRADED
    assert change is not None
    assert (change.old, change.new, change.reason, change.cause) == (
        Level.NORMAL, Level.DEGRADED, SHARED_FEED_LOST, Cause.FEED_LOST)
    state, change = step(state, FeedLost(2.0, True), RULES)
    assert change is None  # told twice: no second change
    state, change = step(state, FeedLost(3.0, False), RULES)
    assert state.level is Level.NORMAL
    assert change is not None
    assert (change.new, change.reason, change.cause) == (
        Level.NORMAL, "shared feed back", Cause.FEED_RECOVERED)


def test_a_lost_feed_does_not_change_level_2_and_keeps_level_1_after_recovery() -> None:
    state = LevelState.starting(0.0)
    for at in (1.0, 1.1, 1.2):
        state, _ = step(state, ProbeResult(at, False), RULES)
    assert state.level is Level.FALLBACK
    state, change = step(state, FeedLost(1.5, True), RULES)
    assert change is None and state.level is Level.FALLBACK
    for at in (2.0, 2.1, 2.2):
        state, _ = step(state, ProbeResult(at, True), RULES)
    assert state.level is Level.DEGRADED  # trusted again, the feed still lost
