"""Prometheus metrics of a :class:`~lifeline.system.MarketDataSystem` (``prometheus-client``).

One custom collector reads the components' own snapshots at scrape time: nothing is counted
for Prometheus on the request path (the reads are counted per thread, lock-free, by
:mod:`lifeline.request_stats`). Names are fixed by issue 10::

    lifeline_level                                  gauge: 0 normal .. 3 last resort
    lifeline_level_changes_total{from,to}           level changes since start
    lifeline_requests_total{kind,source,outcome}    host reads; outcome ok / stale / error
    lifeline_request_seconds{kind,source}           histogram of their latency
    lifeline_errors_total{type}                     reads that raised, by exception type
    lifeline_restarts_total{child}                  supervisor restarts of each child
    lifeline_fallback_activations_total             entries into Level 2/3 (fallbacks on)
    lifeline_recovery_attempts_total                the keeper restarting an untrusted router,
                                                    root restarting router_sup, tree rebuilds
    lifeline_ratelimit_remaining{group}             the shared REST limiter's headroom
    lifeline_ratelimit_banned                       1 while a 418 ban is on
    lifeline_ws_frames_total{client}                WebSocket frames received
    lifeline_ws_reconnects_total{client}            successful connects after the first
    lifeline_data_age_seconds{market,kind}          age of the last known good live data
    lifeline_feed_role                              0 local (mode: local, or the shared feed
                                                    lost), 1 follower, 2 leader
    lifeline_feed_lag_seconds                       s since Redis wrote the newest entry this
                                                    host read (mode: shared; none before one)
    lifeline_feed_takeovers_total                   times this host became the feed's leader

``client`` is ``smart_router`` or ``ws_fallback``; their WebSocket counters are since the
actor instance started (a restart starts them from zero, which Prometheus' ``rate`` treats
as a counter reset). ``source`` of a read that raised is ``none``. The level counters come
from the keeper's counts since start (``SystemStatus.change_pairs``), not from the latest
changes it keeps, so they never go down. ``kind`` of a data age is ``ticker``,
``orderbook``, ``trades`` or ``candles.<interval>`` (e.g. ``candles.1m``): the live answer
only; a kept page of older candles (asked with ``to``) is old by design and not shown.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import CollectorRegistry

from lifeline.levels import Level
from lifeline.request_stats import BUCKETS
from lifeline.system import MarketDataSystem, SystemStatus

__all__ = ["FEED_ROLES", "METRIC_NAMES", "SystemCollector", "registry_for"]

METRIC_NAMES: tuple[str, ...] = (
    "lifeline_level", "lifeline_level_changes_total", "lifeline_requests_total",
    "lifeline_request_seconds", "lifeline_errors_total", "lifeline_restarts_total",
    "lifeline_fallback_activations_total", "lifeline_recovery_attempts_total",
    "lifeline_ratelimit_remaining", "lifeline_ratelimit_banned", "lifeline_ws_frames_total",
    "lifeline_ws_reconnects_total", "lifeline_data_age_seconds", "lifeline_feed_role",
    "lifeline_feed_lag_seconds", "lifeline_feed_takeovers_total",
)
"""Every family this module exposes (counters with their ``_total`` sample name)."""

FEED_ROLES: dict[str, int] = {"local": 0, "follower": 1, "leader": 2}
"""``lifeline_feed_role``'s value for ``status().to_dict()["feed"]["role"]``."""

WS_TIMEOUT = 0.5
"""Real seconds a scrape waits for each WebSocket actor's health answer."""


class SystemCollector:
    """Reads ``system`` at every scrape (``status()``, ``request_stats``,
    ``websocket_status()``): each call bounded, so a scrape never hangs on a busy actor."""

    def __init__(self, system: MarketDataSystem) -> None:
        self._system = system

    def describe(self) -> list[Metric]:
        return []  # no collect() at registration: the system may not run yet

    def collect(self) -> Iterator[Metric]:
        system = self._system
        status = system.status()
        yield GaugeMetricFamily("lifeline_level", "The failure level: 0 normal, 1 degraded, "
                                "2 fallback, 3 last resort.", value=int(status.level))
        yield from _levels(status)
        yield from _requests(system)
        restarts = CounterMetricFamily("lifeline_restarts", "Restarts of each child by its "
                                       "supervisor since start.", labels=["child"])
        per_child: dict[str, int] = {}
        for key, n in status.restarts.items():
            child = key.rpartition("/")[2]
            per_child[child] = per_child.get(child, 0) + n
        for child, n in sorted(per_child.items()):
            restarts.add_metric([child], n)
        yield restarts
        yield CounterMetricFamily("lifeline_recovery_attempts", "Recovery attempts since "
                                  "start: the level keeper restarting a running but "
                                  "untrusted router, root restarting router_sup, tree "
                                  "rebuilds.", value=status.recovery_attempts)
        remaining = GaugeMetricFamily("lifeline_ratelimit_remaining", "Requests the shared "
                                      "REST limiter may send now, per Upbit group.",
                                      labels=["group"])
        for group, n in sorted(status.headroom.items()):
            remaining.add_metric([group], n)
        yield remaining
        yield GaugeMetricFamily("lifeline_ratelimit_banned", "1 while Upbit's 418 ban is on.",
                                value=0 if status.banned_until is None else 1)
        yield from _websockets(system)
        ages = GaugeMetricFamily("lifeline_data_age_seconds", "Age (exchange time) of the "
                                 "last known good live data per market and kind.",
                                 labels=["market", "kind"])
        for key, age in sorted(status.data_ages.items()):
            labels = _age_labels(key)
            if labels is not None and age is not None:
                ages.add_metric(list(labels), age)
        yield ages
        yield from _feed(status)


