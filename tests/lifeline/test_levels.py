"""The failure levels: every rule at its boundary, the climbs up and down, the recovery
schedule, and properties over any sequence of observations, all with plain numbers."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.routing import Channel
from lifeline.health import (
    ChannelDegraded,
    FallbackHealth,
    MemorySample,
    Observation,
    ProbeResult,
    ProbeTarget,
    RouterGaveUp,
    RouterHung,
    RouterRestarted,
    RouterStartFailed,
)
from lifeline.levels import (
    Cause,
    Level,
    LevelChange,
    LevelRules,
    LevelState,
    classify,
    next_recovery_at,
    next_tick_at,
    recovery_due,
    recovery_postponed,
    recovery_started,
    root_restart_delay,
    step,
    tick,
)
from quotation.backoff import Backoff, Jitter
from quotation.errors import InvalidValue

pytestmark = pytest.mark.timeout(60)

RULES = LevelRules(
    failure_threshold=3, no_success_timeout=300.0, recovery_successes=3, memory_limit_mb=1024.0,
    intensity=3, period=5.0, recovery=Backoff(initial=300.0, cap=3600.0),
)
"""config.yaml's defaults for the fallback section; router_sup at 3 restarts in 5 s."""

N0, N1, N2, N3 = Level.NORMAL, Level.DEGRADED, Level.FALLBACK, Level.LAST_RESORT


@dataclass(frozen=True)
class Tick:
    """Test script only: let time pass to ``at``."""

    at: float


@dataclass(frozen=True)
class Attempt:
    """Test script only: a recovery attempt starts at ``at`` (``restart``: the keeper asked
    the router to restart; else a fresh router already runs)."""

    at: float
    restart: bool = False


Event = Observation | Tick | Attempt


def feed(
    events: Iterable[Event], state: LevelState | None = None, rules: LevelRules = RULES
) -> tuple[LevelState, list[LevelChange]]:
    """Fold the events through the rules from ``state`` (start-up at 0 by default)."""
    state = LevelState.starting(0.0) if state is None else state
    changes: list[LevelChange] = []
    for event in events:
        change: LevelChange | None = None
        if isinstance(event, Tick):
            state, change = tick(state, event.at, rules)
        elif isinstance(event, Attempt):
            state = recovery_started(state, event.at, restart=event.restart)
        else:
            state, change = step(state, event, rules)
        if change is not None:
            changes.append(change)
    return state, changes


def moves(changes: list[LevelChange]) -> list[tuple[Level, Level]]:
    return [(change.old, change.new) for change in changes]


def ok(at: float, target: ProbeTarget = ProbeTarget.ROUTER) -> ProbeResult:
    return ProbeResult(at, True, target)


def fail(at: float, target: ProbeTarget = ProbeTarget.ROUTER) -> ProbeResult:
    return ProbeResult(at, False, target)


def out_at(at: float) -> LevelState:
    """The router supervisor gave up at ``at``: level 2."""
    state, _ = feed([RouterGaveUp(at)])
    return state


REST_DOWN = FallbackHealth(0.0, rest_ok=False, rest_banned_until=None, ws_ok=True)


def rest_checks(ok: bool, *ats: float, ws_ok: bool = True) -> list[Observation]:
    """REST fallback checks at ``ats``, each answering ``ok``."""
    return [FallbackHealth(at, rest_ok=ok, rest_banned_until=None, ws_ok=ws_ok) for at in ats]


def rest_down(at: float) -> list[Observation]:
    """The REST fallback failing long enough to count as failing: the last check at ``at``."""
    return rest_checks(False, *(at - n for n in reversed(range(RULES.rest_failures))))


