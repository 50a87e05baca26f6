"""The host's reads are counted per thread without a lock, and nothing is lost: not across
threads, not when a thread ends."""

from __future__ import annotations

import threading

import pytest

from lifeline.request_stats import BUCKETS, RequestStats

pytestmark = pytest.mark.timeout(20)


def test_reads_from_many_threads_are_all_counted_with_their_latency() -> None:
    stats = RequestStats()

    def work() -> None:
        for _ in range(1000):
            stats.answered("ticker", "smart_router/websocket", False, 0.000002)
        stats.answered("trades", "rest_fallback", True, 0.3)
        stats.failed("candles", TimeoutError("late"), 3.0)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    snap = stats.snapshot()
    assert snap.requests == {("ticker", "smart_router/websocket", "ok"): 8000,
                             ("trades", "rest_fallback", "stale"): 8,
                             ("candles", "none", "error"): 8}
    assert snap.errors == {"TimeoutError": 8}
    buckets, total = snap.latency[("ticker", "smart_router/websocket")]
    assert len(buckets) == len(BUCKETS) + 1
    assert buckets[0] == 8000 and sum(buckets) == 8000  # 2 µs <= the first bound
    assert total == pytest.approx(8000 * 0.000002)
    slow, _ = snap.latency[("candles", "none")]
    assert slow[BUCKETS.index(5.0)] == 8


def test_a_thread_that_ended_keeps_its_counts_when_new_threads_come() -> None:
    stats = RequestStats()
    for _ in range(5):
        thread = threading.Thread(
            target=lambda: stats.answered("orderbook", "rest_fallback", False, 0.01))
        thread.start()
        thread.join(10)
    assert stats.snapshot().requests == {("orderbook", "rest_fallback", "ok"): 5}
    assert len(stats._tallies) == 1  # the ended threads' tallies were folded
