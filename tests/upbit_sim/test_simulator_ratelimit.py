"""The simulator's Upbit-like limit: a sliding window per group, 429, then growing 418 bans."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import requests

from quotation.errors import InvalidValue
from tests.fakes import ManualClock
from upbit_sim import RateLimitPolicy, ServerRateLimiter, Simulator, Verdict

pytestmark = pytest.mark.timeout(30)

POLICY = RateLimitPolicy(per_second=3, window=1.0, ban_after=2, ban_window=10.0, ban_seconds=5.0)




# -- the decision, with plain numbers -------------------------------------------------------


def test_window_allows_per_second_requests_then_refuses() -> None:
    limiter = ServerRateLimiter(POLICY)
    remaining = [limiter.check("ip", "ticker", 0.0).remaining for _ in range(3)]
    assert remaining == [2, 1, 0]
    assert limiter.check("ip", "ticker", 0.5).verdict is Verdict.LIMITED


def test_window_slides_so_the_oldest_request_frees_a_slot() -> None:
    limiter = ServerRateLimiter(RateLimitPolicy(per_second=3, ban_after=100))
    for now in (0.0, 0.4, 0.8):
        assert limiter.check("ip", "ticker", now).verdict is Verdict.ALLOW
    assert limiter.check("ip", "ticker", 0.99).verdict is Verdict.LIMITED
    assert limiter.check("ip", "ticker", 1.0).verdict is Verdict.ALLOW
    assert limiter.check("ip", "ticker", 1.1).verdict is Verdict.LIMITED


def test_refused_requests_do_not_use_the_budget() -> None:
    limiter = ServerRateLimiter(RateLimitPolicy(per_second=1, ban_after=100))
    assert limiter.check("ip", "ticker", 0.0).verdict is Verdict.ALLOW
    for now in (0.1, 0.5, 0.9):
        assert limiter.check("ip", "ticker", now).verdict is Verdict.LIMITED
    assert limiter.check("ip", "ticker", 1.0).verdict is Verdict.ALLOW


def test_groups_and_clients_have_separate_budgets() -> None:
    limiter = ServerRateLimiter(RateLimitPolicy(per_second=1, ban_after=100))
    assert limiter.check("a", "ticker", 0.0).verdict is Verdict.ALLOW
    assert limiter.check("a", "candles", 0.0).verdict is Verdict.ALLOW
    assert limiter.check("b", "ticker", 0.0).verdict is Verdict.ALLOW
    assert limiter.check("a", "ticker", 0.0).verdict is Verdict.LIMITED


def test_repeated_refusals_ban_the_client_from_every_group() -> None:
    limiter = ServerRateLimiter(POLICY)
    for _ in range(3):
        limiter.check("ip", "ticker", 0.0)
    assert limiter.check("ip", "ticker", 0.1).verdict is Verdict.LIMITED
    banned = limiter.check("ip", "ticker", 0.2)
    assert banned.verdict is Verdict.BANNED
    assert banned.ban_seconds == 5.0
    assert limiter.check("ip", "orderbook", 3.0).verdict is Verdict.BANNED
    assert limiter.check("ip", "orderbook", 3.0).ban_whole_seconds == 3
    assert limiter.check("other", "ticker", 3.0).verdict is Verdict.ALLOW
    assert limiter.check("ip", "orderbook", 5.2).verdict is Verdict.ALLOW
    # counted as answered: one 429 (the 4th), three 418s (the ban and two while banned)
    assert (limiter.refused_429, limiter.refused_418) == (1, 3)


def test_each_further_ban_is_longer_up_to_the_cap() -> None:
    policy = RateLimitPolicy(
        per_second=1, ban_after=1, ban_seconds=2.0, ban_growth=3.0, ban_max_seconds=10.0
    )
    limiter = ServerRateLimiter(policy)
    now = 0.0
    durations = []
    for _ in range(4):
        assert limiter.check("ip", "ticker", now).verdict is Verdict.ALLOW
        decision = limiter.check("ip", "ticker", now)
        assert decision.verdict is Verdict.BANNED
        durations.append(decision.ban_seconds)
        now += decision.ban_seconds + 1.0
    assert durations == [2.0, 6.0, 10.0, 10.0]


def test_reset_forgets_windows_and_bans() -> None:
    limiter = ServerRateLimiter(RateLimitPolicy(per_second=1, ban_after=1))
    limiter.check("ip", "ticker", 0.0)
    assert limiter.check("ip", "ticker", 0.0).verdict is Verdict.BANNED
    limiter.reset()
    assert (limiter.refused_429, limiter.refused_418) == (0, 0)
    assert limiter.check("ip", "ticker", 0.0).verdict is Verdict.ALLOW


@pytest.mark.parametrize(
    "kwargs",
    [{"per_second": 0}, {"window": 0}, {"ban_after": 0}, {"ban_seconds": -1}, {"ban_growth": 0.5},
     {"ban_window": math.inf}, {"ban_max_seconds": math.nan}],
)
def test_impossible_policies_are_refused_naming_the_field(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidValue) as caught:
        RateLimitPolicy(**kwargs)
    [(field, value)] = kwargs.items()
    assert caught.value.field == field
    assert caught.value.value is value


# -- over HTTP ------------------------------------------------------------------------------


@pytest.fixture
def limited(sim_factory: Callable[..., Simulator]) -> tuple[Simulator, ManualClock]:
    clock = ManualClock()
    return sim_factory(seed=1, clock=clock, auto_trade=False, rate_limit=POLICY), clock


def ticker(sim: Simulator) -> requests.Response:
    return requests.get(f"{sim.base_url}/ticker", params={"markets": "KRW-BTC"}, timeout=10)


def test_over_the_limit_the_server_answers_429_in_plain_text(
    limited: tuple[Simulator, ManualClock],
) -> None:
    sim, _ = limited
    statuses = [ticker(sim).status_code for _ in range(3)]
    refused = ticker(sim)
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.text == "Too many API requests."
    assert refused.headers["Content-Type"].startswith("text/plain")
    assert refused.headers["Remaining-Req"] == "group=ticker; min=600; sec=0"


def test_repeated_violation_is_banned_with_418_and_a_growing_duration(
    limited: tuple[Simulator, ManualClock],
) -> None:
    sim, clock = limited
    for _ in range(3):
        ticker(sim)
    assert ticker(sim).status_code == 429
    banned = ticker(sim)
    assert banned.status_code == 418
    assert banned.json() == {
        "error": {"name": 418, "message": "Too many requests. Blocked for 5 seconds."}
    }
    other_group = requests.get(f"{sim.base_url}/market/all", timeout=10)
    assert other_group.status_code == 418
    clock.advance(5.0)
    assert ticker(sim).status_code == 200
    for _ in range(2):
        ticker(sim)
    assert ticker(sim).status_code == 429
    again = ticker(sim)
    assert again.status_code == 418
    assert "Blocked for 10 seconds" in again.json()["error"]["message"]


def test_the_window_frees_again_as_time_passes(limited: tuple[Simulator, ManualClock]) -> None:
    sim, clock = limited
    for _ in range(3):
        assert ticker(sim).status_code == 200
    assert ticker(sim).status_code == 429
    clock.advance(1.0)
    assert ticker(sim).status_code == 200


def test_sim_control_routes_are_never_rate_limited(sim_factory: Callable[..., Simulator]) -> None:
    sim = sim_factory(
        seed=1,
        clock=ManualClock(),
        auto_trade=False,
        rate_limit=RateLimitPolicy(per_second=1, ban_after=1),
    )
    statuses = {
        requests.get(f"{sim.control_url}/faults", timeout=10).status_code for _ in range(20)
    }
    assert statuses == {200}


def test_rate_limit_reset_over_http_lifts_a_ban(limited: tuple[Simulator, ManualClock]) -> None:
    sim, _ = limited
    for _ in range(5):
        ticker(sim)
    assert ticker(sim).status_code == 418
    assert requests.post(f"{sim.control_url}/ratelimit/reset", timeout=10).status_code == 200
    assert ticker(sim).status_code == 200


def test_rate_limit_can_be_switched_off(sim_factory: Callable[..., Simulator]) -> None:
    sim = sim_factory(seed=1, clock=ManualClock(), auto_trade=False, rate_limit=None)
    assert {ticker(sim).status_code for _ in range(30)} == {200}