class TestProbeFailures:
    def test_one_failure_short_of_the_threshold_keeps_the_router_serving(self) -> None:
        state, changes = feed([fail(1.0), fail(2.0)])
        assert (state.level, changes, state.failures) == (N0, [], 2)

    def test_the_threshold_th_failure_in_a_row_puts_the_router_out(self) -> None:
        _, changes = feed([fail(1.0), fail(2.0), fail(3.0)])
        assert changes == [LevelChange(N0, N2, "3 router probes failed in a row", 3.0,
                                       Cause.PROBE_FAILURES)]

    def test_a_success_between_failures_starts_the_count_again(self) -> None:
        state, changes = feed([fail(1.0), fail(2.0), ok(3.0), fail(4.0), fail(5.0)])
        assert (state.level, changes, state.failures) == (N0, [], 2)

    def test_failed_fallback_probes_do_not_count_against_the_router(self) -> None:
        rest = ProbeTarget.REST_FALLBACK
        state, _ = feed([fail(1.0, rest), fail(2.0, rest), fail(3.0, rest)])
        assert (state.level, state.failures) == (N0, 0)


class TestNoSuccess:
    def test_just_before_the_timeout_nothing_happens(self) -> None:
        state, changes = feed([Tick(299.999)])
        assert (state.level, changes) == (N0, [])

    def test_exactly_the_timeout_without_a_success_puts_the_router_out(self) -> None:
        _, changes = feed([Tick(300.0)])
        assert changes == [LevelChange(N0, N2, "no successful router probe for 300 s", 300.0,
                                       Cause.NO_SUCCESS)]

    def test_a_success_moves_the_deadline(self) -> None:
        state, changes = feed([ok(100.0), Tick(399.5)])
        assert (state.level, changes, next_tick_at(state, RULES)) == (N0, [], 400.0)
        _, changes = feed([Tick(400.0)], state)
        assert moves(changes) == [(N0, N2)]

    def test_any_observation_at_the_deadline_fires_it_without_a_tick(self) -> None:
        _, changes = feed([MemorySample(300.0, 100.0)])
        assert [change.cause for change in changes] == [Cause.NO_SUCCESS]

    def test_failed_probes_do_not_move_the_deadline(self) -> None:
        _, changes = feed([ok(10.0), fail(100.0), ok(101.0), fail(200.0), Tick(400.999)])
        assert changes == []
        _, changes = feed([ok(10.0), fail(100.0), fail(200.0), Tick(310.0)])
        assert [change.cause for change in changes] == [Cause.NO_SUCCESS]


class TestSupervisorSignals:
    @pytest.mark.parametrize(("observation", "cause"), [
        (RouterGaveUp(7.0), Cause.ROUTER_GAVE_UP),
        (RouterStartFailed(7.0), Cause.ROUTER_START_FAILED),
        (RouterHung(7.0), Cause.ROUTER_HUNG),
    ])
    def test_the_router_out_of_the_supervisor_s_hands_is_level_two(
        self, observation: Observation, cause: Cause
    ) -> None:
        state, changes = feed([observation])
        assert (moves(changes), changes[0].cause, changes[0].at) == ([(N0, N2)], cause, 7.0)
        assert changes[0].reason == state.out_reason != ""

    def test_a_signal_while_the_router_is_already_out_changes_no_level(self) -> None:
        _, changes = feed([RouterHung(1.0), RouterGaveUp(2.0), RouterStartFailed(3.0)])
        assert moves(changes) == [(N0, N2)]


