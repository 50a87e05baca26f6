"""Reconnect backoff and pacing: exact delays from a scripted random source, no real waiting.

The backoff formula itself is tested in ``tests/quotation/test_backoff.py``; here the client
must wait exactly ``backoff.delay(n + 1, random())`` after ``n`` failed connects in a row.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator

import pytest

from quotation.backoff import Backoff, Jitter
from quotation.websocket.client import CloseReason, WebSocketClient, WebSocketConfig, WebSocketLike
from quotation.websocket.config import RECONNECT_BACKOFF
from quotation.websocket.pacing import Pacer, RateWindow, pacing_delay
from quotation.websocket.subscription import DataType, Subscription
from tests.fakes import ManualClock

pytestmark = pytest.mark.timeout(10)


def scripted(values: list[float], then: float = 0.5) -> Iterator[float]:
    yield from values
    while True:
        yield then


def test_the_default_reconnect_backoff_is_full_jitter_from_half_a_second_doubling_to_30() -> None:
    backoff = WebSocketConfig().backoff
    assert backoff is RECONNECT_BACKOFF
    assert (backoff.initial, backoff.multiplier, backoff.cap) == (0.5, 2.0, 30.0)
    assert (backoff.jitter, backoff.spread) == (Jitter.FULL, 0.0)


def test_pacing_waits_until_the_oldest_event_leaves_the_window() -> None:
    limits = (RateWindow(5, 1.0), RateWindow(100, 60.0))
    assert pacing_delay(10.0, [9.1, 9.2, 9.3, 9.4], limits) == 0.0
    assert pacing_delay(10.0, [9.1, 9.2, 9.3, 9.4, 9.5], limits) == pytest.approx(0.1)
    minute = [float(i) * 0.5 for i in range(100)]  # 100 events in 49.5 s
    assert pacing_delay(50.0, minute, limits) == pytest.approx(10.0)


def test_pacer_books_events_so_five_never_share_a_second() -> None:
    pacer = Pacer((RateWindow(5, 1.0),))
    times = [pacer.reserve(0.0) for _ in range(12)]
    for i in range(len(times) - 5):
        assert times[i + 5] - times[i] >= 1.0


def _config(policy: Backoff, limits: tuple[RateWindow, ...]) -> WebSocketConfig:
    return WebSocketConfig(
        subscriptions=(Subscription(DataType.TRADE, ("KRW-BTC",)),),
        url="ws://127.0.0.1:9/websocket/v1",
        backoff=policy,
        connect_limits=limits,
    )


def _run_failing_client(
    config: WebSocketConfig, randoms: Iterator[float], attempts_wanted: int
) -> tuple[list[float], WebSocketClient]:
    clock = ManualClock()
    attempts: list[float] = []
    enough = threading.Event()

    def refuse(url: str, timeout: float) -> WebSocketLike:
        attempts.append(clock.monotonic())
        if len(attempts) >= attempts_wanted:
            enough.set()
        raise ConnectionRefusedError("refused (scripted)")

    client = WebSocketClient(config, clock=clock, random=lambda: next(randoms), connector=refuse)
    client.start()
    try:
        assert enough.wait(5)
    finally:
        client.stop()
    return attempts[:attempts_wanted], client


def test_reconnect_delays_are_the_jittered_backoff_exactly() -> None:
    policy = Backoff(initial=1.0, multiplier=2.0, cap=5.0, jitter=Jitter.FULL)
    randoms = [0.5, 0.9, 0.25, 0.99, 0.1]
    attempts, client = _run_failing_client(
        _config(policy, (RateWindow(5, 1.0),)), scripted(randoms), 6
    )
    delays = [b - a for a, b in itertools.pairwise(attempts)]
    # After n failures in a row the wait is random * min(cap, initial * 2**n).
    expected = [0.5 * 2.0, 0.9 * 4.0, 0.25 * 5.0, 0.99 * 5.0, 0.1 * 5.0]
    assert delays == pytest.approx(expected)
    assert all(d <= policy.cap for d in delays)
    status = client.status()
    assert status.connect_failures >= 6
    assert status.last_close is CloseReason.CONNECT_FAILED


def test_zero_backoff_still_respects_five_connects_per_second() -> None:
    policy = Backoff(initial=0.01, multiplier=1.0, cap=0.01, jitter=Jitter.FULL)
    attempts, _ = _run_failing_client(
        _config(policy, (RateWindow(5, 1.0),)), scripted([], then=0.0), 16
    )
    for i in range(len(attempts) - 5):
        assert attempts[i + 5] - attempts[i] >= 1.0 - 1e-9
