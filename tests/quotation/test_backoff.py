"""The one backoff policy: exact ceilings, the three jitter modes, validation, and the three
callers' defaults giving the same waits as the formulas they replaced."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quotation.backoff import RESTART_BACKOFF, Backoff, Jitter
from quotation.errors import InvalidValue
from quotation.rest.ratelimit import RATE_LIMIT_BACKOFF
from quotation.websocket.config import RECONNECT_BACKOFF

pytestmark = pytest.mark.timeout(30)


class TestCeiling:
    def test_ceilings_double_from_initial_up_to_the_cap(self) -> None:
        backoff = Backoff(initial=1.0, multiplier=2.0, cap=30.0)
        ceilings = [backoff.ceiling(n) for n in range(1, 8)]
        assert ceilings == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]

    def test_any_multiplier_grows_the_same_way(self) -> None:
        backoff = Backoff(initial=0.5, multiplier=3.0, cap=10.0)
        assert [backoff.ceiling(n) for n in range(1, 5)] == [0.5, 1.5, 4.5, 10.0]

    def test_attempt_zero_or_less_waits_nothing(self) -> None:
        backoff = Backoff(initial=1.0, cap=30.0, jitter=Jitter.SPREAD, spread=0.5)
        assert [backoff.delay(n, 0.99) for n in (0, -1)] == [0.0, 0.0]

    def test_a_huge_attempt_count_stays_at_the_cap(self) -> None:
        assert Backoff(initial=0.5, cap=4.0).delay(10_000) == 4.0
        assert Backoff(initial=1e-300, multiplier=1e300, cap=1.0).ceiling(10**9) == 1.0

    def test_a_multiplier_of_one_keeps_every_ceiling_at_initial(self) -> None:
        backoff = Backoff(initial=0.25, multiplier=1.0, cap=0.25)
        assert {backoff.ceiling(n) for n in (1, 2, 1000)} == {0.25}


class TestJitter:
    def test_no_jitter_is_exactly_the_ceiling_whatever_the_draw(self) -> None:
        backoff = Backoff(initial=1.0, cap=30.0)
        assert [backoff.delay(3, draw) for draw in (0.0, 0.5, 0.99)] == [4.0, 4.0, 4.0]

    def test_full_jitter_is_the_draw_times_the_ceiling(self) -> None:
        backoff = Backoff(initial=1.0, multiplier=3.0, cap=100.0, jitter=Jitter.FULL)
        assert backoff.delay(3, 0.5) == pytest.approx(4.5)
        assert backoff.delay(3, 0.0) == 0.0
        assert backoff.delay(3, 1.7) == pytest.approx(9.0)  # a draw is clamped to [0, 1]

    def test_spread_with_a_draw_of_one_half_adds_nothing(self) -> None:
        backoff = Backoff(initial=1.0, cap=10.0, jitter=Jitter.SPREAD, spread=0.5)
        assert backoff.delay(2, 0.5) == 2.0

    def test_spread_moves_the_ceiling_by_its_fraction_and_never_past_the_cap(self) -> None:
        backoff = Backoff(initial=2.0, cap=10.0, jitter=Jitter.SPREAD, spread=0.25)
        assert backoff.delay(1, 1.0) == 2.5
        assert backoff.delay(1, 0.0) == 1.5
        assert backoff.delay(4, 1.0) == 10.0  # 10 * 1.25, kept at the cap

    @given(st.integers(min_value=1, max_value=200), st.floats(min_value=0, max_value=0.999),
           st.floats(min_value=0, max_value=1))
    def test_spread_stays_within_its_fraction_and_never_exceeds_the_cap(
        self, attempt: int, draw: float, spread: float
    ) -> None:
        backoff = Backoff(initial=0.1, cap=5.0, jitter=Jitter.SPREAD, spread=spread)
        ceiling = backoff.ceiling(attempt)
        delay = backoff.delay(attempt, draw)
        assert 0.0 <= delay <= backoff.cap
        assert ceiling * (1 - spread) - 1e-9 <= delay <= ceiling * (1 + spread) + 1e-9

    @given(st.integers(min_value=1, max_value=200), st.floats(min_value=0, max_value=0.999))
    def test_full_jitter_stays_below_the_ceiling(self, attempt: int, draw: float) -> None:
        backoff = Backoff(initial=0.1, cap=5.0, jitter=Jitter.FULL)
        assert 0.0 <= backoff.delay(attempt, draw) < backoff.ceiling(attempt)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"initial": 0}, "initial"),
        ({"initial": -1.0}, "initial"),
        ({"initial": math.nan}, "initial"),
        ({"multiplier": 0.5}, "multiplier"),
        ({"multiplier": math.inf}, "multiplier"),
        ({"initial": 2.0, "cap": 1.0}, "cap"),
        ({"cap": math.inf}, "cap"),
        ({"jitter": "full"}, "jitter"),
        ({"jitter": Jitter.SPREAD, "spread": 1.5}, "spread"),
        ({"jitter": Jitter.SPREAD, "spread": -0.1}, "spread"),
        ({"jitter": Jitter.FULL, "spread": 0.1}, "spread"),
    ],
)
def test_an_impossible_policy_is_refused_naming_the_field(
    kwargs: dict[str, object], field: str
) -> None:
    fields: dict[str, object] = {"initial": 1.0, "cap": 30.0, **kwargs}
    with pytest.raises(InvalidValue) as caught:
        Backoff(**fields)  # type: ignore[arg-type]
    assert caught.value.field == field


# The formulas the one Backoff replaced, written out as they were, as the reference.


def old_rest_pause(failures: int, base: float = 1.0, factor: float = 2.0,
                   cap: float = 30.0) -> float:
    """quotation.backoff.Backoff().delay(failures) before: 1-based, 0 → no pause."""
    if failures <= 0:
        return 0.0
    return min(cap, base * factor ** (failures - 1))


def old_reconnect_wait(failures: int, draw: float, initial: float = 0.5,
                       multiplier: float = 2.0, cap: float = 30.0) -> float:
    """quotation.websocket.backoff.backoff_delay(BackoffPolicy(), failures, random)."""
    return min(max(draw, 0.0), 1.0) * min(cap, initial * multiplier**failures)


def old_restart_delay(attempt: int, draw: float, low: float = 0.1, high: float = 30.0,
                      jitter: float = 0.1) -> float:
    """supervisors.rules.backoff_delay(supervisors.Backoff(), attempt, draw)."""
    exponent = min(max(attempt, 1) - 1, 64)
    base = min(high, low * 2.0**exponent)
    spread = base * jitter * (2.0 * draw - 1.0)
    return min(high, max(0.0, base + spread))


ATTEMPTS = (1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 20, 64, 65, 1000)
DRAWS = (0.0, 0.01, 0.25, 0.5, 0.731, 0.9, 0.999999)


def test_the_rest_429_pause_is_what_it_was_for_every_failure_count() -> None:
    assert RATE_LIMIT_BACKOFF.delay(0) == 0.0
    for failures in ATTEMPTS:
        for draw in DRAWS:
            assert RATE_LIMIT_BACKOFF.delay(failures, draw) == old_rest_pause(failures)


def test_the_websocket_reconnect_wait_is_what_it_was_after_n_failures() -> None:
    for failures in (0, *ATTEMPTS):  # 0-based before: attempt failures + 1 now
        for draw in DRAWS:
            assert (RECONNECT_BACKOFF.delay(failures + 1, draw)
                    == old_reconnect_wait(failures, draw))


def test_the_supervisor_restart_delay_is_what_it_was_for_every_restart_count() -> None:
    for attempt in ATTEMPTS:
        for draw in DRAWS:
            assert RESTART_BACKOFF.delay(attempt, draw) == old_restart_delay(attempt, draw)


def test_the_supervisor_tests_old_policies_give_the_same_waits() -> None:
    # supervisors.Backoff(min, max, jitter) → Backoff(initial=min, cap=max, SPREAD, jitter).
    for low, high, jitter in ((0.5, 1.5, 0.0), (2.0, 10.0, 0.25), (0.5, 3.0, 0.0),
                              (1.0, 10.0, 0.5), (10.0, 10.0, 0.0), (1.0, 1.0, 0.0)):
        backoff = Backoff(initial=low, cap=high, jitter=Jitter.SPREAD, spread=jitter)
        for attempt in ATTEMPTS:
            for draw in (*DRAWS, 1.0):
                assert backoff.delay(attempt, draw) == old_restart_delay(
                    attempt, draw, low, high, jitter)
