"""The Prometheus collector (``lifeline.metrics``): its help texts say what it counts, the
level counters never go down once the keeper's record of changes drops old ones, and data
ages are labelled by market and kind (live data only)."""

from __future__ import annotations

from typing import cast

import pytest
from prometheus_client.core import Metric

from lifeline.levels import Level, LevelChange
from lifeline.metrics import SystemCollector
from lifeline.request_stats import RequestStats
from lifeline.system import MarketDataSystem, SystemStatus
from quotation.websocket import WebSocketStatus

pytestmark = pytest.mark.timeout(30)

N0, N1, N2, N3 = Level.NORMAL, Level.DEGRADED, Level.FALLBACK, Level.LAST_RESORT


class StatusOnly:
    """The part of ``MarketDataSystem`` the collector reads, answering a given status."""

    def __init__(self, status: SystemStatus) -> None:
        self._status = status
        self.request_stats = RequestStats()

    def status(self) -> SystemStatus:
        return self._status

    def websocket_status(self, timeout: float) -> dict[str, WebSocketStatus | None]:
        return {"smart_router": None, "ws_fallback": None}


def collect(status: SystemStatus) -> dict[str, Metric]:
    collector = SystemCollector(cast("MarketDataSystem", StatusOnly(status)))
    return {metric.name: metric for metric in collector.collect()}


def samples(metric: Metric) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for s in metric.samples}


def test_the_recovery_attempts_help_names_the_keepers_restarts_of_the_router() -> None:
    """Fails before: the help said only "root restarting router_sup, tree rebuilds"."""
    metric = collect(SystemStatus(N0, "local", True, (), recovery_attempts=4))[
        "lifeline_recovery_attempts"]
    assert "level keeper restarting a running but untrusted router" in metric.documentation
    assert "root restarting router_sup" in metric.documentation
    assert "tree rebuilds" in metric.documentation
    assert samples(metric) == {(): 4.0}


def test_level_counters_count_since_start_not_only_the_changes_still_kept() -> None:
    """Fails before: counted from ``status.changes`` (the latest 1,000 only), so past 1,000
    changes the counters stopped growing and could go down."""
    kept = tuple(LevelChange(N0, N2, "out", float(n)) if n % 2 == 0
                 else LevelChange(N2, N0, "back", float(n)) for n in range(1000))
    status = SystemStatus(N0, "local", True, (), changes=kept, changes_total=3000,
                          change_pairs={(N0, N2): 1400, (N2, N0): 1400, (N2, N3): 100,
                                        (N3, N2): 100})
    metrics = collect(status)
    changes = samples(metrics["lifeline_level_changes"])
    assert changes[(("from", "0"), ("to", "2"))] == 1400.0
    assert changes[(("from", "2"), ("to", "3"))] == 100.0
    assert sum(changes.values()) == 3000.0
    assert samples(metrics["lifeline_fallback_activations"]) == {(): 1400.0}


def test_without_counts_the_changes_held_are_counted() -> None:
    status = SystemStatus(N0, "local", True, (), changes=(
        LevelChange(N0, N1, "restart", 1.0), LevelChange(N1, N3, "outage", 2.0)))
    metrics = collect(status)
    assert samples(metrics["lifeline_level_changes"]) == {
        (("from", "0"), ("to", "1")): 1.0, (("from", "1"), ("to", "3")): 1.0}
    assert samples(metrics["lifeline_fallback_activations"]) == {(): 1.0}


def test_data_ages_are_labelled_by_market_and_kind_and_old_candle_pages_are_left_out() -> None:
    """Fails before: a candles key gave the market label ``KRW-BTC/1m`` (and one label set per
    page asked with ``to``, whose age is old by design)."""
    status = SystemStatus(N0, "local", True, (), data_ages={
        "ticker/KRW-BTC": 0.5, "trades/KRW-ETH": 2.0, "candles/KRW-BTC/1m": 30.0,
        "candles/KRW-BTC/1m/2026-11-30 11:00:00+00:00": 3600.0, "orderbook/KRW-ETH": None})
    ages = samples(collect(status)["lifeline_data_age_seconds"])
    assert ages == {(("kind", "ticker"), ("market", "KRW-BTC")): 0.5,
                    (("kind", "trades"), ("market", "KRW-ETH")): 2.0,
                    (("kind", "candles.1m"), ("market", "KRW-BTC")): 30.0}
