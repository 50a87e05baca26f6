"""Every error type, from the simulator's network faults, through the real client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from quotation.errors import Banned, FormatError, RateLimited, ServerError, TransportError
from quotation.rest.client import RestClient, RestConfig
from quotation.rest.ratelimit import RateLimiter
from tests.fakes import ManualClock
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def clock() -> ManualClock:
    """One fake clock for the simulator and the client: 429 pauses, bans and slot
    cool-downs are waited out at once, and asserted exactly in ``clock.sleeps``.
    Read timeouts stay real (they are socket timeouts)."""
    return ManualClock()


@pytest.fixture
def sim(sim_factory: Callable[..., Simulator], clock: ManualClock) -> Simulator:
    return sim_factory(seed=1, clock=clock)


@pytest.fixture
def limiter(clock: ManualClock) -> RateLimiter:
    return RateLimiter(clock)  # Upbit's pauses after a 429: 1 s, 2 s, 4 s, ...


@pytest.fixture
def client(sim: Simulator, limiter: RateLimiter) -> Iterator[RestClient]:
    with RestClient(RestConfig(base_url=sim.base_url), limiter=limiter) as rest:
        yield rest


def applied(sim: Simulator, kind: str) -> int:
    return int(sim.faults.snapshot()["applied"][kind])


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_5xx_is_a_server_error_and_the_next_call_succeeds(
    sim: Simulator, client: RestClient, status: int
) -> None:
    sim.faults.fail_next(1, status)
    with pytest.raises(ServerError) as caught:
        client.get_tickers("KRW-BTC")
    assert caught.value.status == status
    assert client.get_tickers("KRW-BTC")[0].market == "KRW-BTC"


def test_a_single_429_is_retried_once_after_the_groups_pause(
    sim: Simulator, client: RestClient, clock: ManualClock
) -> None:
    sim.faults.storm_429(1)
    assert client.get_tickers("KRW-BTC")[0].market == "KRW-BTC"
    assert applied(sim, "storm_429") == 1
    assert client.limiter.status().groups["ticker"].consecutive_rate_limits == 0
    # The retry waited out the 1 s pause and the slot its "sec=0" held: one wait, no less.
    assert clock.sleeps == [pytest.approx(client.limiter.cooldown)]


def test_a_429_storm_is_honoured_with_backoff_and_recovered_from(
    sim: Simulator, client: RestClient, limiter: RateLimiter, clock: ManualClock
) -> None:
    sim.faults.storm_429(3, path_prefix="/v1/ticker")
    with pytest.raises(RateLimited) as caught:
        client.get_tickers("KRW-BTC")  # 429, pause 1 s, retry, 429 again
    assert caught.value.group == "ticker"
    assert caught.value.retry_after == pytest.approx(2.0)
    assert limiter.status().groups["ticker"].consecutive_rate_limits == 2
    # Other groups are not paused.
    assert client.get_candles("KRW-BTC", "1m")
    # While the group is paused nothing is sent: a call that cannot wait fails locally.
    quick = RestClient(RestConfig(base_url=sim.base_url, max_wait=0.0), limiter=limiter)
    with quick, pytest.raises(RateLimited):
        quick.get_tickers("KRW-BTC")
    assert applied(sim, "storm_429") == 2
    # The next call waits the pause out, meets the storm's last 429, waits again, succeeds.
    assert client.get_tickers("KRW-BTC")[0].market == "KRW-BTC"
    assert applied(sim, "storm_429") == 3
    assert limiter.status().groups["ticker"].consecutive_rate_limits == 0
    # Every wait, exactly: the first retry's (the 1 s pause, within the held slot's
    # cool-down), then the 2 s and 4 s pauses; nothing was sent earlier.
    assert clock.sleeps == [pytest.approx(limiter.cooldown), 2.0, 4.0]


def test_a_418_ban_stops_every_group_until_it_ends_then_calls_recover(
    sim: Simulator, client: RestClient, limiter: RateLimiter, clock: ManualClock
) -> None:
    sim.faults.ban_418(1.0)
    with pytest.raises(Banned) as caught:
        client.get_tickers("KRW-BTC")
    assert caught.value.duration == 1.0  # read from "Blocked for 1 seconds."
    assert limiter.banned_until() == pytest.approx(caught.value.until)
    hits = applied(sim, "ban_418")
    quick = RestClient(RestConfig(base_url=sim.base_url, max_wait=0.0), limiter=limiter)
    with quick:
        for call in (
            lambda: quick.get_candles("KRW-BTC", "1m"),
            quick.get_markets,
            lambda: quick.get_orderbooks("KRW-BTC"),
        ):
            with pytest.raises(Banned) as again:
                call()
            assert again.value.until == caught.value.until
    assert applied(sim, "ban_418") == hits  # nothing was sent during the ban
    # A call that may wait longer than the ban waits it out and succeeds.
    assert client.get_trades("KRW-BTC", count=3)
    assert limiter.banned_until() is None
    assert clock.sleeps == [1.0]  # the ban as stated, and only once


@pytest.mark.timeout(15)
def test_a_black_holed_request_ends_in_a_transport_error_within_its_read_timeout(
    sim: Simulator, client: RestClient, limiter: RateLimiter
) -> None:
    sim.faults.black_hole(path_prefix="/v1/ticker")
    config = RestConfig(base_url=sim.base_url, read_timeout=0.5)
    with RestClient(config, limiter=limiter) as short:
        started = time.monotonic()
        with pytest.raises(TransportError, match="ReadTimeout"):
            short.get_tickers("KRW-BTC")
        elapsed = time.monotonic() - started
    assert sim.faults.held >= 1 or applied(sim, "black_hole") >= 1
    # Loose bound (10x the timeout): the point is that it ended, not how fast.
    assert elapsed < 5.0
    sim.faults.black_hole(False)
    assert client.get_tickers("KRW-BTC")[0].market == "KRW-BTC"


def test_an_answer_slower_than_the_read_timeout_is_a_transport_error(
    sim: Simulator, limiter: RateLimiter
) -> None:
    sim.faults.set_latency(2.0)
    config = RestConfig(base_url=sim.base_url, read_timeout=0.3)
    with RestClient(config, limiter=limiter) as rest, pytest.raises(TransportError):
        rest.get_markets()


@pytest.mark.parametrize("truncated", [False, True], ids=["malformed", "truncated"])
def test_a_spoiled_json_body_is_a_format_error_naming_the_payload(
    sim: Simulator, client: RestClient, truncated: bool
) -> None:
    sim.faults.malformed_json(1, truncated=truncated)
    with pytest.raises(FormatError) as caught:
        client.get_tickers(["KRW-BTC", "KRW-ETH"])
    assert caught.value.payload == "ticker"
    assert len(client.get_tickers(["KRW-BTC", "KRW-ETH"])) == 2


def test_field_drift_does_not_break_any_endpoint(sim: Simulator, client: RestClient) -> None:
    sim.faults.field_drift()
    assert client.get_markets(is_details=True)
    assert client.get_tickers("KRW-BTC")
    assert client.get_candles("KRW-BTC", "1w", count=3)
    assert client.get_trades("KRW-BTC", count=5)
    assert client.get_orderbooks("KRW-BTC")
    assert client.get_orderbook_instruments("KRW-BTC")


def test_a_stopped_simulator_gives_a_transport_error(
    sim_factory: Callable[..., Simulator], limiter: RateLimiter
) -> None:
    sim = sim_factory(seed=2)
    base_url = sim.base_url
    sim.stop()
    rest = RestClient(RestConfig(base_url=base_url), limiter=limiter)
    with rest, pytest.raises(TransportError):
        rest.get_markets()
