"""The shared limiter against the simulator's strict per-IP sliding window."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import requests

from quotation.errors import Banned, InvalidValue, QuotationError, RateLimited
from quotation.rest.client import RestClient, RestConfig
from quotation.rest.ratelimit import RateLimiter, process_limiter
from tests.fakes import LockstepClock, ManualClock
from upbit_sim import Simulator
from upbit_sim.limits import RateLimitPolicy


def burst(
    sim: Simulator,
    limiter: RateLimiter,
    threads: int,
    calls: int,
    leave: Callable[[], None] = lambda: None,
) -> tuple[int, float]:
    """``calls`` ticker calls from each of ``threads`` clients sharing ``limiter``, no 429 retry.

    Returns how many answered, and the time they took on the limiter's clock; a
    single 429 (or any other error) fails the test. Each thread calls ``leave``
    when done (``LockstepClock.leave``).
    """
    # No 429 retries: a single 429 would surface as RateLimited.
    config = RestConfig(base_url=sim.base_url, rate_limit_retries=0, max_wait=30.0)
    clients = [RestClient(config, limiter=limiter) for _ in range(threads)]
    answered: list[str] = []
    errors: list[QuotationError] = []
    lock = threading.Lock()

    def work(client: RestClient) -> None:
        try:
            for _ in range(calls):
                try:
                    market = client.get_tickers("KRW-BTC")[0].market
                except QuotationError as exc:
                    with lock:
                        errors.append(exc)
                else:
                    with lock:
                        answered.append(market)
        finally:
            leave()

    workers = [threading.Thread(target=work, args=(client,)) for client in clients]
    started = limiter.clock.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(25)
    elapsed = limiter.clock.monotonic() - started
    for client in clients:
        client.close()
    assert errors == []
    return len(answered), elapsed


@pytest.mark.timeout(30)
def test_a_burst_of_100_ticker_calls_from_4_threads_gets_no_429_at_the_allowed_rate(
    sim_factory: Callable[..., Simulator],
) -> None:
    clock = LockstepClock(parties=4)  # the server's window and the four threads' waits
    sim = sim_factory(seed=1, clock=clock)
    limiter = RateLimiter(clock)  # one per process, shared by the four "actors"
    answered, elapsed = burst(sim, limiter, threads=4, calls=25, leave=clock.leave)
    assert answered == 100
    # Ten windows of 10 calls, each starting the moment the last one's slots cool down:
    # not one slot reused early (no 429), none left idle (no slower than allowed).
    assert elapsed == pytest.approx(9 * limiter.cooldown)


@pytest.mark.timeout(30)
def test_calls_from_4_threads_across_a_window_get_no_429_on_the_real_clock(
    sim: Simulator,
) -> None:
    # The same burst on real time, real thread scheduling and loopback latency, against the
    # server's real 1 s window: 20 calls fill two windows, so every slot is used twice.
    limiter = RateLimiter()
    answered, elapsed = burst(sim, limiter, threads=4, calls=5)
    assert answered == 20
    # The 11th call waits for a slot that is free 1.05 s after its answer: cannot flake.
    assert elapsed >= 1.0
    print(f"\nburst: 20 ticker calls from 4 threads in {elapsed:.2f} s")


@pytest.mark.timeout(30)
def test_remaining_req_keeps_an_over_generous_limiter_inside_the_servers_budget(
    sim_factory: Callable[..., Simulator],
) -> None:
    clock = ManualClock()
    sim = sim_factory(seed=3, rate_limit=RateLimitPolicy(per_second=3), clock=clock)
    limiter = RateLimiter(clock, per_second=50)  # believes in far more than the server allows
    config = RestConfig(base_url=sim.base_url, rate_limit_retries=0)
    with RestClient(config, limiter=limiter) as rest:
        for _ in range(12):
            rest.get_tickers("KRW-BTC")  # a 429 would raise RateLimited
    assert limiter.status().groups["ticker"].last_sec is not None
    # The first answer's sec=2 taught it the server's 3 a window: 12 calls, 3 cool-downs.
    assert clock.sleeps == [pytest.approx(limiter.cooldown)] * 3


@pytest.mark.timeout(30)
def test_the_servers_own_429_then_ban_are_honoured_and_recovered_from(
    sim_factory: Callable[..., Simulator],
) -> None:
    policy = RateLimitPolicy(
        per_second=2, window=5.0, ban_after=3, ban_window=30.0, ban_seconds=10.5
    )
    clock = ManualClock()
    sim = sim_factory(seed=4, rate_limit=policy, clock=clock)
    url = f"{sim.base_url}/ticker?markets=KRW-BTC"
    limiter = RateLimiter(clock)  # Upbit's pauses after a 429: 1 s, 2 s, 4 s, ...
    config = RestConfig(base_url=sim.base_url, rate_limit_retries=0)
    with requests.Session() as other, RestClient(config, limiter=limiter) as rest:
        # Another program on the same IP spends the whole window.
        assert [other.get(url, timeout=5).status_code for _ in range(2)] == [200, 200]
        with pytest.raises(RateLimited) as first:
            rest.get_tickers("KRW-BTC")
        assert first.value.group == "ticker"
        assert first.value.retry_after == pytest.approx(1.0)
        with pytest.raises(RateLimited):
            rest.get_tickers("KRW-BTC")  # after the pause, still inside the 5 s window
        assert other.get(url, timeout=5).status_code == 418  # third refusal: the IP is banned
        with pytest.raises(Banned) as banned:
            rest.get_tickers("KRW-BTC")
        assert banned.value.duration == 9.0  # "Blocked for 9 seconds.": the 8.5 s left
        quick = RestClient(RestConfig(base_url=sim.base_url, max_wait=0.0), limiter=limiter)
        with quick, pytest.raises(Banned):
            quick.get_candles("KRW-BTC", "1m")
        # Waiting the ban out (it outlasts the server's window) brings the client back.
        assert rest.get_tickers("KRW-BTC")[0].market == "KRW-BTC"
        assert rest.get_candles("KRW-BTC", "1m")
    # Each wait was the one the server asked for: the slot its 429 (sec=0) held, the
    # second 429's 2 s pause, and the ban as stated.
    assert clock.sleeps == [pytest.approx(limiter.cooldown), pytest.approx(2.0), 9.0]


@pytest.mark.timeout(30)
def test_one_client_shared_by_four_threads_serves_them_all(
    sim_factory: Callable[..., Simulator],
) -> None:
    clock = LockstepClock(parties=4)
    sim = sim_factory(seed=1, clock=clock)
    errors: list[BaseException] = []
    markets: list[str] = []
    lock = threading.Lock()
    with RestClient(RestConfig(base_url=sim.base_url), limiter=RateLimiter(clock)) as rest:

        def work(market: str) -> None:
            try:
                for _ in range(6):
                    try:
                        got = rest.get_tickers(market)[0].market
                    except QuotationError as exc:
                        with lock:
                            errors.append(exc)
                    else:
                        with lock:
                            markets.append(got)
            finally:
                clock.leave()

        threads = [
            threading.Thread(target=work, args=(market,))
            for market in ("KRW-BTC", "KRW-ETH", "BTC-ETH", "USDT-BTC")
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(25)
    assert errors == []
    assert sorted(set(markets)) == ["BTC-ETH", "KRW-BTC", "KRW-ETH", "USDT-BTC"]
    assert len(markets) == 24


# -- the default limiter is the process's one ---------------------------------------------


@pytest.mark.timeout(30)
def test_two_default_clients_never_exceed_10_requests_per_second_per_group_together(
    sim: Simulator,
) -> None:
    # The simulator refuses (429) any request beyond 10 per 1 s sliding window of arrivals
    # per group; without retries a single refusal surfaces as RateLimited.
    config = RestConfig(base_url=sim.base_url, rate_limit_retries=0, max_wait=20.0)
    first, second = RestClient(config), RestClient(config)
    assert first.limiter is second.limiter is process_limiter()
    calls = {"ticker": 0, "orderbook": 0}
    errors: list[QuotationError] = []
    lock = threading.Lock()

    def work(client: RestClient) -> None:
        for _ in range(5):
            for group, call in (
                ("ticker", client.get_tickers),
                ("orderbook", client.get_orderbooks),
            ):
                try:
                    call("KRW-BTC")
                except QuotationError as exc:
                    with lock:
                        errors.append(exc)
                else:
                    with lock:
                        calls[group] += 1

    threads = [threading.Thread(target=work, args=(client,))
               for client in (first, second) for _ in range(3)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(25)
    elapsed = time.monotonic() - started
    first.close()
    second.close()
    assert errors == []
    assert calls == {"ticker": 30, "orderbook": 30}
    # 30 arrivals per group, at most 10 in any 1 s window, span more than 2 s.
    assert elapsed > 2.0


@pytest.mark.timeout(5)
def test_a_client_given_a_clock_but_no_limiter_is_refused_naming_the_limiter() -> None:
    with pytest.raises(InvalidValue, match="limiter=RateLimiter") as caught:
        RestClient(RestConfig(), clock=ManualClock())
    assert caught.value.field == "limiter"
