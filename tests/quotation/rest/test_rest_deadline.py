"""The hard total deadline of one REST exchange (``RestConfig.total_timeout``), through the real
client against the simulator's ``trickle`` fault: a body that keeps coming, but too slowly."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator

import pytest
import requests

from quotation.errors import TransportError
from quotation.rest.client import RestClient, RestConfig
from quotation.rest.ratelimit import RateLimiter
from tests.fakes import Answer, ManualClock, RecordingServer, serving
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(30)

MARKETS = ["KRW-BTC", "KRW-ETH"]
SLOW = RestConfig(read_timeout=3.0, total_timeout=1.0)
"""No silence of a 0.1 s trickle comes near read_timeout, and the whole body would take minutes;
a whole answer, though, comes well within total_timeout even on a loaded machine."""


@pytest.fixture
def sim(sim_factory: Callable[..., Simulator]) -> Simulator:
    """A still simulator (manual clock, no trading, no rate limit): answers repeat exactly."""
    return sim_factory(seed=1, clock=ManualClock(), auto_trade=False, rate_limit=None)


@pytest.fixture
def limiter() -> RateLimiter:
    return RateLimiter()


def client_for(sim: Simulator, limiter: RateLimiter, template: RestConfig = SLOW) -> RestClient:
    config = RestConfig(
        base_url=sim.base_url,
        read_timeout=template.read_timeout,
        total_timeout=template.total_timeout,
        transport_error_retries=template.transport_error_retries,
    )
    return RestClient(config, limiter=limiter)


@pytest.fixture
def client(sim: Simulator, limiter: RateLimiter) -> Iterator[RestClient]:
    with client_for(sim, limiter) as rest:
        yield rest


# -- the deadline ---------------------------------------------------------------------------


def test_a_trickle_longer_than_the_total_timeout_is_a_transport_error_naming_it(
    sim: Simulator, client: RestClient
) -> None:
    sim.faults.trickle(chunk_bytes=1, interval=0.1)
    with pytest.raises(TransportError) as caught:
        client.get_tickers(MARKETS)
    message = str(caught.value)
    assert "total timeout of 1 s exceeded" in message
    assert "GET /ticker" in message
    assert sim.faults.snapshot()["applied"]["trickle"] == 1


@pytest.mark.timeout(15)
def test_a_body_that_stalls_after_the_headers_is_cut_off_at_the_deadline(
    sim: Simulator, limiter: RateLimiter
) -> None:
    # The first body byte would come after 20 s, inside read_timeout: only the deadline ends it
    # (the socket's timeout is shrunk to the time left; the test's own timeout is below 20 s).
    sim.faults.trickle(chunk_bytes=1, interval=20.0)
    quiet = RestConfig(read_timeout=25.0, total_timeout=1.0)
    with client_for(sim, limiter, quiet) as rest, pytest.raises(TransportError) as caught:
        rest.get_tickers(MARKETS)
    assert "total timeout of 1 s exceeded" in str(caught.value)


def test_the_client_hangs_up_on_an_answer_it_gave_up_on(sim: Simulator, client: RestClient) -> None:
    sim.faults.trickle(chunk_bytes=1, interval=0.1)
    with pytest.raises(TransportError, match="total timeout"):
        client.get_tickers(MARKETS)
    # The connection was closed, not left half-read: the server sees its client go.
    assert sim.faults.wait_for_trickling(0, timeout=10)


def test_a_trickle_that_ends_within_the_total_timeout_gives_the_exact_answer(
    sim: Simulator, limiter: RateLimiter
) -> None:
    with client_for(sim, limiter, RestConfig(read_timeout=5.0, total_timeout=20.0)) as rest:
        whole = rest.get_tickers(MARKETS)
        sim.faults.trickle(chunk_bytes=100, interval=0.01)
        trickled = rest.get_tickers(MARKETS)
    assert sim.faults.snapshot()["applied"]["trickle"] == 1
    assert trickled == whole
    assert [ticker.market for ticker in trickled] == MARKETS


def test_after_a_deadline_expiry_the_same_client_succeeds_once_the_fault_is_cleared(
    sim: Simulator, client: RestClient
) -> None:
    sim.faults.trickle(chunk_bytes=1, interval=0.1)
    with pytest.raises(TransportError, match="total timeout"):
        client.get_tickers(MARKETS)
    sim.faults.clear("trickle")
    assert [ticker.market for ticker in client.get_tickers(MARKETS)] == MARKETS
    assert client.get_orderbooks("KRW-BTC")[0].market == "KRW-BTC"


def test_a_deadline_expiry_returns_its_limiter_permit(
    sim: Simulator, client: RestClient, limiter: RateLimiter
) -> None:
    sim.faults.trickle(chunk_bytes=1, interval=0.1, path_prefix="/v1/ticker")
    for _ in range(2):
        with pytest.raises(TransportError, match="total timeout"):
            client.get_tickers(MARKETS)
    ticker_group = limiter.status().groups["ticker"]
    assert ticker_group.in_flight == 0
    assert ticker_group.paused_until is None
    assert limiter.banned_until() is None
    sim.faults.clear("trickle")
    assert [ticker.market for ticker in client.get_tickers(MARKETS)] == MARKETS
    assert limiter.status().groups["ticker"].in_flight == 0


def test_transport_retries_apply_to_a_deadline_expiry(sim: Simulator, limiter: RateLimiter) -> None:
    sim.faults.trickle(chunk_bytes=1, interval=0.1, count=1)
    retrying = RestConfig(read_timeout=3.0, total_timeout=1.0, transport_error_retries=1)
    with client_for(sim, limiter, retrying) as rest:
        assert [ticker.market for ticker in rest.get_tickers(MARKETS)] == MARKETS
    assert sim.faults.snapshot()["applied"]["trickle"] == 1
    assert limiter.status().groups["ticker"].in_flight == 0


def test_without_transport_retries_a_deadline_expiry_is_not_retried(
    sim: Simulator, client: RestClient
) -> None:
    sim.faults.trickle(chunk_bytes=1, interval=0.1, count=2)
    with pytest.raises(TransportError, match="total timeout"):
        client.get_tickers(MARKETS)
    assert sim.faults.snapshot()["active"]["trickle"]["remaining"] == 1


def test_an_error_answer_trickled_past_the_deadline_is_a_transport_error(
    sim: Simulator, client: RestClient, limiter: RateLimiter
) -> None:
    sim.faults.fail_next(1, status=503)
    sim.faults.trickle(chunk_bytes=1, interval=0.1)
    with pytest.raises(TransportError, match=r"total timeout .*HTTP 503"):
        client.get_tickers(MARKETS)
    assert limiter.status().groups["ticker"].in_flight == 0


# -- bodies the simulator does not send: compressed and chunked ------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "chunked"])
def test_compressed_and_chunked_answers_are_read_whole(
    sim: Simulator, limiter: RateLimiter, encoding: str
) -> None:
    body = requests.get(
        f"{sim.base_url}/ticker", params={"markets": ",".join(MARKETS)}, timeout=10
    ).content
    headers = {
        "Content-Type": "application/json;charset=UTF-8",
        "Remaining-Req": "group=ticker; min=600; sec=9",
    }
    if encoding == "gzip":
        answer = Answer(200, gzip.compress(body), {**headers, "Content-Encoding": "gzip"})
    else:
        answer = Answer(200, body, headers, chunk_size=100)
    with serving(RecordingServer()) as server:
        server.answer = lambda path: answer
        with RestClient(RestConfig(base_url=server.base_url), limiter=limiter) as rest:
            direct = client_for(sim, limiter, RestConfig(read_timeout=5.0, total_timeout=20.0))
            with direct:
                expected = direct.get_tickers(MARKETS)
            for _ in range(2):
                assert rest.get_tickers(MARKETS) == expected
