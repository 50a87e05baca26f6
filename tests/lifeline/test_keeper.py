"""The LevelKeeper: its record of level changes is bounded (the total counted apart), and it
carries out recovery attempts itself when they are due (on a fake clock)."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace

import pytest

from actors.messages import FallbackReport, ProbeReport
from actors.routing import Channel
from lifeline.health import (
    ChannelDegraded,
    MemorySample,
    ProbeResult,
    RouterGaveUp,
    RouterRestarted,
)
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


class FakeRouter:
    """The keeper's ``recover``: records each call; answers what ``running`` says."""

    def __init__(self, running: bool = True) -> None:
        self.running = running
        self.calls: list[float] = []
        self.called = threading.Event()
        self.clock: ManualClock | None = None

    def recover(self) -> bool:
        assert self.clock is not None
        self.calls.append(self.clock.monotonic())
        self.called.set()
        return self.running


def keeper_with(router: FakeRouter) -> tuple[LevelKeeper, ManualClock]:
    clock = ManualClock(mono=0.0)
    router.clock = clock
    keeper = LevelKeeper(RULES, clock, recover=router.recover)
    keeper.start()
    return keeper, clock


def router_out(keeper: LevelKeeper, clock: ManualClock) -> None:
    """Three failed probes at 1, 2, 3 s: out for probe failures (Level 2) at 3 s."""
    for _ in range(3):
        clock.advance(1.0)
        keeper.observe(ProbeResult(clock.monotonic(), False))
    assert keeper.settle(5.0)
    assert keeper.level is Level.FALLBACK


def passed_a_check(keeper: LevelKeeper) -> bool:
    """Wait until the keeper has checked for a due attempt at least once since this call:
    it checks right after taking each item, so the second settle's item is taken only after
    the check that followed the first one."""
    return keeper.settle(5.0) and keeper.settle(5.0)


def attempt_at(keeper: LevelKeeper, clock: ManualClock, router: FakeRouter, at: float) -> None:
    """Move the clock to ``at`` and wait (bounded) for the keeper's attempt there."""
    router.called.clear()
    clock.advance(at - clock.monotonic())
    assert router.called.wait(5.0), f"no recovery attempt at {at}"
    assert keeper.settle(5.0)


def test_a_due_attempt_restarts_the_router_counts_it_and_logs_why(
    caplog: pytest.LogCaptureFixture
) -> None:
    router = FakeRouter()
    keeper, clock = keeper_with(router)
    try:
        with caplog.at_level(logging.WARNING, logger="lifeline.keeper"):
            router_out(keeper, clock)
            clock.advance(299.0)  # 302 s: one second early
            assert passed_a_check(keeper)
            assert router.calls == []
            attempt_at(keeper, clock, router, 303.0)
    finally:
        keeper.stop(5.0)
    assert (router.calls, keeper.recovery_attempts) == ([303.0], 1)
    assert keeper.state.awaiting_restart
    assert keeper.next_recovery_at() is None  # one is running
    assert any("recovery attempt 1: restarting the router (out: 3 router probes failed in a "
               "row)" in r.getMessage() for r in caplog.records)


def test_a_failed_attempt_doubles_the_wait_and_trust_resets_the_backoff() -> None:
    router = FakeRouter()
    keeper, clock = keeper_with(router)
    try:
        router_out(keeper, clock)
        attempt_at(keeper, clock, router, 303.0)
        keeper.observe(RouterRestarted(303.5))
        clock.advance(1.0)
        keeper.observe(ProbeResult(clock.monotonic(), False))  # the fresh one fails: 304 s
        assert keeper.settle(5.0)
        assert keeper.next_recovery_at() == 904.0  # 600 s after the failure
        attempt_at(keeper, clock, router, 904.0)
        keeper.observe(RouterRestarted(904.5))
        for at in (905.0, 906.0, 907.0):
            keeper.observe(ProbeResult(at, True))
        assert keeper.settle(5.0)
        assert keeper.level is Level.NORMAL
        assert (keeper.state.attempts, keeper.recovery_attempts) == (0, 2)
        clock.advance(907.0 - clock.monotonic())
        router_out(keeper, clock)  # out again at 910 s: the first wait again, not 1200 s
        assert keeper.next_recovery_at() == 1210.0
    finally:
        keeper.stop(5.0)


def test_an_attempt_with_no_router_running_is_postponed_not_counted() -> None:
    router = FakeRouter(running=False)
    keeper, clock = keeper_with(router)
    try:
        router_out(keeper, clock)
        attempt_at(keeper, clock, router, 303.0)
        assert keeper.recovery_attempts == 0
        assert keeper.next_recovery_at() == 603.0  # the same step again, from now
        assert not keeper.state.awaiting_restart
    finally:
        keeper.stop(5.0)


