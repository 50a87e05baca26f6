"""How long one REST call can take: the status line and headers are under ``total_timeout``, and a
call of several requests (candle pages, market chunks, limiter waits) under its deadline
(``RestConfig.call_deadline`` or ``deadline=``), which ends in ``IncompleteAnswer`` carrying what
was fetched, never a short list returned as whole.

Against real loopback servers: a raw-socket server dripping its headers, and the simulator slowed
by its ``latency`` fault. Bounds are small and asserted with generous slack, never tightly.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import orjson
import pytest

from quotation.errors import IncompleteAnswer, InvalidRequest, InvalidValue, TransportError
from quotation.models import Market
from quotation.rest.client import RestClient, RestConfig
from quotation.rest.ratelimit import RateLimiter
from tests.fakes import ManualClock
from tests.quotation.rest.footprint import Footprint
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(30)

SLACK = 1.5
"""Seconds allowed past a bound on a loaded two-core machine (the bounds are below a second)."""
GOOD_MARKETS = [{"market": "KRW-BTC", "korean_name": "비트코인", "english_name": "Bitcoin"}]
GOOD_BODY = orjson.dumps(GOOD_MARKETS)


class HeaderDripServer:
    """A raw-socket HTTP/1.1 server on 127.0.0.1. Its first answer drips the status line and
    headers one byte per ``interval`` (about 300 bytes: half a minute) until the client hangs
    up or ``seconds`` pass; every later request, on any connection, gets a good answer."""

    def __init__(self, interval: float = 0.1, seconds: float = 10.0) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._interval = interval
        self._seconds = seconds
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._dripped = False
        self.drip_done = threading.Event()
        self.good_answers = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/v1"

    def __enter__(self) -> HeaderDripServer:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        self._listener.close()

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name="drip-server", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(0.2)
            while not self._stop.is_set():
                try:
                    request = conn.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not request:
                    return
                if not self._dripped:
                    self._dripped = True
                    self._drip(conn)
                    return
                self.good_answers += 1  # before sending: the client may check it at once
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Remaining-Req: group=market; min=600; sec=9\r\n"
                    + f"Content-Length: {len(GOOD_BODY)}\r\n\r\n".encode()
                    + GOOD_BODY
                )

    def _drip(self, conn: socket.socket) -> None:
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + b"".join(f"X-Slow-{n}: {'x' * 20}\r\n".encode() for n in range(10))
            + f"Content-Length: {len(GOOD_BODY)}\r\n\r\n".encode()
        )
        ends = time.monotonic() + self._seconds
        try:
            for byte in head:
                if self._stop.is_set() or time.monotonic() > ends:
                    return
                conn.sendall(bytes([byte]))
                time.sleep(self._interval)
        except OSError:
            pass  # the client hung up
        finally:
            self.drip_done.set()


# -- the status line and headers are under total_timeout ----------------------------------------


def test_a_server_dripping_its_headers_is_cut_off_at_the_total_timeout(
    limiter: RateLimiter,
) -> None:
    # A byte every 0.1 s is never a silence of read_timeout (3 s): only the deadline ends it.
    with Footprint() as footprint, HeaderDripServer() as server:
        config = RestConfig(base_url=server.base_url, read_timeout=3.0, total_timeout=0.5)
        with RestClient(config, limiter=limiter) as client:
            started = time.monotonic()
            with pytest.raises(TransportError) as caught:
                client.get_markets()
            took = time.monotonic() - started
            assert not isinstance(caught.value, IncompleteAnswer)
            message = str(caught.value)
            assert "GET /market/all" in message
            assert "total timeout of 0.5 s exceeded" in message
            assert "status line and headers" in message
            assert took < 0.5 + SLACK
            assert server.drip_done.wait(5), "the client did not hang up on the drip"
            group = limiter.status().groups["market"]
            assert group.in_flight == 0
            assert group.paused_until is None
            assert client.get_markets() == [Market("KRW-BTC", "비트코인", "Bitcoin")]
            assert server.good_answers == 1
    # Client and server closed: no socket or thread of the exchange is left (no gc pass).
    footprint.assert_back_to_baseline()


# -- a call of several requests is under its deadline -------------------------------------------


@pytest.fixture
def sim(sim_factory: Callable[..., Simulator]) -> Simulator:
    """A still simulator (manual clock, no trading, no rate limit): answers repeat exactly."""
    return sim_factory(seed=1, clock=ManualClock(), auto_trade=False, rate_limit=None)


@pytest.fixture
def client(sim: Simulator, limiter: RateLimiter) -> Iterator[RestClient]:
    config = RestConfig(base_url=sim.base_url, max_markets_per_request=2)
    with RestClient(config, limiter=limiter) as rest:
        yield rest


@pytest.fixture
def krw_markets(client: RestClient) -> list[str]:
    codes = [market.market for market in client.get_markets() if market.market.startswith("KRW-")]
    assert len(codes) >= 20
    return codes[:20]


def test_a_call_that_fits_its_deadline_returns_everything(
    client: RestClient, krw_markets: list[str]
) -> None:
    candles = client.get_candles("KRW-BTC", "1s", count=1000, deadline=20.0)
    assert len(candles) == 1000
    assert [c.start for c in candles] == sorted({c.start for c in candles})
    tickers = client.get_tickers(krw_markets, deadline=20.0)
    assert [ticker.market for ticker in tickers] == krw_markets


def test_paged_candles_past_the_deadline_are_incomplete_with_the_newest_pages_in_order(
    sim: Simulator, client: RestClient
) -> None:
    whole = client.get_candles("KRW-BTC", "1s", count=1000, to="2026-03-11T12:00:00Z")
    sim.faults.set_latency(0.3, path_prefix="/v1/candles")
    started = time.monotonic()
    with pytest.raises(IncompleteAnswer) as caught:
        client.get_candles("KRW-BTC", "1s", count=1000, to="2026-03-11T12:00:00Z", deadline=1.0)
    took = time.monotonic() - started
    error = caught.value
    assert isinstance(error, TransportError)
    assert error.expected == 1000
    assert error.deadline == 1.0
    assert 0 < len(error.partial) < 1000
    assert len(error.partial) % 200 == 0  # whole pages only
    assert list(error.partial) == whole[-len(error.partial):]  # the newest, oldest first
    assert "call deadline of 1 s exceeded" in str(error)
    assert "GET /candles/seconds" in str(error)
    assert took < 1.0 + SLACK
    sim.faults.set_latency(0)
    assert client.get_candles("KRW-BTC", "1s", count=1000, to="2026-03-11T12:00:00Z") == whole


def test_a_chunked_ticker_call_past_the_deadline_is_incomplete_with_the_first_chunks_in_order(
    sim: Simulator, client: RestClient, krw_markets: list[str]
) -> None:
    sim.faults.set_latency(0.2, path_prefix="/v1/ticker")
    started = time.monotonic()
    with pytest.raises(IncompleteAnswer) as caught:
        client.get_tickers(krw_markets, deadline=0.7)  # ten requests of two markets
    took = time.monotonic() - started
    partial = [ticker.market for ticker in caught.value.partial]  # type: ignore[attr-defined]
    assert caught.value.expected == 20
    assert 0 < len(partial) < 20
    assert partial == krw_markets[: len(partial)]
    assert took < 0.7 + SLACK
    sim.faults.set_latency(0)
    assert [ticker.market for ticker in client.get_tickers(krw_markets)] == krw_markets


def test_the_configured_call_deadline_applies_when_a_call_names_none(
    sim: Simulator, limiter: RateLimiter, krw_markets: list[str]
) -> None:
    config = RestConfig(base_url=sim.base_url, max_markets_per_request=2, call_deadline=0.7)
    sim.faults.set_latency(0.2, path_prefix="/v1/ticker")
    with RestClient(config, limiter=limiter) as rest:
        with pytest.raises(IncompleteAnswer, match=r"call deadline of 0\.7 s"):
            rest.get_tickers(krw_markets)
        assert [t.market for t in rest.get_tickers(krw_markets, deadline=20.0)] == krw_markets


def test_a_limiter_wait_longer_than_the_deadline_ends_the_call_at_once(sim: Simulator) -> None:
    # One request per second: every page after the first waits about a second for its slot,
    # which max_wait (10 s) would allow but the deadline does not.
    slow = RateLimiter(per_second=1)
    config = RestConfig(base_url=sim.base_url, max_markets_per_request=1)
    with RestClient(config, limiter=slow) as rest:
        started = time.monotonic()
        with pytest.raises(IncompleteAnswer) as caught:
            rest.get_tickers(["KRW-BTC", "KRW-ETH", "KRW-XRP"], deadline=0.5)
        took = time.monotonic() - started
        assert [t.market for t in caught.value.partial] == ["KRW-BTC"]  # type: ignore[attr-defined]
        assert "waiting for a rate-limit slot" in str(caught.value)
        assert took < 0.5 + SLACK
        # A single request is under the deadline too: its slot is still a second away.
        with pytest.raises(IncompleteAnswer) as single:
            rest.get_tickers("KRW-BTC", deadline=0.3)
        assert single.value.partial == ()
        assert slow.status().groups["ticker"].in_flight == 0
        assert [t.market for t in rest.get_tickers("KRW-ETH")] == ["KRW-ETH"]


# -- the settings ---------------------------------------------------------------------------------


def test_the_call_deadline_is_30_seconds_by_default() -> None:
    assert RestConfig().call_deadline == 30.0


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), True, "30"])
def test_an_impossible_call_deadline_is_refused_naming_it(value: object) -> None:
    with pytest.raises(InvalidValue) as caught:
        RestConfig(call_deadline=value)  # type: ignore[arg-type]
    assert caught.value.field == "call_deadline"


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), True, "30"])
def test_an_impossible_deadline_for_one_call_is_an_invalid_request_before_sending(
    limiter: RateLimiter, value: object
) -> None:
    # Nothing listens on port 9: a request would fail with a TransportError instead.
    config = RestConfig(base_url="http://127.0.0.1:9/v1")
    with RestClient(config, limiter=limiter) as rest:
        with pytest.raises(InvalidRequest) as caught:
            rest.get_markets(deadline=value)  # type: ignore[arg-type]
    assert caught.value.parameter == "deadline"