class TestMemory:
    def test_the_first_sample_is_the_baseline(self) -> None:
        state, _ = feed([MemorySample(1.0, 200.0)])
        assert state.memory_baseline_mb == 200.0

    def test_growth_of_exactly_the_limit_is_tolerated(self) -> None:
        state, changes = feed([MemorySample(1.0, 200.0), MemorySample(2.0, 1224.0)])
        assert (state.level, changes) == (N0, [])

    def test_growth_past_the_limit_puts_the_router_out(self) -> None:
        _, changes = feed([MemorySample(1.0, 200.0), MemorySample(2.0, 1224.5)])
        assert changes == [LevelChange(N0, N2, "memory grew 1024.5 MiB past its baseline "
                                       "(limit 1024 MiB)", 2.0, Cause.MEMORY_GROWTH)]

    def test_a_router_out_for_memory_growth_earns_no_trust_before_it_is_restarted(
        self
    ) -> None:
        state, changes = feed([MemorySample(1.0, 200.0), MemorySample(2.0, 1300.0),
                               ok(3.0), ok(4.0), ok(5.0), ok(6.0)])
        assert (state.level, state.healthy, moves(changes)) == (N2, 0, [(N0, N2)])
        assert next_recovery_at(state, 6.0, RULES) == 302.0  # the attempt stays due

    def test_a_restarted_router_is_measured_from_its_own_first_sample(self) -> None:
        out, _ = feed([MemorySample(1.0, 200.0), MemorySample(2.0, 1300.0)])
        state, changes = feed([Attempt(302.0, restart=True), RouterRestarted(302.5),
                               MemorySample(303.0, 1400.0), ok(303.0), ok(304.0),
                               MemorySample(305.0, 2000.0), ok(305.0)],
                              out)
        assert (state.level, state.memory_baseline_mb, moves(changes)) == (
            N0, 1400.0, [(N2, N0)])

    def test_a_restarted_router_still_growing_past_the_limit_fails_the_attempt(self) -> None:
        out, _ = feed([MemorySample(1.0, 200.0), MemorySample(2.0, 1300.0)])
        state, changes = feed([Attempt(302.0, restart=True), RouterRestarted(302.5),
                               MemorySample(303.0, 1400.0), ok(303.0),
                               MemorySample(304.0, 2500.0), ok(304.0), ok(305.0), ok(306.0)],
                              out)
        assert (state.level, state.attempts, state.needs_restart, changes) == (N2, 1, True, [])
        assert next_recovery_at(state, 304.0, RULES) == 904.0  # doubled: 600 s after it failed


class TestLevelOne:
    def test_a_restart_within_the_intensity_is_level_one(self) -> None:
        state, changes = feed([RouterRestarted(10.0)])
        assert changes == [LevelChange(N0, N1, "router restarted (1 of at most 3 within 5 s)",
                                       10.0, Cause.ROUTER_RESTARTED)]
        assert next_tick_at(state, RULES) == 15.0

    def test_a_restart_ages_out_at_exactly_the_period(self) -> None:
        state, changes = feed([RouterRestarted(10.0), Tick(14.999)])
        assert (state.level, len(changes)) == (N1, 1)
        _, changes = feed([Tick(15.0)], state)
        assert changes == [LevelChange(N1, N0, "router restarts aged out of the 5 s window",
                                       15.0, Cause.RESTARTS_SETTLED)]

    def test_intensity_restarts_in_the_period_stay_at_level_one(self) -> None:
        state, changes = feed([RouterRestarted(10.0), RouterRestarted(11.0),
                               RouterRestarted(14.0)])
        assert (state.level, moves(changes)) == (N1, [(N0, N1)])

    def test_one_restart_more_than_the_intensity_is_the_supervisor_giving_up(self) -> None:
        _, changes = feed([RouterRestarted(t) for t in (10.0, 11.0, 12.0, 14.9)])
        assert moves(changes) == [(N0, N1), (N1, N2)]
        assert changes[1].cause is Cause.ROUTER_GAVE_UP
        assert changes[1].reason == "4 router restarts within 5 s exceed intensity 3"

    def test_restarts_spread_wider_than_the_period_never_leave_level_one(self) -> None:
        state, changes = feed([RouterRestarted(float(t)) for t in range(0, 100, 3)])
        assert (state.level, moves(changes)) == (N1, [(N0, N1)])

    def test_a_degraded_channel_is_level_one_until_it_recovers(self) -> None:
        _, changes = feed([ChannelDegraded(1.0, Channel.WEBSOCKET, True),
                           ChannelDegraded(9.0, Channel.WEBSOCKET, False)])
        assert changes == [
            LevelChange(N0, N1, "router routes around channel websocket", 1.0,
                        Cause.CHANNEL_DEGRADED),
            LevelChange(N1, N0, "channel websocket recovered", 9.0, Cause.CHANNEL_RECOVERED),
        ]

    def test_level_one_lasts_until_every_channel_and_the_restarts_have_recovered(self) -> None:
        state, changes = feed([ChannelDegraded(1.0, Channel.WEBSOCKET, True),
                               ChannelDegraded(2.0, Channel.REST, True),
                               RouterRestarted(3.0),
                               ChannelDegraded(4.0, Channel.REST, False),
                               Tick(20.0)])
        assert (state.level, moves(changes)) == (N1, [(N0, N1)])
        _, changes = feed([ChannelDegraded(21.0, Channel.WEBSOCKET, False)], state)
        assert moves(changes) == [(N1, N0)]


