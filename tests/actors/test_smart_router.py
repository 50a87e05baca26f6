"""Rule family: the smart router against the simulator — which channel answers, demand turning
into subscriptions, the board read from another thread, degraded mode, coalescing, every
fault kind at every point of the router, and a stop that leaves nothing behind.

A quiet simulator (``auto_trade=False``) sends only the SNAPSHOTs of a subscription, so the
board changes only when the test moves the router's ``ManualClock``; the degraded and crash
tests use the real clock (the WebSocket client's reconnect backoff must really wait).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pykka
import pytest

from actors.faults import (
    ActorName,
    FaultBoard,
    FaultKind,
    FaultPoint,
    InjectedCrash,
    InjectedFault,
    InjectedStartFailure,
)
from actors.messages import (
    CandlesRequest,
    HealthRequest,
    OrderbookRequest,
    ProbeRequest,
    Reply,
    RouterStatus,
    Source,
    TickerRequest,
    TradesRequest,
)
from actors.routing import RoutingRules
from actors.smart_router import SmartRouter
from actors.snapshots import SnapshotBoard
from quotation.backoff import Backoff, Jitter
from quotation.clock import Clock
from quotation.errors import FormatError, InvalidRequest, ServerError
from quotation.models import CandleInterval, Orderbook, Ticker, Trade
from quotation.rest import RateLimiter, RestConfig
from quotation.websocket import WebSocketConfig
from tests.fakes import ManualClock
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(30)

WAIT = 10.0
"""Real seconds a test waits for another thread or the simulator before failing."""
BTC, ETH, XRP = "KRW-BTC", "KRW-ETH", "KRW-XRP"
RULES = RoutingRules(max_cache_age=2.0, hot_threshold=2, hot_window=10.0, cold_after=60.0)
R = ActorName.SMART_ROUTER
WS_THREADS = ("ws-receive", "ws-delivery", "ws-gapfill")
T = TypeVar("T")


def eventually(probe: Callable[[], T | None], what: str, timeout: float = WAIT) -> T:
    """Poll ``probe`` until it returns something truthy (real time, bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def faults() -> Iterator[FaultBoard]:
    board = FaultBoard(enabled=True)
    yield board
    board.clear_all()


class Router:
    """A started router and what a test reads of it."""

    def __init__(self, sim: Simulator, limiter: RateLimiter, *, clock: Clock | None,
                 faults: FaultBoard | None = None, rules: RoutingRules = RULES) -> None:
        self.board = SnapshotBoard()
        self.rules = rules
        self.clock = clock
        ws = WebSocketConfig(url=sim.ws_url, connect_timeout=2.0,
                             backoff=Backoff(initial=0.05, multiplier=2.0, cap=0.2,
                                             jitter=Jitter.NONE))
        self.ref = SmartRouter.start(RestConfig(base_url=sim.base_url), ws, limiter,
                                     rules=rules, snapshots=self.board, faults=faults,
                                     clock=clock)

    def ask(self, message: object) -> Any:
        return self.ref.ask(message, timeout=WAIT)

    def status(self) -> RouterStatus:
        status = self.ask(HealthRequest())
        assert isinstance(status, RouterStatus)
        return status

    def make_hot(self, *markets: str) -> None:
        """Ask until ``markets`` are subscribed and their tickers, books and trades are on
        the board."""
        for _ in range(self.rules.hot_threshold):
            self.ask(TickerRequest(markets))
        eventually(lambda: all(m in self.board.snapshot.tickers
                               and m in self.board.snapshot.orderbooks
                               and m in self.board.snapshot.trades for m in markets)
                   and self.status().connection.state.value == "live",
                   f"{markets} on the board")


@pytest.fixture
def manual() -> ManualClock:
    return ManualClock()


def test_a_fresh_cache_answers_from_the_websocket_without_a_rest_call(
    quiet: Simulator, limiter: RateLimiter, manual: ManualClock
) -> None:
    router = Router(quiet, limiter, clock=manual)
    router.make_hot(BTC, ETH)
    before = router.status().rest_calls
    quiet.faults.fail_next(10, 500, path_prefix="/v1/")  # any REST call would now fail
    tickers = router.ask(TickerRequest((ETH, BTC)))
    books = router.ask(OrderbookRequest((BTC,)))
    trades = router.ask(TradesRequest(BTC, 1))
    for reply, kind in ((tickers, Ticker), (books, Orderbook), (trades, Trade)):
        assert reply.source is Source.SMART_ROUTER_WEBSOCKET
        assert all(isinstance(item, kind) for item in reply.data)
    assert [t.market for t in tickers.data] == [ETH, BTC]
    status = router.status()
    assert status.rest_calls == before
    assert status.ws_answers == 3
    assert status.subscribed == (BTC, ETH) or set(status.subscribed) == {BTC, ETH}


def test_a_stale_or_missing_entry_sends_the_request_to_rest(
    quiet: Simulator, limiter: RateLimiter, manual: ManualClock
) -> None:
    router = Router(quiet, limiter, clock=manual)
    router.make_hot(BTC)
    assert router.ask(TickerRequest((BTC,))).source is Source.SMART_ROUTER_WEBSOCKET
    manual.advance(2.5)  # the quiet market sent nothing since: its entry is stale
    assert router.ask(TickerRequest((BTC,))).source is Source.SMART_ROUTER_REST
    mixed = router.ask(TickerRequest((BTC, XRP)))  # XRP was never subscribed
    assert mixed.source is Source.SMART_ROUTER_REST
    assert [t.market for t in mixed.data] == [BTC, XRP]


def test_trades_beyond_the_cached_window_and_candles_come_from_rest(
    quiet: Simulator, limiter: RateLimiter, manual: ManualClock
) -> None:
    router = Router(quiet, limiter, clock=manual)
    router.make_hot(BTC)
    cached = len(router.board.snapshot.trades[BTC])
    more = router.ask(TradesRequest(BTC, cached + 1))
    assert more.source is Source.SMART_ROUTER_REST
    assert len(more.data) == cached + 1
    candles = router.ask(CandlesRequest(BTC, CandleInterval.MINUTE_1, 5))
    assert candles.source is Source.SMART_ROUTER_REST
    assert len(candles.data) == 5
    assert candles.produced_at == manual.time()  # a REST series stands as of its answer


def test_a_market_asked_for_often_becomes_subscribed(
    quiet: Simulator, limiter: RateLimiter, manual: ManualClock
) -> None:
    router = Router(quiet, limiter, clock=manual)
    first = router.ask(TickerRequest((BTC,)))
    assert first.source is Source.SMART_ROUTER_REST
    assert router.status().subscribed == ()
    assert router.status().connection.state.value == "idle"
    router.ask(TickerRequest((BTC,)))
    assert router.status().subscribed == (BTC,)
    eventually(lambda: BTC in router.board.snapshot.tickers, "BTC's ticker on the board")
    eventually(lambda: router.ask(TickerRequest((BTC,))).source
               is Source.SMART_ROUTER_WEBSOCKET, "an answer from the websocket")


def test_the_board_read_on_another_thread_gives_the_actors_answer_without_an_ask(
    quiet: Simulator, limiter: RateLimiter, manual: ManualClock
) -> None:
    router = Router(quiet, limiter, clock=manual)
    router.make_hot(BTC, ETH)
    request = TickerRequest((BTC, ETH))
    read: list[Reply | None] = []
    reader = threading.Thread(
        target=lambda: read.append(router.board.answer(request, manual.monotonic(), RULES)))
    reader.start()
    reader.join(WAIT)
    asked = router.ask(request)
    assert read == [asked]
    manual.advance(2.5)
    assert router.board.answer(request, manual.monotonic(), RULES) is None


def test_a_probe_always_tests_rest(
    quiet: Simulator, limiter: RateLimiter, manual: ManualClock
) -> None:
    router = Router(quiet, limiter, clock=manual)
    router.make_hot(BTC)
    reply = router.ask(ProbeRequest(BTC))
    assert reply.source is Source.SMART_ROUTER_REST
    assert [t.market for t in reply.data] == [BTC]
    quiet.faults.fail_next(1, 500, path_prefix="/v1/ticker")
    with pytest.raises(ServerError):
        router.ask(ProbeRequest(BTC))


def test_identical_requests_queued_behind_a_rest_call_share_its_answer(
    quiet: Simulator, limiter: RateLimiter, manual: ManualClock
) -> None:
    router = Router(quiet, limiter, clock=manual,
                    rules=RoutingRules(hot_threshold=100, coalesce_window=0.125))
    quiet.faults.set_latency(0.3, path_prefix="/v1/ticker")
    request = TickerRequest((BTC, ETH, XRP))  # batched: one REST call for three markets
    futures = [router.ref.ask(request, block=False) for _ in range(3)]
    replies = [future.get(timeout=WAIT) for future in futures]
    assert replies[0] == replies[1] == replies[2]
    assert [t.market for t in replies[0].data] == [BTC, ETH, XRP]
    status = router.status()
    assert (status.rest_calls, status.coalesced) == (1, 2)
    manual.advance(0.25)  # the kept answer is older than the window now
    router.ask(request)
    assert router.status().rest_calls == 2


def test_an_invalid_request_reaches_the_caller_unchanged(
    quiet: Simulator, limiter: RateLimiter, manual: ManualClock
) -> None:
    router = Router(quiet, limiter, clock=manual)
    with pytest.raises(InvalidRequest):
        router.ask(TickerRequest(("KRW-NOPE",)))
    assert router.ref.is_alive()
    with pytest.raises(TypeError, match="str"):
        router.ask("hello")


def test_a_dropped_websocket_degrades_the_router_to_rest_and_recovery_clears_it(
    quiet: Simulator, limiter: RateLimiter
) -> None:
    router = Router(quiet, limiter, clock=None,
                    rules=RoutingRules(max_cache_age=60.0, hot_threshold=2))
    router.make_hot(BTC)
    assert router.ask(TickerRequest((BTC,))).source is Source.SMART_ROUTER_WEBSOCKET
    assert not router.status().degraded
    quiet.ws.set_accepting(False)
    quiet.ws.drop_all()
    eventually(lambda: router.status().degraded, "degraded")
    assert router.status().reason is not None
    reply = router.ask(TickerRequest((BTC,)))  # fresh by age, but the WebSocket is down
    assert reply.source is Source.SMART_ROUTER_REST
    assert router.board.answer(TickerRequest((BTC,)), time.monotonic(), router.rules) is None
    quiet.ws.set_accepting(True)
    eventually(lambda: not router.status().degraded, "recovered")
    eventually(lambda: router.ask(TickerRequest((BTC,))).source
               is Source.SMART_ROUTER_WEBSOCKET, "the websocket answering again")


# -- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize("point", [FaultPoint.REQUEST, FaultPoint.NORMALIZE])
def test_an_injected_raise_reaches_the_asker_and_the_router_lives_on(
    quiet: Simulator, limiter: RateLimiter, manual: ManualClock, faults: FaultBoard,
    point: FaultPoint,
) -> None:
    router = Router(quiet, limiter, clock=manual, faults=faults)
    faults.inject(R, FaultKind.RAISE, point=point, count=1)
    with pytest.raises(InjectedFault):
        router.ask(TickerRequest((BTC,)))
    assert router.ask(TickerRequest((BTC,))).data[0].market == BTC


@pytest.mark.parametrize("point", [FaultPoint.REQUEST, FaultPoint.NORMALIZE])
def test_an_injected_crash_reaches_the_asker_and_the_router_dies_closing_its_clients(
    quiet: Simulator, limiter: RateLimiter, faults: FaultBoard, point: FaultPoint,
) -> None:
    router = Router(quiet, limiter, clock=None, faults=faults)
    router.make_hot(BTC)
    faults.inject(R, FaultKind.CRASH, point=point, count=1)
    with pytest.raises(InjectedCrash):
        router.ask(OrderbookRequest((ETH,)))
    eventually(lambda: not router.ref.is_alive(), "the router dead")
    assert_nothing_left(quiet, router)


@pytest.mark.parametrize("fresh", [False, True], ids=["rest", "websocket"])
def test_a_corrupted_normalization_surfaces_as_a_format_error(
    quiet: Simulator, limiter: RateLimiter, manual: ManualClock, faults: FaultBoard,
    fresh: bool,
) -> None:
    router = Router(quiet, limiter, clock=manual, faults=faults)
    if fresh:
        router.make_hot(BTC)
    faults.inject(R, FaultKind.CORRUPT, point=FaultPoint.NORMALIZE, count=1)
    with pytest.raises(FormatError):
        router.ask(TickerRequest((BTC,)))
    expected = Source.SMART_ROUTER_WEBSOCKET if fresh else Source.SMART_ROUTER_REST
    assert router.ask(TickerRequest((BTC,))).source is expected


def test_a_hang_blocks_the_router_until_cleared_and_a_delay_only_slows_it(
    quiet: Simulator, limiter: RateLimiter, manual: ManualClock
) -> None:
    faults = FaultBoard(enabled=True, clock=manual)
    router = Router(quiet, limiter, clock=manual, faults=faults)
    hang = faults.inject(R, FaultKind.HANG, point=FaultPoint.REQUEST)
    future = router.ref.ask(TickerRequest((BTC,)), block=False)
    assert faults.wait_hanging(1, WAIT)
    with pytest.raises(pykka.Timeout):
        future.get(timeout=0.05)
    hang.clear()
    assert future.get(timeout=WAIT).source is Source.SMART_ROUTER_REST
    faults.inject(R, FaultKind.DELAY, point=FaultPoint.NORMALIZE, seconds=1.5, count=1)
    before = manual.monotonic()
    router.ask(TickerRequest((ETH,)))  # not BTC again: that answer would be coalesced
    assert manual.monotonic() - before == 1.5
    faults.clear_all()


def test_memory_growth_at_a_request_is_held_and_the_request_still_answered(
    quiet: Simulator, limiter: RateLimiter, manual: ManualClock
) -> None:
    faults = FaultBoard(enabled=True, memory_chunk_bytes=4096)
    router = Router(quiet, limiter, clock=manual, faults=faults)
    faults.inject(R, FaultKind.MEMORY_GROWTH, point=FaultPoint.REQUEST, count=2)
    router.ask(TickerRequest((BTC,)))
    router.ask(TickerRequest((BTC,)))
    assert faults.held_bytes == 8192
    faults.clear_all()


def test_a_start_failure_escapes_and_opens_nothing(
    quiet: Simulator, limiter: RateLimiter, faults: FaultBoard,
    caplog: pytest.LogCaptureFixture,
) -> None:
    faults.inject(R, FaultKind.FAIL_START, count=1)
    before = quiet.ws.stats().connections
    board = SnapshotBoard()
    ref = SmartRouter.start(RestConfig(base_url=quiet.base_url), WebSocketConfig(url=quiet.ws_url),
                            limiter, snapshots=board, faults=faults)
    with pytest.raises(pykka.ActorDeadError):
        ref.ask(HealthRequest(), timeout=WAIT)
    assert faults.active() == ()
    assert not [t for t in threading.enumerate() if t.name in WS_THREADS]
    assert quiet.ws.stats().connections == before
    escaped = [r.exc_info[1] for r in caplog.records if r.exc_info]
    assert any(isinstance(error, InjectedStartFailure) for error in escaped)


@pytest.mark.parametrize("kind", [FaultKind.CORRUPT, FaultKind.RAISE])
def test_a_bad_websocket_message_stays_off_the_board_and_rest_answers(
    quiet: Simulator, limiter: RateLimiter, manual: ManualClock, faults: FaultBoard,
    kind: FaultKind,
) -> None:
    router = Router(quiet, limiter, clock=manual, faults=faults)
    faults.inject(R, kind, point=FaultPoint.WS_MESSAGE)
    for _ in range(RULES.hot_threshold):
        router.ask(TickerRequest((BTC,)))
    counted = "messages_malformed" if kind is FaultKind.CORRUPT else "messages_failed"
    eventually(lambda: getattr(router.status(), counted) >= 3, f"{counted} counted")
    assert router.board.snapshot.tickers == {}
    assert router.ask(TickerRequest((BTC,))).source is Source.SMART_ROUTER_REST


def test_a_crash_at_a_websocket_message_kills_the_router(
    quiet: Simulator, limiter: RateLimiter, faults: FaultBoard,
) -> None:
    router = Router(quiet, limiter, clock=None, faults=faults)
    faults.inject(R, FaultKind.CRASH, point=FaultPoint.WS_MESSAGE, count=1)
    for _ in range(RULES.hot_threshold):
        router.ask(TickerRequest((BTC,)))
    eventually(lambda: not router.ref.is_alive(), "the router dead")
    assert_nothing_left(quiet, router)


# -- stopping --------------------------------------------------------------------------------


def test_stopping_leaves_no_thread_socket_or_board_entry(
    quiet: Simulator, limiter: RateLimiter, manual: ManualClock
) -> None:
    router = Router(quiet, limiter, clock=manual)
    router.make_hot(BTC)
    router.ref.stop(timeout=WAIT)
    assert_nothing_left(quiet, router)


def assert_nothing_left(sim: Simulator, router: Router) -> None:
    eventually(lambda: not [t for t in threading.enumerate() if t.name in WS_THREADS],
               "the WebSocket threads gone")
    eventually(lambda: sim.ws.stats().connections == 0, "the connection closed")
    assert router.board.snapshot.tickers == {}
    assert not router.board.ws_healthy


def test_a_replaced_router_that_stops_late_leaves_its_successors_board_alone(
    sim: Simulator, limiter: RateLimiter,
) -> None:
    board = SnapshotBoard()
    ws = WebSocketConfig(url=sim.ws_url, connect_timeout=2.0)
    rest = RestConfig(base_url=sim.base_url)
    old = SmartRouter.start(rest, ws, limiter, rules=RULES, snapshots=board)
    new = SmartRouter.start(rest, ws, limiter, rules=RULES, snapshots=board)
    try:
        for _ in range(RULES.hot_threshold):
            new.ask(TickerRequest((BTC,)), timeout=WAIT)
        eventually(lambda: BTC in board.snapshot.tickers, "the new router's ticker on the board")
        old.stop(timeout=WAIT)  # the abandoned instance unblocks and closes
        snap = board.snapshot
        assert snap.markets == frozenset({BTC})
        assert BTC in snap.tickers
        heard = snap.heard_at[BTC]
        eventually(lambda: board.snapshot.heard_at.get(BTC, heard) > heard,
                   "the new router still publishing")
    finally:
        for ref in (old, new):
            if ref.is_alive():
                ref.stop(timeout=WAIT)