def registry_for(system: MarketDataSystem) -> CollectorRegistry:
    """A registry of its own (no process-wide default state) with the system's collector."""
    registry = CollectorRegistry()
    registry.register(SystemCollector(system))
    return registry


def _feed(status: SystemStatus) -> Iterator[Metric]:
    feed = status.feed
    yield GaugeMetricFamily("lifeline_feed_role", "This host in the feed: 0 local (mode: "
                            "local, or the shared feed lost), 1 follower, 2 leader.",
                            value=FEED_ROLES.get(str(feed.get("role")), 0))
    lag = GaugeMetricFamily("lifeline_feed_lag_seconds", "Seconds since Redis wrote the "
                            "newest feed entry this host read (mode: shared).")
    if isinstance(feed.get("lag"), int | float):
        lag.add_metric([], float(feed["lag"]))
    yield lag
    takeovers = feed.get("takeovers")
    yield CounterMetricFamily("lifeline_feed_takeovers", "Times this host became the "
                              "shared feed's leader since start.",
                              value=takeovers if isinstance(takeovers, int) else 0)


def _age_labels(key: str) -> tuple[str, str] | None:
    """``(market, kind)`` of a ``status().data_ages`` key (``kind/market`` for snapshots and
    trades, ``candles/market/interval`` for live candles); ``None`` for a page of older
    candles (``candles/market/interval/to``)."""
    parts = key.split("/")
    if len(parts) == 2:
        return parts[1], parts[0]
    if len(parts) == 3:
        return parts[1], f"{parts[0]}.{parts[2]}"
    return None


def _levels(status: SystemStatus) -> Iterator[Metric]:
    changes = CounterMetricFamily("lifeline_level_changes", "Level changes since start.",
                                  labels=["from", "to"])
    counted: dict[tuple[int, int], int] = {}
    for (old_level, new_level), n in status.change_pairs.items():
        counted[(int(old_level), int(new_level))] = n
    if not counted:  # a status made without the counts: the changes it holds
        for change in status.changes:
            pair = (int(change.old), int(change.new))
            counted[pair] = counted.get(pair, 0) + 1
    activations = sum(n for (old, new), n in counted.items() if old <= Level.DEGRADED < new)
    for (old, new), n in sorted(counted.items()):
        changes.add_metric([str(old), str(new)], n)
    yield changes
    yield CounterMetricFamily("lifeline_fallback_activations", "Times the level entered 2 "
                              "or 3 from 0 or 1 (the WebSocket fallback activated).",
                              value=activations)


def _requests(system: MarketDataSystem) -> Iterator[Metric]:
    snap = system.request_stats.snapshot()
    requests = CounterMetricFamily("lifeline_requests", "Host reads by kind, source and "
                                   "outcome (ok, stale, error).",
                                   labels=["kind", "source", "outcome"])
    for (kind, source, outcome), n in sorted(snap.requests.items()):
        requests.add_metric([kind, str(source), outcome], n)
    yield requests
    seconds = HistogramMetricFamily("lifeline_request_seconds", "Latency of host reads by "
                                    "kind and source.", labels=["kind", "source"])
    bounds = [*(f"{bound:g}" for bound in BUCKETS), "+Inf"]
    for (kind, source), (cells, total) in sorted(snap.latency.items()):
        cumulative: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip(bounds, cells, strict=True):
            running += n
            cumulative.append((bound, running))
        seconds.add_metric([kind, str(source)], cumulative, total)
    yield seconds
    errors = CounterMetricFamily("lifeline_errors", "Host reads that raised, by exception "
                                 "type.", labels=["type"])
    for name, n in sorted(snap.errors.items()):
        errors.add_metric([name], n)
    yield errors


def _websockets(system: MarketDataSystem) -> Iterator[Metric]:
    frames = CounterMetricFamily("lifeline_ws_frames", "WebSocket frames received since "
                                 "the actor instance started.", labels=["client"])
    reconnects = CounterMetricFamily("lifeline_ws_reconnects", "Successful WebSocket "
                                     "connects after the first since the actor instance "
                                     "started.", labels=["client"])
    for client, found in system.websocket_status(WS_TIMEOUT).items():
        if found is not None:
            frames.add_metric([client], found.frames)
            reconnects.add_metric([client], max(0, found.connects - 1))
    yield frames
    yield reconnects