class TestRecoveryHysteresis:
    def test_one_healthy_probe_short_then_a_failure_leaves_the_router_untrusted(self) -> None:
        state, changes = feed([ok(1.0), ok(2.0), fail(3.0), ok(4.0), ok(5.0)], out_at(0.0))
        assert (state.level, changes, state.healthy) == (N2, [], 2)

    def test_recovery_successes_healthy_probes_in_a_row_bring_the_router_back(self) -> None:
        _, changes = feed([ok(1.0), ok(2.0), ok(3.0)], out_at(0.0))
        assert changes == [LevelChange(N2, N0, "router healthy for 3 probes in a row", 3.0,
                                       Cause.ROUTER_TRUSTED)]

    def test_a_router_trusted_again_needs_the_full_threshold_to_go_out_again(self) -> None:
        state, changes = feed([fail(1.0), ok(2.0), ok(3.0), ok(4.0), fail(5.0), fail(6.0)],
                              out_at(0.0))
        assert (state.level, moves(changes)) == (N0, [(N2, N0)])

    def test_a_router_with_a_degraded_channel_comes_back_at_level_one(self) -> None:
        _, changes = feed([ChannelDegraded(1.0, Channel.WEBSOCKET, True),
                           ok(2.0), ok(3.0), ok(4.0)], out_at(0.0))
        assert moves(changes) == [(N2, N1)]
        assert changes[0].cause is Cause.ROUTER_TRUSTED


class TestRecoverySchedule:
    def test_nothing_is_scheduled_while_the_router_is_trusted(self) -> None:
        assert next_recovery_at(LevelState.starting(0.0), 10.0, RULES) is None

    def test_the_first_attempt_is_one_recovery_interval_after_the_router_went_out(self) -> None:
        assert next_recovery_at(out_at(50.0), 60.0, RULES) == 350.0

    def test_an_overdue_attempt_is_due_now(self) -> None:
        assert next_recovery_at(out_at(50.0), 1000.0, RULES) == 1000.0

    def test_failing_probes_of_a_router_that_is_down_do_not_postpone_the_attempt(self) -> None:
        state, _ = feed([fail(float(t)) for t in range(51, 300)], out_at(50.0))
        assert next_recovery_at(state, 300.0, RULES) == 350.0

    def test_nothing_is_scheduled_while_an_attempt_runs(self) -> None:
        state = recovery_started(out_at(50.0), 350.0)
        assert next_recovery_at(state, 351.0, RULES) is None

    def test_each_failed_attempt_doubles_the_wait_up_to_the_cap(self) -> None:
        state = out_at(0.0)
        now, waits = 0.0, []
        for _ in range(6):
            due = next_recovery_at(state, now, RULES)
            assert due is not None
            waits.append(due - now)
            state, _ = feed([Attempt(due), RouterStartFailed(due)], state)
            now = due
        assert waits == [300.0, 600.0, 1200.0, 2400.0, 3600.0, 3600.0]

    def test_an_attempt_fails_on_the_first_failure_after_it_started(self) -> None:
        state, _ = feed([Attempt(300.0), ok(301.0), ok(302.0), fail(303.0)], out_at(0.0))
        assert (state.attempts, next_recovery_at(state, 303.0, RULES)) == (1, 903.0)

    def test_nothing_is_scheduled_while_the_router_earns_trust(self) -> None:
        state, _ = feed([ok(1.0)], out_at(0.0))
        assert next_recovery_at(state, 400.0, RULES) is None

    def test_the_draw_picks_the_jittered_wait(self) -> None:
        rules = replace(RULES, recovery=Backoff(initial=300.0, cap=3600.0, jitter=Jitter.FULL))
        assert next_recovery_at(out_at(0.0), 0.0, rules, draw=0.25) == 75.0

    def test_trust_regained_clears_the_schedule(self) -> None:
        state, _ = feed([Attempt(300.0), RouterStartFailed(300.0), Attempt(900.0),
                         ok(901.0), ok(902.0), ok(903.0)], out_at(0.0))
        assert (state.trusted, state.attempts, next_recovery_at(state, 904.0, RULES)) == (
            True, 0, None)

    def test_starting_an_attempt_while_trusted_changes_nothing(self) -> None:
        state = LevelState.starting(0.0)
        assert recovery_started(state, 5.0) is state