def test_a_router_out_for_memory_growth_is_restarted_even_though_it_answers() -> None:
    router = FakeRouter()
    keeper, clock = keeper_with(router)
    try:
        keeper.observe(MemorySample(0.0, 100.0))
        keeper.observe(MemorySample(1.0, 100.0 + RULES.memory_limit_mb + 1.0))
        for at in (2.0, 3.0, 4.0, 5.0):
            keeper.observe(ProbeResult(at, True))  # it answers: no trust for a leaker
        assert keeper.settle(5.0)
        leaking = keeper.level
        attempt_at(keeper, clock, router, 301.0)
        keeper.observe(RouterRestarted(301.5))
        for at in (302.0, 303.0, 304.0):
            keeper.observe(ProbeResult(at, True))
        assert keeper.settle(5.0)
        fresh = keeper.level
    finally:
        keeper.stop(5.0)
    assert (leaking, fresh) == (Level.FALLBACK, Level.NORMAL)


def test_no_attempt_while_root_owns_the_restart_of_router_sup() -> None:
    router = FakeRouter()
    keeper, clock = keeper_with(router)
    try:
        keeper.observe(RouterGaveUp(1.0))
        clock.advance(10_000.0)
        assert passed_a_check(keeper)
        assert router.calls == []
    finally:
        keeper.stop(5.0)


def _report(at: float, rest_ok: bool | None, banned_until: float | None = None) -> ProbeReport:
    return ProbeReport(at=at, router_ok=False, router_error="down", probe_error=None,
                       latency=None, consecutive_failures=0, since_last_success=at,
                       last_success_at=None,
                       fallbacks=FallbackReport(rest_ok=rest_ok,
                                                rest_banned_until=banned_until),
                       rss_mb=None, cpu_percent=None, headroom=())


def test_probe_reports_reach_level_3_only_after_three_judged_rest_failures() -> None:
    keeper = LevelKeeper(RULES, ManualClock(mono=0.0))
    keeper.start()
    try:
        seen = []
        for at, rest_ok in [(1.0, False), (2.0, None), (3.0, False), (4.0, None)]:
            keeper.report(_report(at, rest_ok))  # the router fails too: out at 3 s
            assert keeper.settle(5.0)
            seen.append(keeper.level)
        keeper.report(_report(5.0, False))
        assert keeper.settle(5.0)
        seen.append(keeper.level)
    finally:
        keeper.stop(5.0)
    assert seen == [Level.NORMAL, Level.NORMAL, Level.FALLBACK, Level.FALLBACK,
                    Level.LAST_RESORT]


def test_a_ban_in_a_report_without_a_rest_verdict_is_level_3_at_once() -> None:
    keeper = LevelKeeper(RULES, ManualClock(mono=0.0))
    keeper.start()
    try:
        keeper.observe(RouterGaveUp(1.0))
        keeper.report(_report(2.0, None, banned_until=60.0))
        assert keeper.settle(5.0)
        level = keeper.level
    finally:
        keeper.stop(5.0)
    assert level is Level.LAST_RESORT


def test_a_router_trusted_again_with_its_websocket_still_down_lands_on_1_not_0() -> None:
    """The channel is asked on every good probe, trusted or not, before the probe counts:
    the probe that brings the router back lands on Level 1 while its WebSocket is still
    down, then 0 once it is up (2 -> 1 -> 0), never 2 -> 0 -> 1 -> 0."""
    websocket_down = [True]
    keeper = LevelKeeper(RULES, ManualClock(mono=0.0),
                         websocket_degraded=lambda: websocket_down[0])
    keeper.start()
    try:
        for at in (1.0, 2.0, 3.0):  # three failed probes: out (Level 2)
            keeper.report(_report(at, True))
        for n in range(RULES.recovery_successes):  # healthy again, its WebSocket down
            keeper.report(replace(_report(4.0 + n, True), router_ok=True, router_error=None))
        assert keeper.settle(5.0)
        websocket_down[0] = False
        keeper.report(replace(_report(9.0, True), router_ok=True, router_error=None))
        assert keeper.settle(5.0)
        levels = [(change.old, change.new) for change in keeper.changes]
    finally:
        keeper.stop(5.0)
    assert levels == [(Level.NORMAL, Level.FALLBACK), (Level.FALLBACK, Level.DEGRADED),
                      (Level.DEGRADED, Level.NORMAL)]


def test_the_keeper_counts_changes_per_pair_since_start_past_the_ones_it_keeps() -> None:
    """Fails before: no per-pair counts (the metrics counted the 1,000 changes kept)."""
    clock = ManualClock()
    keeper = LevelKeeper(RULES, clock)
    keeper.start()
    try:
        for n in range(CHANGES_KEPT + 500):
            keeper.observe(ChannelDegraded(clock.monotonic(), Channel.WEBSOCKET, n % 2 == 0))
        assert keeper.settle(20.0)
    finally:
        keeper.stop(5.0)
    assert keeper.change_pairs == {(Level.NORMAL, Level.DEGRADED): 750,
                                   (Level.DEGRADED, Level.NORMAL): 750}
