"""The router circuit breaker's rule (lifeline.breaker), on plain numbers for ``now``."""

from __future__ import annotations

import pytest

from lifeline.breaker import (
    CAP_INTERVALS,
    TRIP_AFTER,
    BreakerState,
    BreakerView,
    Route,
    RouterBreaker,
)
from lifeline.settings import FallbackSettings
from quotation.backoff import Backoff
from quotation.errors import InvalidValue

pytestmark = pytest.mark.timeout(10)


def breaker(probe_interval: float = 1.0) -> RouterBreaker:
    return RouterBreaker.from_settings(FallbackSettings(probe_interval=probe_interval,
                                                        recovery_interval=300.0))


def opened(at: float = 10.0) -> RouterBreaker:
    b = breaker()
    for _ in range(TRIP_AFTER):
        assert b.route(at) is Route.ROUTER
        b.failure(at)
    return b


def test_the_defaults_are_two_failures_and_one_probe_interval_doubling_to_eight() -> None:
    assert TRIP_AFTER == 2
    assert CAP_INTERVALS == 8
    b = breaker(probe_interval=0.5)
    assert b.trip_after == 2
    b.failure(0.0)
    b.failure(0.0)
    assert b.view(0.0).open_until == 0.5


def test_a_new_breaker_is_closed_and_sends_every_request_to_the_router() -> None:
    b = breaker()
    assert b.view(0.0) == BreakerView(BreakerState.CLOSED, 0, None)
    assert all(b.route(float(t)) is Route.ROUTER for t in range(100))


def test_one_failure_does_not_open_it_and_a_success_forgets_it() -> None:
    b = breaker()
    b.failure(1.0)
    assert b.view(1.0) == BreakerView(BreakerState.CLOSED, 1, None)
    assert b.route(1.0) is Route.ROUTER
    b.success(1.1)
    b.failure(1.2)
    assert b.route(1.2) is Route.ROUTER  # not two in a row
    assert b.view(1.2).failures == 1


def test_two_failures_in_a_row_open_it_for_one_probe_interval() -> None:
    b = opened(at=10.0)
    assert b.view(10.0) == BreakerView(BreakerState.OPEN, 2, 11.0)
    assert b.route(10.0) is Route.REST
    assert b.route(10.999) is Route.REST
    assert b.view(10.999).state is BreakerState.OPEN


def test_after_the_cooldown_exactly_one_request_is_the_trial() -> None:
    b = opened(at=10.0)
    assert b.view(11.0).state is BreakerState.HALF_OPEN
    assert b.route(11.0) is Route.TRIAL
    assert b.route(11.0) is Route.REST  # the trial is in flight: the others skip the router
    assert b.route(11.5) is Route.REST
    assert b.view(11.5).state is BreakerState.HALF_OPEN


def test_a_successful_trial_closes_it() -> None:
    b = opened(at=10.0)
    assert b.route(11.0) is Route.TRIAL
    b.success(11.1, trial=True)
    assert b.view(11.1) == BreakerView(BreakerState.CLOSED, 0, None)
    assert b.route(11.1) is Route.ROUTER


def test_a_failed_trial_reopens_it_for_twice_as_long_doubling_to_the_cap() -> None:
    b = opened(at=10.0)
    now, waits = 11.0, []
    for _ in range(6):
        assert b.route(now) is Route.TRIAL
        b.failure(now, trial=True)
        until = b.view(now).open_until
        assert until is not None
        waits.append(until - now)
        assert b.route(until - 0.001) is Route.REST
        now = until
    assert waits == [2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    assert b.view(now).failures == 2 + 6


def test_after_a_success_the_cooldown_starts_again_from_one_interval() -> None:
    b = opened(at=10.0)
    assert b.route(11.0) is Route.TRIAL
    b.failure(11.0, trial=True)  # open until 13
    assert b.route(13.0) is Route.TRIAL
    b.success(13.0, trial=True)
    b.failure(20.0)
    b.failure(20.0)
    assert b.view(20.0).open_until == 21.0


def test_an_invalid_request_trial_says_nothing_and_the_next_request_tries() -> None:
    b = opened(at=10.0)
    assert b.route(11.0) is Route.TRIAL
    b.neutral(11.0, trial=True)
    assert b.view(11.0).state is BreakerState.HALF_OPEN
    assert b.route(11.0) is Route.TRIAL


def test_an_invalid_request_while_closed_counts_for_nothing() -> None:
    b = breaker()
    b.failure(0.0)
    b.neutral(0.0)
    assert b.view(0.0).failures == 1
    assert b.route(0.0) is Route.ROUTER


def test_late_failures_of_requests_admitted_while_closed_do_not_extend_it() -> None:
    b = opened(at=10.0)
    b.failure(10.5)  # asked before it opened, failed after
    assert b.view(10.5) == BreakerView(BreakerState.OPEN, 2, 11.0)
    assert b.route(11.0) is Route.TRIAL
    b.failure(11.0)  # another late one: the trial decides, not it
    assert b.view(11.0).state is BreakerState.HALF_OPEN


def test_a_late_success_closes_it_whatever_its_state() -> None:
    b = opened(at=10.0)
    b.success(10.5)
    assert b.route(10.5) is Route.ROUTER
    assert b.view(10.5) == BreakerView(BreakerState.CLOSED, 0, None)


def test_a_trial_failure_after_a_late_success_closed_it_is_ignored() -> None:
    b = opened(at=10.0)
    assert b.route(11.0) is Route.TRIAL
    b.success(11.0)
    b.failure(11.1, trial=True)
    assert b.view(11.1) == BreakerView(BreakerState.CLOSED, 0, None)


def test_reset_closes_it_as_new() -> None:
    b = opened(at=10.0)
    b.reset()
    assert b.view(10.0) == BreakerView(BreakerState.CLOSED, 0, None)
    assert b.route(10.0) is Route.ROUTER


def test_its_view_dumps_as_json_values() -> None:
    assert opened(at=10.0).view(10.0).to_dict() == {
        "state": "open", "failures": 2, "open_until": 11.0}
    assert breaker().view(0.0).to_dict() == {
        "state": "closed", "failures": 0, "open_until": None}


def test_trip_after_below_one_is_refused_naming_it() -> None:
    with pytest.raises(InvalidValue, match="trip_after"):
        RouterBreaker(backoff=Backoff(initial=1.0, cap=8.0), trip_after=0)
