"""The REST fallback actor against the simulator: answers, typed errors, the shared limiter,
and every fault kind at each of its points (start, request, normalize)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pykka
import pytest

from actors.faults import (
    FaultBoard,
    InjectedCrash,
    InjectedFault,
)
from actors.messages import (
    CandlesRequest,
    HealthRequest,
    OrderbookRequest,
    Reply,
    RestHealth,
    Source,
    TickerRequest,
    TradesRequest,
)
from actors.rest_fallback import RestFallback
from quotation.errors import (
    FormatError,
    InvalidRequest,
    QuotationError,
    RateLimited,
    ServerError,
    TransportError,
)
from quotation.models import CandleInterval, Orderbook, Ticker
from quotation.rest import RateLimiter, RestClient, RestConfig
from tests.fakes import ManualClock
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(30)

WAIT = 10.0
"""Real seconds a test waits for an answer or another thread before failing."""

MARKETS = ("KRW-BTC", "KRW-ETH")


def _start(sim: Simulator, limiter: RateLimiter, **kwargs: object) -> pykka.ActorRef[RestFallback]:
    config = kwargs.pop("config", None) or RestConfig(base_url=sim.base_url)
    return RestFallback.start(config, limiter, **kwargs)


def _ask(ref: pykka.ActorRef[RestFallback], message: object) -> Reply:
    reply = ref.ask(message, timeout=WAIT)
    assert isinstance(reply, Reply)
    return reply


def _health(ref: pykka.ActorRef[RestFallback]) -> RestHealth:
    health = ref.ask(HealthRequest(), timeout=WAIT)
    assert isinstance(health, RestHealth)
    return health


# -- answers -------------------------------------------------------------------------------


def test_tickers_and_orderbooks_are_stamped_by_their_oldest_exchange_timestamp(
    quiet: Simulator, limiter: RateLimiter
) -> None:
    ref = _start(quiet, limiter)
    for request, kind in ((TickerRequest(MARKETS), Ticker), (OrderbookRequest(MARKETS), Orderbook)):
        reply = _ask(ref, request)
        assert reply.source is Source.REST_FALLBACK
        assert [item.market for item in reply.data] == list(MARKETS)
        assert all(isinstance(item, kind) for item in reply.data)
        oldest = min(item.timestamp for item in reply.data)  # type: ignore[union-attr]
        assert reply.produced_at == oldest.timestamp()


def test_candles_and_trades_are_stamped_as_of_the_wall_time_they_were_answered(
    quiet: Simulator, limiter: RateLimiter, clock: ManualClock
) -> None:
    ref = _start(quiet, limiter, clock=clock)
    clock.advance(42.0)
    candles = _ask(ref, CandlesRequest("KRW-BTC", CandleInterval.MINUTE_1, 5))
    trades = _ask(ref, TradesRequest("KRW-BTC", 7))
    assert len(candles.data) == 5 and len(trades.data) == 7
    for reply in (candles, trades):
        assert reply.source is Source.REST_FALLBACK
        assert reply.produced_at == clock.time()


def test_candles_ending_at_a_given_time_are_answered(
    quiet: Simulator, limiter: RateLimiter
) -> None:
    ref = _start(quiet, limiter)
    newest = _ask(ref, CandlesRequest("KRW-BTC", CandleInterval.MINUTE_1, 3))
    end = newest.data[0].start  # type: ignore[union-attr]
    earlier = _ask(ref, CandlesRequest("KRW-BTC", CandleInterval.MINUTE_1, 2, to=end))
    assert all(candle.start < end for candle in earlier.data)  # type: ignore[union-attr]
    assert isinstance(end, datetime) and end.tzinfo is not None
    assert end <= datetime.now(UTC)


def test_an_unknown_message_is_a_type_error_naming_it(
    quiet: Simulator, limiter: RateLimiter
) -> None:
    ref = _start(quiet, limiter)
    with pytest.raises(TypeError, match="object"):
        ref.ask(object(), timeout=WAIT)
    assert ref.is_alive()


# -- typed errors pass through; the actor keeps answering ----------------------------------


def test_a_503_reaches_the_asker_as_server_error_and_the_next_request_is_answered(
    quiet: Simulator, limiter: RateLimiter, clock: ManualClock
) -> None:
    ref = _start(quiet, limiter, clock=clock)
    quiet.faults.fail_next(1, status=503)
    with pytest.raises(ServerError) as raised:
        ref.ask(TickerRequest(MARKETS), timeout=WAIT)
    assert raised.value.status == 503
    failed = _health(ref)
    assert failed.failing and failed.consecutive_failures == 1
    assert failed.last_failure_at == clock.monotonic() and failed.last_success_at is None
    assert failed.last_error is not None and "ServerError" in failed.last_error
    clock.advance(1.0)
    assert _ask(ref, TickerRequest(MARKETS)).data
    recovered = _health(ref)
    assert not recovered.failing and recovered.last_success_at == clock.monotonic()


def test_a_429_storm_reaches_the_asker_as_rate_limited_and_pauses_only_that_group(
    quiet: Simulator, limiter: RateLimiter
) -> None:
    ref = _start(quiet, limiter, config=RestConfig(base_url=quiet.base_url,
                                                   rate_limit_retries=0))
    quiet.faults.storm_429(path_prefix="/v1/ticker")
    for _ in range(3):
        with pytest.raises(RateLimited):
            ref.ask(TickerRequest(MARKETS), timeout=WAIT)
    health = _health(ref)
    assert health.consecutive_failures == 3 and health.paused_groups
    assert not health.banned
    assert _ask(ref, OrderbookRequest(MARKETS)).data  # another group still answers
    assert ref.is_alive()


def test_a_ban_is_seen_in_the_health_answer(quiet: Simulator, limiter: RateLimiter) -> None:
    ref = _start(quiet, limiter)
    quiet.faults.ban_418(60.0)
    with pytest.raises(QuotationError):
        ref.ask(TickerRequest(MARKETS), timeout=WAIT)
    health = _health(ref)
    assert health.banned and health.banned_until == limiter.status().banned_until
    assert health.failing


def test_a_black_hole_is_a_transport_error_after_the_read_timeout_and_the_actor_lives(
    quiet: Simulator, limiter: RateLimiter
) -> None:
    with RestClient(RestConfig(base_url=quiet.base_url), limiter=limiter) as warm:
        warm.get_tickers(MARKETS)  # the markets' history is made now, not within 0.3 s later
    config = RestConfig(base_url=quiet.base_url, read_timeout=0.3, total_timeout=1.0)
    ref = _start(quiet, limiter, config=config)
    quiet.faults.black_hole()
    with pytest.raises(TransportError):
        ref.ask(TickerRequest(MARKETS), timeout=WAIT)
    quiet.faults.black_hole(False)
    assert _ask(ref, TickerRequest(MARKETS)).data


def test_an_invalid_request_passes_through_and_is_not_a_failure(
    quiet: Simulator, limiter: RateLimiter
) -> None:
    ref = _start(quiet, limiter)
    with pytest.raises(InvalidRequest):
        ref.ask(TickerRequest(("KRW-NOPE",)), timeout=WAIT)
    with pytest.raises(InvalidRequest):
        ref.ask(TradesRequest("KRW-BTC", 0), timeout=WAIT)
    assert _health(ref).consecutive_failures == 0
    assert ref.is_alive()


# -- the shared limiter --------------------------------------------------------------------


def test_the_limiter_is_the_one_passed_in(quiet: Simulator, limiter: RateLimiter) -> None:
    ref = _start(quiet, limiter)
    assert ref.proxy().limiter.get(timeout=WAIT) is limiter


def test_two_fallbacks_and_a_client_on_one_limiter_never_exceed_the_servers_budget(
    sim_factory: Callable[..., Simulator], limiter: RateLimiter
) -> None:
    sim = sim_factory(seed=1, auto_trade=False)  # the server enforces Upbit's 10/s per group
    config = RestConfig(base_url=sim.base_url, rate_limit_retries=0)
    first, second = _start(sim, limiter, config=config), _start(sim, limiter, config=config)
    errors: list[Exception] = []

    def hammer(ask: Callable[[], object]) -> None:
        try:
            for _ in range(8):
                ask()
        except Exception as error:  # collected for the assertion
            errors.append(error)

    with RestClient(config, limiter=limiter) as client:
        threads = [
            threading.Thread(target=hammer, args=(lambda: _ask(first, TickerRequest(MARKETS)),)),
            threading.Thread(target=hammer, args=(lambda: _ask(second, TickerRequest(MARKETS)),)),
            threading.Thread(target=hammer, args=(lambda: client.get_tickers(MARKETS),)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT * 2)
    assert errors == []  # 24 requests within one budget: the server never said 429


# -- fault injection -----------------------------------------------------------------------


@pytest.mark.parametrize("point", ["request", "normalize"])
def test_an_injected_raise_reaches_the_asker_and_the_actor_lives_on(
    quiet: Simulator, limiter: RateLimiter, board: FaultBoard, point: str
) -> None:
    ref = _start(quiet, limiter, faults=board)
    board.inject("rest_fallback", "raise", point=point, count=1)
    with pytest.raises(InjectedFault):
        ref.ask(TickerRequest(MARKETS), timeout=WAIT)
    assert _health(ref).consecutive_failures == 1
    assert _ask(ref, TickerRequest(MARKETS)).data


class _Observed(RestFallback):
    """Records whether the client was closed when the actor failed."""

    closed_on_failure: threading.Event

    def on_failure(self, *exc_info: object) -> None:
        super().on_failure(*exc_info)  # type: ignore[arg-type]
        if self.client is None:
            self.closed_on_failure.set()


@pytest.mark.parametrize("point", ["request", "normalize"])
def test_an_injected_crash_reaches_the_asker_and_the_actor_dies_with_its_client_closed(
    quiet: Simulator, limiter: RateLimiter, board: FaultBoard, point: str
) -> None:
    closed = threading.Event()
    _Observed.closed_on_failure = closed
    ref = _Observed.start(RestConfig(base_url=quiet.base_url), limiter, faults=board)
    board.inject("rest_fallback", "crash", point=point, count=1)
    with pytest.raises(InjectedCrash):
        ref.ask(TickerRequest(MARKETS), timeout=WAIT)
    assert ref.actor_stopped.wait(WAIT)
    assert not ref.is_alive()
    assert closed.wait(WAIT)  # pykka calls on_failure just after it marks the actor stopped
    with pytest.raises(pykka.ActorDeadError):
        ref.ask(TickerRequest(MARKETS), timeout=WAIT)


def test_an_injected_start_failure_keeps_the_actor_from_starting(
    quiet: Simulator, limiter: RateLimiter, board: FaultBoard
) -> None:
    board.inject("rest_fallback", "fail_start", count=1)
    ref = _start(quiet, limiter, faults=board)
    assert ref.actor_stopped.wait(WAIT)
    with pytest.raises(pykka.ActorDeadError):
        ref.ask(HealthRequest(), timeout=WAIT)
    assert _start(quiet, limiter, faults=board).ask(HealthRequest(), timeout=WAIT)


@pytest.mark.parametrize("point", ["start", "request", "normalize"])
def test_an_injected_delay_sleeps_on_the_boards_clock(
    quiet: Simulator, limiter: RateLimiter, board: FaultBoard, clock: ManualClock, point: str
) -> None:
    board.inject("rest_fallback", "delay", point=point, seconds=2.5, count=1)
    ref = _start(quiet, limiter, faults=board)
    assert _ask(ref, TickerRequest(MARKETS)).data
    assert clock.sleeps == [2.5]


def test_a_corrupted_normalize_is_a_format_error_to_the_asker(
    quiet: Simulator, limiter: RateLimiter, board: FaultBoard
) -> None:
    ref = _start(quiet, limiter, faults=board)
    board.inject("rest_fallback", "corrupt", point="normalize", count=2)
    with pytest.raises(FormatError):
        ref.ask(TickerRequest(MARKETS), timeout=WAIT)
    with pytest.raises(FormatError):  # an empty answer is spoiled too
        ref.ask(TradesRequest("KRW-BTC", 1), timeout=WAIT)
    assert _health(ref).consecutive_failures == 2
    assert _ask(ref, TickerRequest(MARKETS)).data


@pytest.mark.parametrize("point", ["request", "normalize"])
def test_an_injected_hang_blocks_the_request_until_cleared(
    quiet: Simulator, limiter: RateLimiter, board: FaultBoard, point: str
) -> None:
    ref = _start(quiet, limiter, faults=board)
    injection = board.inject("rest_fallback", "hang", point=point)
    pending = ref.ask(TickerRequest(MARKETS), block=False)
    assert board.wait_hanging(1, WAIT)
    with pytest.raises(pykka.Timeout):
        pending.get(timeout=0.05)
    injection.clear()
    assert isinstance(pending.get(timeout=WAIT), Reply)


def test_a_hang_at_start_holds_the_start_until_cleared(
    quiet: Simulator, limiter: RateLimiter, board: FaultBoard
) -> None:
    injection = board.inject("rest_fallback", "hang", point="start")
    ref = _start(quiet, limiter, faults=board)
    assert board.wait_hanging(1, WAIT)
    pending = ref.ask(HealthRequest(), block=False)
    injection.clear()
    assert isinstance(pending.get(timeout=WAIT), RestHealth)


@pytest.mark.parametrize("point", ["request", "normalize"])
def test_injected_memory_growth_is_held_by_the_board_until_cleared(
    quiet: Simulator, limiter: RateLimiter, board: FaultBoard, point: str
) -> None:
    ref = _start(quiet, limiter, faults=board)
    injection = board.inject("rest_fallback", "memory_growth", point=point, count=2)
    for _ in range(2):
        assert _ask(ref, TickerRequest(MARKETS)).data
    assert board.held_bytes == 2 * 4096
    injection.clear()
    assert board.held_bytes == 0