class TestRecoveryAttempts:
    """The attempts the keeper carries out itself: restart a running, untrusted router."""

    def probes_out(self, at: float) -> LevelState:
        state, _ = feed([fail(at - 2.0), fail(at - 1.0), fail(at)])
        return state

    def test_an_attempt_is_due_for_a_running_router_at_its_time_not_before(self) -> None:
        state = self.probes_out(3.0)
        assert not recovery_due(state, 302.999, RULES)
        assert recovery_due(state, 303.0, RULES)

    def test_after_router_sup_gave_up_root_s_restart_is_the_attempt(self) -> None:
        assert not recovery_due(out_at(0.0), 10_000.0, RULES)

    def test_a_router_that_earns_trust_on_its_own_is_not_restarted(self) -> None:
        state, _ = feed([ok(4.0)], self.probes_out(3.0))
        assert not recovery_due(state, 1000.0, RULES)

    def test_the_old_instance_s_probes_count_for_nothing_until_the_restart(self) -> None:
        state, changes = feed([Attempt(303.0, restart=True), ok(304.0), ok(305.0), ok(306.0),
                               fail(307.0), fail(308.0), fail(309.0)], self.probes_out(3.0))
        assert (state.level, state.healthy, state.attempts, changes) == (N2, 0, 0, [])
        assert not recovery_due(state, 309.0, RULES)  # one is running

    def test_the_fresh_instance_earns_trust_after_the_restart(self) -> None:
        _, changes = feed([Attempt(303.0, restart=True), RouterRestarted(303.2), ok(304.0),
                           ok(305.0), ok(306.0)], self.probes_out(3.0))
        assert changes == [LevelChange(N2, N0, "router healthy for 3 probes in a row", 306.0,
                                       Cause.ROUTER_TRUSTED)]

    def test_a_fresh_instance_failing_fails_the_attempt_and_doubles_the_wait(self) -> None:
        state, _ = feed([Attempt(303.0, restart=True), RouterRestarted(303.2), fail(304.0)],
                        self.probes_out(3.0))
        assert (state.attempts, state.attempt_at, state.out_cause) == (
            1, None, Cause.PROBE_FAILURES)
        assert next_recovery_at(state, 304.0, RULES) == 904.0
        assert recovery_due(state, 904.0, RULES)

    def test_a_restart_that_never_comes_fails_the_attempt_after_one_interval(self) -> None:
        state, _ = feed([Attempt(303.0, restart=True)], self.probes_out(3.0))
        assert next_tick_at(state, RULES) == 603.0
        state, changes = feed([Tick(602.999)], state)
        assert (state.attempt_at, state.awaiting_restart) == (303.0, True)
        state, changes = feed([Tick(603.0)], state)
        assert (state.attempts, state.awaiting_restart, state.failed_at, changes) == (
            1, False, 603.0, [])
        assert "did not restart within 300 s" in state.out_reason

    def test_an_attempt_that_cannot_start_waits_the_same_step_again(self) -> None:
        state = recovery_postponed(self.probes_out(3.0), 303.0)
        assert (state.attempts, next_recovery_at(state, 303.0, RULES)) == (0, 603.0)

    def test_postponing_while_trusted_or_during_an_attempt_changes_nothing(self) -> None:
        trusted = LevelState.starting(0.0)
        assert recovery_postponed(trusted, 5.0) is trusted
        running = recovery_started(self.probes_out(3.0), 303.0, restart=True)
        assert recovery_postponed(running, 304.0) is running

    def test_a_supervisor_restart_of_an_untrusted_router_clears_a_leak(self) -> None:
        out, _ = feed([MemorySample(1.0, 200.0), MemorySample(2.0, 1300.0)])
        state, changes = feed([RouterRestarted(5.0), ok(6.0), ok(7.0), ok(8.0)], out)
        assert moves(changes) == [(N2, N0)]
        assert not state.needs_restart


