"""Rule: the pure decisions (restart intensity window, restart types, strategies, hang) give
OTP's answers for plain numbers. The restart delay is ``quotation.backoff.Backoff``, tested in
``tests/quotation/test_backoff.py``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisors import ExitKind, ExitReason, Restart, Strategy
from supervisors.rules import add_restart, is_hung, restart_group, should_restart

times = st.floats(min_value=0, max_value=1_000, allow_nan=False)
periods = st.floats(min_value=0.001, max_value=100, allow_nan=False)
intensities = st.integers(min_value=0, max_value=20)


def _replay(
    at: list[float], intensity: int, period: float
) -> tuple[int | None, tuple[float, ...]]:
    """Feed restarts in order; return the index of the one that exceeded (if any)."""
    history: tuple[float, ...] = ()
    for index, now in enumerate(at):
        check = add_restart(history, now, intensity=intensity, period=period)
        history = check.restarts
        if check.exceeded:
            return index, history
    return None, history


class TestIntensityWindow:
    def test_one_restart_is_within_the_default_intensity_of_one(self) -> None:
        assert add_restart((), 10.0, intensity=1, period=5.0) == ((10.0,), False)

    def test_a_second_restart_within_the_period_exceeds_intensity_one(self) -> None:
        assert add_restart((10.0,), 14.9, intensity=1, period=5.0).exceeded

    def test_a_restart_exactly_period_ago_still_counts_as_in_otp(self) -> None:
        assert add_restart((10.0,), 15.0, intensity=1, period=5.0) == ((10.0, 15.0), True)

    def test_a_restart_just_over_period_ago_has_left_the_window(self) -> None:
        assert add_restart((10.0,), 15.001, intensity=1, period=5.0) == ((15.001,), False)

    def test_intensity_zero_gives_up_on_the_first_restart(self) -> None:
        assert add_restart((), 0.0, intensity=0, period=5.0).exceeded

    @given(st.lists(times, max_size=30), times, intensities, periods)
    def test_exceeded_means_more_than_intensity_restarts_within_the_closed_window(
        self, history: list[float], now: float, intensity: int, period: float
    ) -> None:
        past = tuple(sorted(at for at in history if at <= now))
        check = add_restart(past, now, intensity=intensity, period=period)
        in_window = [at for at in (*past, now) if now - period <= at <= now]
        assert check.exceeded == (len(in_window) > intensity)
        assert check.restarts == tuple(in_window)

    @given(st.lists(times, max_size=30), times, intensities, periods)
    def test_the_kept_history_ends_with_now_and_holds_nothing_older_than_the_period(
        self, history: list[float], now: float, intensity: int, period: float
    ) -> None:
        past = tuple(sorted(at for at in history if at <= now))
        kept = add_restart(past, now, intensity=intensity, period=period).restarts
        assert kept[-1] == now
        assert all(at >= now - period for at in kept)

    @given(st.lists(st.floats(min_value=0.0011, max_value=50), min_size=1, max_size=40),
           st.integers(min_value=1, max_value=5), periods)
    def test_restarts_spaced_more_than_a_period_apart_never_exceed(
        self, gaps: list[float], intensity: int, period: float
    ) -> None:
        at, now = [], 0.0
        for gap in gaps:
            now += period + gap
            at.append(now)
        assert _replay(at, intensity, period)[0] is None

    @given(st.lists(st.floats(min_value=0, max_value=10), min_size=1, max_size=40),
           intensities, periods)
    def test_replayed_restarts_exceed_at_the_first_window_with_too_many(
        self, gaps: list[float], intensity: int, period: float
    ) -> None:
        at, now = [], 0.0
        for gap in gaps:
            now += gap
            at.append(now)
        expected = next(
            (i for i, t in enumerate(at)
             if sum(1 for s in at[: i + 1] if t - period <= s) > intensity),
            None,
        )
        assert _replay(at, intensity, period)[0] == expected


class TestRestartTypes:
    @pytest.mark.parametrize("kind", list(ExitKind))
    def test_a_permanent_child_is_always_restarted(self, kind: ExitKind) -> None:
        assert should_restart(Restart.PERMANENT, ExitReason(kind))

    @pytest.mark.parametrize("kind", list(ExitKind))
    def test_a_transient_child_is_restarted_only_after_an_abnormal_exit(
        self, kind: ExitKind
    ) -> None:
        expected = kind not in (ExitKind.NORMAL, ExitKind.SHUTDOWN)
        assert should_restart(Restart.TRANSIENT, ExitReason(kind)) is expected

    @pytest.mark.parametrize("kind", list(ExitKind))
    def test_a_temporary_child_is_never_restarted(self, kind: ExitKind) -> None:
        assert not should_restart(Restart.TEMPORARY, ExitReason(kind))


class TestStrategies:
    ids = ("a", "b", "c", "d")

    def test_one_for_one_restarts_only_the_failed_child(self) -> None:
        assert restart_group(Strategy.ONE_FOR_ONE, self.ids, "b") == ("b",)

    def test_one_for_all_restarts_every_child_in_start_order(self) -> None:
        assert restart_group(Strategy.ONE_FOR_ALL, self.ids, "c") == self.ids

    def test_rest_for_one_restarts_the_failed_child_and_those_started_after_it(self) -> None:
        assert restart_group(Strategy.REST_FOR_ONE, self.ids, "b") == ("b", "c", "d")


class TestHang:
    def test_a_ping_unanswered_just_before_its_deadline_comes_is_not_yet_a_hang(self) -> None:
        assert not is_hung(10.0, 12.0 - 2.0**-10, 2.0)

    def test_a_ping_still_unanswered_when_its_deadline_comes_is_a_hang(self) -> None:
        assert is_hung(10.0, 12.0, 2.0)

    def test_a_ping_unanswered_past_the_deadline_is_a_hang(self) -> None:
        assert is_hung(10.0, 12.001, 2.0)
