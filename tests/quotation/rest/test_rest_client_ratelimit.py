"""The shared limiter against the simulator's strict per-IP sliding window."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import requests

from quotation.backoff import Backoff
from quotation.errors import Banned, InvalidValue, QuotationError, RateLimited
from quotation.rest.client import RestClient, RestConfig
from quotation.rest.ratelimit import RateLimiter, process_limiter
from tests.fakes import ManualClock
from upbit_sim import Simulator
from upbit_sim.limits import RateLimitPolicy


@pytest.mark.timeout(60)
def test_a_burst_of_100_ticker_calls_from_4_threads_gets_no_429_at_the_allowed_rate(
    sim: Simulator,
) -> None:
    limiter = RateLimiter()  # one per process, shared by the four "actors"
    # No 429 retries: a single 429 would surface as RateLimited.
    config = RestConfig(base_url=sim.base_url, rate_limit_retries=0, max_wait=30.0)
    clients = [RestClient(config, limiter=limiter) for _ in range(4)]
    results: list[str] = []
    errors: list[QuotationError] = []
    lock = threading.Lock()

    def work(client: RestClient) -> None:
        for _ in range(25):
            try:
                market = client.get_tickers("KRW-BTC")[0].market
            except QuotationError as exc:
                with lock:
                    errors.append(exc)
            else:
                with lock:
                    results.append(market)

    threads = [threading.Thread(target=work, args=(client,)) for client in clients]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(55)
    elapsed = time.monotonic() - started
    for client in clients:
        client.close()
    assert errors == []
    assert len(results) == 100
    # A lower bound the limiter enforces (10 per 1.05 s after each answer): cannot flake.
    assert elapsed >= 9.0
    print(
        f"\nburst: 100 ticker calls from 4 threads in {elapsed:.2f} s = {100 / elapsed:.2f} req/s"
    )


@pytest.mark.timeout(30)
def test_remaining_req_keeps_an_over_generous_limiter_inside_the_servers_budget(
    sim_factory: Callable[..., Simulator],
) -> None:
    sim = sim_factory(seed=3, rate_limit=RateLimitPolicy(per_second=3))
    limiter = RateLimiter(per_second=50)  # believes in far more than the server allows
    config = RestConfig(base_url=sim.base_url, rate_limit_retries=0)
    with RestClient(config, limiter=limiter) as rest:
        for _ in range(12):
            rest.get_tickers("KRW-BTC")  # a 429 would raise RateLimited
    assert limiter.status().groups["ticker"].last_sec is not None


@pytest.mark.timeout(30)
def test_the_servers_own_429_then_ban_are_honoured_and_recovered_from(
    sim_factory: Callable[..., Simulator],
) -> None:
    policy = RateLimitPolicy(
        per_second=2, window=2.0, ban_after=3, ban_window=30.0, ban_seconds=2.5
    )
    sim = sim_factory(seed=4, rate_limit=policy)
    url = f"{sim.base_url}/ticker?markets=KRW-BTC"
    limiter = RateLimiter(backoff=Backoff(base=0.05, cap=0.2))
    config = RestConfig(base_url=sim.base_url, rate_limit_retries=0)
    with requests.Session() as other, RestClient(config, limiter=limiter) as rest:
        # Another program on the same IP spends the whole window.
        assert [other.get(url, timeout=5).status_code for _ in range(2)] == [200, 200]
        with pytest.raises(RateLimited) as first:
            rest.get_tickers("KRW-BTC")
        assert first.value.group == "ticker"
        with pytest.raises(RateLimited):
            rest.get_tickers("KRW-BTC")  # after the 0.05 s pause, still over the window
        assert other.get(url, timeout=5).status_code == 418  # third refusal: the IP is banned
        with pytest.raises(Banned) as banned:
            rest.get_tickers("KRW-BTC")
        assert banned.value.duration >= 2.0  # read from the simulator's message
        quick = RestClient(RestConfig(base_url=sim.base_url, max_wait=0.0), limiter=limiter)
        with quick, pytest.raises(Banned):
            quick.get_candles("KRW-BTC", "1m")
        # Waiting the ban out (it outlasts the server's window) brings the client back.
        assert rest.get_tickers("KRW-BTC")[0].market == "KRW-BTC"
        assert rest.get_candles("KRW-BTC", "1m")


@pytest.mark.timeout(30)
def test_one_client_shared_by_four_threads_serves_them_all(sim: Simulator) -> None:
    errors: list[BaseException] = []
    markets: list[str] = []
    lock = threading.Lock()
    with RestClient(RestConfig(base_url=sim.base_url), limiter=RateLimiter()) as rest:

        def work(market: str) -> None:
            for _ in range(6):
                try:
                    got = rest.get_tickers(market)[0].market
                except QuotationError as exc:
                    with lock:
                        errors.append(exc)
                else:
                    with lock:
                        markets.append(got)

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