class TestRootRestartDelay:
    """root's restart of a router_sup that gave up follows the same doubling schedule."""

    def test_the_first_give_up_waits_one_interval_whether_or_not_it_was_taken_in(self) -> None:
        assert root_restart_delay(LevelState.starting(0.0), RULES) == 300.0
        assert root_restart_delay(out_at(5.0), RULES) == 300.0
        assert next_recovery_at(out_at(5.0), 5.0, RULES) == 305.0

    def test_each_failed_root_attempt_doubles_the_wait_taken_in_or_not(self) -> None:
        state = out_at(0.0)
        waits = []
        for n in range(5):
            at = 1000.0 * (n + 1)
            running = recovery_started(state, at)  # root restarted router_sup
            before = root_restart_delay(running, RULES)  # the give-up not taken in yet
            state, _ = feed([RouterGaveUp(at + 1.0)], running)
            assert root_restart_delay(state, RULES) == before
            assert next_recovery_at(state, at + 1.0, RULES) == at + 1.0 + before
            waits.append(before)
        assert waits == [600.0, 1200.0, 2400.0, 3600.0, 3600.0]

    def test_a_give_up_while_out_for_other_reasons_starts_the_wait_there(self) -> None:
        state, _ = feed([fail(1.0), fail(2.0), fail(3.0), RouterGaveUp(100.0)])
        assert next_recovery_at(state, 100.0, RULES) == 400.0
        assert not recovery_due(state, 400.0, RULES)  # root's restart is that attempt


class TestRestHysteresis:
    def test_failing_checks_short_of_the_threshold_stay_at_level_two(self) -> None:
        state, changes = feed(rest_checks(False, 1.0, 2.0), out_at(0.0))
        assert (state.level, state.rest_ok, state.rest_streak, changes) == (N2, True, 2, [])

    def test_a_good_check_between_failing_ones_starts_the_count_again(self) -> None:
        state, changes = feed([*rest_checks(False, 1.0, 2.0), *rest_checks(True, 3.0),
                               *rest_checks(False, 4.0, 5.0)], out_at(0.0))
        assert (state.level, changes) == (N2, [])

    def test_an_unjudged_check_counts_neither_way(self) -> None:
        busy = FallbackHealth(2.5, rest_ok=None, rest_banned_until=None, ws_ok=None)
        _, changes = feed([*rest_checks(False, 1.0, 2.0), busy, *rest_checks(False, 3.0)],
                          out_at(0.0))
        assert moves(changes) == [(N2, N3)]
        assert changes[0].at == 3.0

    def test_level_three_is_left_only_after_rest_successes_good_checks(self) -> None:
        state, changes = feed([*rest_down(3.0), *rest_checks(True, 4.0),
                               *rest_checks(False, 5.0), *rest_checks(True, 6.0)], out_at(0.0))
        assert (state.level, moves(changes)) == (N3, [(N2, N3)])
        _, changes = feed(rest_checks(True, 7.0), state)
        assert moves(changes) == [(N3, N2)]

    def test_a_ban_is_level_three_at_once(self) -> None:
        banned = FallbackHealth(1.0, rest_ok=None, rest_banned_until=60.0, ws_ok=None)
        _, changes = feed([banned], out_at(0.0))
        assert moves(changes) == [(N2, N3)]

    def test_a_confirmed_outage_is_level_three_at_once(self) -> None:
        gone = FallbackHealth(1.0, False, None, False, confirmed=True)
        state, changes = feed([gone], out_at(0.0))
        assert (moves(changes), state.ws_ok) == ([(N2, N3)], False)

    @pytest.mark.parametrize(("field", "value"), [("rest_failures", 0),
                                                  ("rest_successes", 1.5)])
    def test_an_impossible_threshold_names_its_field(self, field: str, value: Any) -> None:
        with pytest.raises(InvalidValue) as caught:
            replace(RULES, **{field: value})
        assert caught.value.field == field


