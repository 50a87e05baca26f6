"""Demand counts reads from the cache (pure, plain numbers): a subscribed market the host reads
only from the board stays past ``cold_after``; one nobody asks for or reads is dropped."""

from __future__ import annotations

import pytest

from actors.routing import Demand, RoutingRules

pytestmark = pytest.mark.timeout(30)

RULES = RoutingRules(hot_threshold=2, hot_window=10.0, cold_after=300.0)


def hot(*markets: str) -> Demand:
    demand = Demand(RULES)
    for at in (0.0, 1.0):
        demand.record(markets, at)
    assert set(demand.hot_markets(1.0)) == set(markets)
    return demand


def test_a_market_read_within_cold_after_stays_and_one_nobody_reads_is_dropped() -> None:
    demand = hot("A", "B")
    reads = {"A": 250.0}
    assert demand.hot_markets(301.0 - 0.5, reads) == ("A", "B")  # both within 300 s
    assert demand.hot_markets(302.0, reads) == ("A",)  # B: 301 s since its last request
    assert demand.hot_markets(549.0, reads) == ("A",)  # A: read 299 s ago
    assert demand.hot_markets(550.0, reads) == ()  # A: 300 s since its last read


def test_a_later_read_keeps_a_market_for_another_cold_after() -> None:
    demand = hot("A")
    reads: dict[str, float] = {}
    for now in range(100, 1_000, 100):
        reads["A"] = float(now)
        assert demand.hot_markets(now + 299.0, reads) == ("A",)


def test_a_read_of_a_market_not_subscribed_does_not_subscribe_it() -> None:
    demand = hot("A")
    assert demand.hot_markets(2.0, {"Z": 2.0}) == ("A",)
    assert demand.hot_markets(400.0, {"Z": 399.0}) == ()


def test_without_reads_the_rule_is_unchanged() -> None:
    demand = hot("A")
    assert demand.hot_markets(300.0) == ("A",)
    assert demand.hot_markets(301.5) == ()