class TestLastResort:
    def test_the_rest_fallback_failing_while_the_router_is_out_is_level_three(self) -> None:
        _, changes = feed(rest_down(5.0), out_at(0.0))
        assert changes == [LevelChange(N2, N3, "fallbacks failing too (REST fallback failing)",
                                       5.0, Cause.FALLBACKS_FAILED)]

    def test_failing_fallbacks_while_the_router_serves_change_nothing(self) -> None:
        state, changes = feed([*rest_down(3.0), fail(4.0, ProbeTarget.WS_FALLBACK)])
        assert (state.level, changes, state.fallbacks_out) == (N0, [], True)

    def test_router_and_fallbacks_failing_together_jump_from_zero_to_three(self) -> None:
        _, changes = feed([*rest_down(0.5), RouterGaveUp(1.0)])
        assert changes == [LevelChange(
            N0, N3, "router supervisor exceeded its restart intensity and gave up; "
            "fallbacks failing too (REST fallback failing)", 1.0, Cause.ROUTER_GAVE_UP)]

    def test_the_websocket_fallback_down_alone_stays_at_level_two(self) -> None:
        state, changes = feed([fail(1.0, ProbeTarget.WS_FALLBACK)], out_at(0.0))
        assert (state.level, changes) == (N2, [])

    def test_the_websocket_fallback_down_too_is_named_in_the_reason(self) -> None:
        _, changes = feed(rest_checks(False, 1.0, 2.0, 3.0, ws_ok=False), out_at(0.0))
        assert changes[0].reason == (
            "fallbacks failing too (REST fallback failing, WebSocket fallback down)")

    def test_a_ban_is_level_three_until_exactly_its_end(self) -> None:
        banned = FallbackHealth(10.0, rest_ok=True, rest_banned_until=60.0, ws_ok=True)
        state, changes = feed([banned, Tick(59.999)], out_at(0.0))
        assert (state.level, changes[0].reason) == (N3, "fallbacks failing too "
                                                    "(REST banned for 50 s)")
        assert next_tick_at(state, RULES) == 60.0
        _, changes = feed([Tick(60.0)], state)
        assert changes == [LevelChange(N3, N2, "REST fallback answering again", 60.0,
                                       Cause.FALLBACKS_RECOVERED)]

    def test_a_rest_fallback_probe_alone_moves_between_two_and_three(self) -> None:
        rest = ProbeTarget.REST_FALLBACK
        _, changes = feed([fail(1.0, rest), fail(2.0, rest), fail(3.0, rest),
                           ok(4.0, rest), ok(5.0, rest)], out_at(0.0))
        assert moves(changes) == [(N2, N3), (N3, N2)]
        assert [change.at for change in changes] == [3.0, 5.0]

    def test_a_router_trusted_again_serves_even_while_the_fallbacks_fail(self) -> None:
        _, changes = feed([*rest_down(0.5), RouterGaveUp(1.0), ok(2.0), ok(3.0), ok(4.0)])
        assert moves(changes) == [(N0, N3), (N3, N0)]


class TestSequences:
    def test_a_restart_climbs_to_one_and_back_down_on_its_own(self) -> None:
        _, changes = feed([ok(1.0), RouterRestarted(2.0), ok(3.0), Tick(7.0)])
        assert moves(changes) == [(N0, N1), (N1, N0)]

    def test_a_crash_loop_falls_back_and_recovers_after_a_proven_attempt(self) -> None:
        _, changes = feed([RouterRestarted(1.0), RouterRestarted(2.0), RouterRestarted(3.0),
                           RouterGaveUp(4.0), Attempt(304.0), ok(305.0), ok(306.0),
                           ok(307.0)])
        assert moves(changes) == [(N0, N1), (N1, N2), (N2, N0)]

    def test_a_backbone_outage_climbs_to_three_and_back_down_step_by_step(self) -> None:
        _, changes = feed([fail(1.0), fail(2.0), fail(3.0), *rest_down(6.0),
                           *rest_checks(True, 100.0, 101.0),
                           ok(301.0), ok(302.0), ok(303.0)])
        assert moves(changes) == [(N0, N2), (N2, N3), (N3, N2), (N2, N0)]
        assert [change.cause for change in changes] == [
            Cause.PROBE_FAILURES, Cause.FALLBACKS_FAILED, Cause.FALLBACKS_RECOVERED,
            Cause.ROUTER_TRUSTED]

    def test_an_observation_from_the_past_is_taken_at_the_latest_time_seen(self) -> None:
        state, changes = feed([ok(100.0), RouterHung(50.0)])
        assert (state.now, changes[0].at, state.last_success_at) == (100.0, 100.0, 100.0)


class TestRules:
    @pytest.mark.parametrize(("field", "value"), [
        ("failure_threshold", 0), ("failure_threshold", 2.5), ("no_success_timeout", 0.0),
        ("recovery_successes", 0), ("memory_limit_mb", -1.0), ("intensity", -1),
        ("period", float("nan")), ("recovery", 300.0),
    ])
    def test_an_impossible_value_names_its_field(self, field: str, value: Any) -> None:
        with pytest.raises(InvalidValue) as caught:
            replace(RULES, **{field: value})
        assert caught.value.field == field


# --- properties over any sequence ------------------------------------------------------------

def _event_at(at: float) -> st.SearchStrategy[Event]:
    return st.one_of(
        st.builds(ProbeResult, st.just(at), st.booleans(), st.sampled_from(ProbeTarget)),
        st.sampled_from([RouterRestarted(at), RouterGaveUp(at), RouterStartFailed(at),
                         RouterHung(at), Tick(at), Attempt(at), Attempt(at, restart=True)]),
        st.builds(ChannelDegraded, st.just(at), st.sampled_from(Channel), st.booleans()),
        st.builds(MemorySample, st.just(at), st.floats(0.0, 4000.0)),
        st.builds(FallbackHealth, st.just(at), st.one_of(st.none(), st.booleans()),
                  st.one_of(st.none(), st.floats(at, at + 120.0)),
                  st.one_of(st.none(), st.booleans()), st.booleans()),
    )


@st.composite
def scripts(draw: st.DrawFn) -> list[Event]:
    gaps = draw(st.lists(st.floats(0.0, 200.0), max_size=40))
    return [draw(_event_at(at)) for at in itertools.accumulate(gaps)]


@given(scripts())
def test_every_change_moves_the_level_with_a_reason_and_a_cause(script: list[Event]) -> None:
    state, changes = feed(script)
    level = N0
    for change in changes:
        assert change.old == level != change.new
        assert change.reason != ""
        assert change.cause is not None
        level = change.new
    assert level == state.level == classify(state)


@given(scripts())
def test_replaying_the_same_observations_gives_the_same_changes(script: list[Event]) -> None:
    assert feed(script) == feed(script)


@given(scripts(), st.floats(0.0, 200.0))
def test_ticking_before_an_observation_never_changes_where_it_leads(
    script: list[Event], gap: float
) -> None:
    state, _ = feed(script)
    observation = RouterRestarted(state.now + gap)
    direct, _ = step(state, observation, RULES)
    ticked, _ = tick(state, observation.at, RULES)
    assert step(ticked, observation, RULES)[0] == direct
    assert tick(ticked, observation.at, RULES) == (ticked, None)


@given(st.lists(st.booleans(), max_size=60), st.integers(1, 5))
def test_the_router_is_never_trusted_again_more_often_than_its_healthy_probes_allow(
    probes: list[bool], successes: int
) -> None:
    rules = replace(RULES, recovery_successes=successes)
    state, _ = feed([RouterGaveUp(0.0)], rules=rules)
    _, changes = feed([ProbeResult(float(t), ok) for t, ok in enumerate(probes, 1)], state,
                      rules)
    comebacks = [c for c in changes if c.old >= N2 > c.new]
    assert len(comebacks) <= sum(probes) // successes
    for change in comebacks:  # each one earned by `successes` healthy probes just before it
        index = int(change.at) - 1
        assert all(probes[index - successes + 1:index + 1])


@given(st.lists(st.one_of(st.booleans(), st.floats(0.0, 4000.0)), max_size=60))
def test_a_router_out_for_memory_growth_is_never_trusted_without_a_fresh_instance(
    script: list[bool | float]
) -> None:
    out, _ = feed([MemorySample(0.0, 100.0), MemorySample(0.5, 2000.0)])
    events: list[Event] = [ProbeResult(float(t), item) if isinstance(item, bool)
                           else MemorySample(float(t), item)
                           for t, item in enumerate(script, 1)]
    state, changes = feed(events, out)
    assert (state.trusted, changes) == (False, [])
