"""The WebSocket fallback actor against the simulator: idle by design until activated, a
realtime cache that answers every request kind, a clean close on Deactivate and on stop
(no thread, no socket left), and every fault kind at each of its points."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pykka
import pytest

from actors.errors import NotCached
from actors.faults import FaultBoard, InjectedCrash, InjectedFault
from actors.messages import (
    Activate,
    CandlesRequest,
    Deactivate,
    HealthRequest,
    OrderbookRequest,
    Reply,
    Request,
    Source,
    TickerRequest,
    TradesRequest,
    WsHealth,
    produced_at,
)
from actors.ws_fallback import WsFallback
from quotation.errors import FormatError, InvalidRequest
from quotation.models import Candle, CandleInterval, Orderbook, Ticker, Trade
from quotation.websocket import (
    CloseReason,
    ConnectionState,
    LivenessConfig,
    WebSocketClient,
    WebSocketConfig,
)
from tests.fakes import ManualClock
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(30)

WAIT = 10.0
"""Real seconds a test waits for the simulator or another thread before failing."""

MARKETS = ("KRW-BTC", "KRW-ETH")
Ref = pykka.ActorRef[Any]
"""A ref to a WsFallback or a test subclass of it."""
LIVENESS = LivenessConfig(ping_interval=0.5, pong_timeout=2.0, idle_timeout=5.0)
"""Liveness ticks every 0.125 s, so an emptied subscription set closes at once."""

ALL_KINDS: tuple[Request, ...] = (
    TickerRequest(MARKETS),
    OrderbookRequest(MARKETS),
    *(TradesRequest(market, 1) for market in MARKETS),
    *(CandlesRequest(market, CandleInterval.MINUTE_1, 1) for market in MARKETS),
)


def _start(sim: Simulator, **kwargs: object) -> pykka.ActorRef[WsFallback]:
    config = WebSocketConfig(url=sim.ws_url, liveness=LIVENESS)
    return WsFallback.start(config, **kwargs)


def _client(ref: Ref) -> WebSocketClient:
    client = ref.proxy().client.get(timeout=WAIT)
    assert isinstance(client, WebSocketClient)
    return client


def _health(ref: Ref) -> WsHealth:
    health = ref.ask(HealthRequest(), timeout=WAIT)
    assert isinstance(health, WsHealth)
    return health


def _until(ref: Ref, probe: Callable[[], bool]) -> None:
    """Re-check ``probe`` each time the actor's client delivers a batch (the actor has it
    queued by then: its consumer tells it before ours runs), up to ``WAIT`` seconds."""
    arrived = threading.Event()
    remove = _client(ref).add_consumer(lambda batch: arrived.set())
    deadline = time.monotonic() + WAIT
    try:
        while True:
            arrived.clear()
            if probe():
                return
            left = deadline - time.monotonic()
            assert left > 0, "the condition never held"
            arrived.wait(min(left, 0.2))  # 0.2: a batch may have come before we listened
    finally:
        remove()


def _answered(ref: Ref, request: Request) -> Reply:
    replies: list[Reply] = []

    def answered() -> bool:
        try:
            reply = ref.ask(request, timeout=WAIT)
        except NotCached:
            return False
        assert isinstance(reply, Reply)
        replies.append(reply)
        return True

    _until(ref, answered)
    return replies[0]


def _activated(sim: Simulator, **kwargs: object) -> pykka.ActorRef[WsFallback]:
    """A fallback activated for ``MARKETS`` whose cache holds every kind of each."""
    ref = _start(sim, **kwargs)
    ref.ask(Activate(MARKETS), timeout=WAIT)
    for request in ALL_KINDS:
        _answered(ref, request)
    return ref


# -- standing by, activating, deactivating -------------------------------------------------


def test_it_stands_by_without_a_connection_until_activated(quiet: Simulator) -> None:
    ref = _start(quiet)
    health = _health(ref)
    assert health.idle_by_design and not health.active
    assert health.connection.state is ConnectionState.IDLE
    assert health.connection.subscriptions == 0 and health.connection.idle_since is not None
    assert quiet.ws.stats().connections == 0
    with pytest.raises(NotCached) as raised:
        ref.ask(TickerRequest(MARKETS), timeout=WAIT)
    assert raised.value.market == "KRW-BTC" and raised.value.available == 0


def test_activate_brings_every_kind_of_every_symbol_from_the_websocket(
    quiet: Simulator,
) -> None:
    ref = _activated(quiet)
    assert quiet.ws.stats().connections == 1
    kinds = {TickerRequest: Ticker, OrderbookRequest: Orderbook, TradesRequest: Trade,
             CandlesRequest: Candle}
    for request in ALL_KINDS:
        reply = ref.ask(request, timeout=WAIT)
        assert isinstance(reply, Reply)
        assert reply.source is Source.WS_FALLBACK
        assert all(isinstance(item, kinds[type(request)]) for item in reply.data)
        assert reply.produced_at is not None
        assert reply.produced_at == produced_at(reply.data)
        assert reply.produced_at <= time.time() + 1
    tickers = ref.ask(TickerRequest(MARKETS), timeout=WAIT)
    assert [t.market for t in tickers.data] == list(MARKETS)  # type: ignore[union-attr]
    health = _health(ref)
    assert health.active and health.symbols == MARKETS and health.last_item_at is not None
    assert health.connection.state is ConnectionState.LIVE
    assert health.connection.subscriptions == 4


def test_more_than_the_cache_holds_or_an_unstreamed_interval_is_not_cached(
    quiet: Simulator,
) -> None:
    ref = _activated(quiet)
    with pytest.raises(NotCached) as trades:
        ref.ask(TradesRequest("KRW-BTC", 50), timeout=WAIT)
    assert (trades.value.wanted, trades.value.available) == (50, 1)
    with pytest.raises(NotCached) as candles:
        ref.ask(CandlesRequest("KRW-BTC", CandleInterval.MINUTE_5, 1), timeout=WAIT)
    assert candles.value.kind == "candle.5m"
    with pytest.raises(NotCached):
        ref.ask(TickerRequest(("KRW-XRP",)), timeout=WAIT)  # not a trading symbol
    assert isinstance(NotCached("x", kind="k", market="m", wanted=1, available=0), LookupError)


def test_new_trades_and_candles_reach_the_cache_as_the_market_moves(quiet: Simulator) -> None:
    ref = _activated(quiet)
    for _ in range(40):
        quiet.engine.step()
    reply = _answered(ref, TradesRequest("KRW-BTC", 2))
    first, second = reply.data
    assert isinstance(first, Trade) and isinstance(second, Trade)
    assert first.timestamp >= second.timestamp  # newest first, as Upbit serves them
    assert reply.produced_at == first.timestamp.timestamp()


def test_an_invalid_symbol_to_activate_is_an_invalid_request_and_nothing_changes(
    quiet: Simulator,
) -> None:
    ref = _start(quiet)
    with pytest.raises(InvalidRequest):
        ref.ask(Activate(("krw-btc",)), timeout=WAIT)
    assert _health(ref).idle_by_design


def test_deactivate_closes_the_connection_on_purpose_and_the_client_is_idle_again(
    quiet: Simulator,
) -> None:
    ref = _activated(quiet)
    ref.ask(Deactivate(), timeout=WAIT)
    assert quiet.ws.wait_for(lambda stats: stats.connections == 0, WAIT)
    client = _client(ref)
    assert client.wait_until(lambda s: s.state is ConnectionState.IDLE, WAIT)
    health = _health(ref)
    assert health.idle_by_design
    assert health.connection.last_close is CloseReason.UNSUBSCRIBED
    assert health.connection.connect_failures == 0
    with pytest.raises(NotCached):  # what was cached before is not served after
        ref.ask(TickerRequest(MARKETS), timeout=WAIT)
    ref.ask(Activate(MARKETS), timeout=WAIT)  # and it comes back
    assert isinstance(_answered(ref, TickerRequest(MARKETS)), Reply)


def test_stopping_the_actor_leaves_no_thread_and_no_websocket_behind(quiet: Simulator) -> None:
    before = set(threading.enumerate())
    ref = _activated(quiet)
    ref.stop(timeout=WAIT)
    for thread in set(threading.enumerate()) - before:
        thread.join(WAIT)
        assert not thread.is_alive(), thread.name
    assert quiet.ws.wait_for(lambda stats: stats.connections == 0, WAIT)


def test_an_unknown_message_is_a_type_error_naming_it(quiet: Simulator) -> None:
    ref = _start(quiet)
    with pytest.raises(TypeError, match="object"):
        ref.ask(object(), timeout=WAIT)
    assert ref.is_alive()


# -- faults at the ask points (request, normalize) ------------------------------------------


@pytest.mark.parametrize("point", ["request", "normalize"])
def test_an_injected_raise_reaches_the_asker_and_the_actor_lives_on(
    quiet: Simulator, board: FaultBoard, point: str
) -> None:
    ref = _activated(quiet, faults=board)
    board.inject("ws_fallback", "raise", point=point, count=1)
    with pytest.raises(InjectedFault):
        ref.ask(TickerRequest(MARKETS), timeout=WAIT)
    assert isinstance(ref.ask(TickerRequest(MARKETS), timeout=WAIT), Reply)


class _Observed(WsFallback):
    """Records whether the client was stopped when the actor failed."""

    stopped_on_failure: threading.Event

    def on_failure(self, *exc_info: object) -> None:
        client = self.client
        super().on_failure(*exc_info)  # type: ignore[arg-type]
        if (self.client is None and client is not None
                and client.status().state is ConnectionState.STOPPED):
            self.stopped_on_failure.set()


def _dies_with_its_client_stopped(
    sim: Simulator, ref: Ref, stopped: threading.Event
) -> None:
    assert ref.actor_stopped.wait(WAIT)
    assert not ref.is_alive()
    assert stopped.wait(WAIT)  # pykka calls on_failure just after it marks the actor stopped
    assert sim.ws.wait_for(lambda stats: stats.connections == 0, WAIT)


@pytest.mark.parametrize("point", ["request", "normalize"])
def test_an_injected_crash_reaches_the_asker_and_the_actor_dies_with_its_client_stopped(
    quiet: Simulator, board: FaultBoard, point: str
) -> None:
    stopped = threading.Event()
    _Observed.stopped_on_failure = stopped
    ref = _Observed.start(WebSocketConfig(url=quiet.ws_url, liveness=LIVENESS), faults=board)
    ref.ask(Activate(MARKETS), timeout=WAIT)
    _answered(ref, TickerRequest(MARKETS))
    board.inject("ws_fallback", "crash", point=point, count=1)
    with pytest.raises(InjectedCrash):
        ref.ask(TickerRequest(MARKETS), timeout=WAIT)
    _dies_with_its_client_stopped(quiet, ref, stopped)


def test_a_corrupted_normalize_is_a_format_error_to_the_asker(
    quiet: Simulator, board: FaultBoard
) -> None:
    ref = _activated(quiet, faults=board)
    board.inject("ws_fallback", "corrupt", point="normalize", count=1)
    with pytest.raises(FormatError):
        ref.ask(OrderbookRequest(MARKETS), timeout=WAIT)
    assert isinstance(ref.ask(OrderbookRequest(MARKETS), timeout=WAIT), Reply)


@pytest.mark.parametrize("point", ["request", "normalize"])
def test_an_injected_hang_blocks_the_request_until_cleared(
    quiet: Simulator, board: FaultBoard, point: str
) -> None:
    ref = _activated(quiet, faults=board)
    injection = board.inject("ws_fallback", "hang", point=point)
    pending = ref.ask(TickerRequest(MARKETS), block=False)
    assert board.wait_hanging(1, WAIT)
    with pytest.raises(pykka.Timeout):
        pending.get(timeout=0.05)
    injection.clear()
    assert isinstance(pending.get(timeout=WAIT), Reply)


@pytest.mark.parametrize("point", ["request", "normalize"])
def test_an_injected_delay_sleeps_on_the_boards_clock(
    quiet: Simulator, board: FaultBoard, clock: ManualClock, point: str
) -> None:
    ref = _activated(quiet, faults=board)
    board.inject("ws_fallback", "delay", point=point, seconds=1.5, count=1)
    assert isinstance(ref.ask(TickerRequest(MARKETS), timeout=WAIT), Reply)
    assert clock.sleeps == [1.5]


@pytest.mark.parametrize("point", ["request", "normalize"])
def test_injected_memory_growth_is_held_by_the_board_until_cleared(
    quiet: Simulator, board: FaultBoard, point: str
) -> None:
    ref = _activated(quiet, faults=board)
    injection = board.inject("ws_fallback", "memory_growth", point=point, count=1)
    assert isinstance(ref.ask(TickerRequest(MARKETS), timeout=WAIT), Reply)
    assert board.held_bytes == 4096
    injection.clear()
    assert board.held_bytes == 0


# -- faults at start -------------------------------------------------------------------------


def test_an_injected_start_failure_keeps_the_actor_from_starting_or_connecting(
    quiet: Simulator, board: FaultBoard
) -> None:
    board.inject("ws_fallback", "fail_start", count=1)
    ref = _start(quiet, faults=board)
    assert ref.actor_stopped.wait(WAIT)
    with pytest.raises(pykka.ActorDeadError):
        ref.ask(HealthRequest(), timeout=WAIT)
    assert quiet.ws.stats().connections == 0


def test_a_delay_and_a_hang_at_start_hold_the_start(
    quiet: Simulator, board: FaultBoard, clock: ManualClock
) -> None:
    board.inject("ws_fallback", "delay", point="start", seconds=3.0, count=1)
    assert _health(_start(quiet, faults=board)).idle_by_design
    assert clock.sleeps == [3.0]
    injection = board.inject("ws_fallback", "hang", point="start")
    ref = _start(quiet, faults=board)
    assert board.wait_hanging(1, WAIT)
    pending = ref.ask(HealthRequest(), block=False)
    injection.clear()
    assert isinstance(pending.get(timeout=WAIT), WsHealth)


# -- faults at ws_message (a tell point: the items, not an asker, suffer) --------------------


def test_items_failing_at_ws_message_are_counted_and_never_served(
    quiet: Simulator, board: FaultBoard
) -> None:
    board.inject("ws_fallback", "raise", point="ws_message")
    ref = _start(quiet, faults=board)
    ref.ask(Activate(MARKETS), timeout=WAIT)
    _until(ref, lambda: _health(ref).messages_failed >= 8)  # 4 kinds x 2 snapshots
    with pytest.raises(NotCached):
        ref.ask(TickerRequest(MARKETS), timeout=WAIT)
    assert ref.is_alive()


def test_items_corrupted_at_ws_message_are_malformed_and_never_served(
    quiet: Simulator, board: FaultBoard
) -> None:
    board.inject("ws_fallback", "corrupt", point="ws_message")
    ref = _start(quiet, faults=board)
    ref.ask(Activate(MARKETS), timeout=WAIT)
    _until(ref, lambda: _health(ref).messages_malformed >= 8)
    with pytest.raises(NotCached):
        ref.ask(OrderbookRequest(MARKETS), timeout=WAIT)
    board.clear_all()
    for _ in range(40):
        quiet.engine.step()  # fresh items, no fault now
    assert isinstance(_answered(ref, TradesRequest("KRW-BTC", 1)), Reply)


def test_a_crash_at_ws_message_kills_the_actor_and_stops_its_client(
    quiet: Simulator, board: FaultBoard
) -> None:
    stopped = threading.Event()
    _Observed.stopped_on_failure = stopped
    ref = _Observed.start(WebSocketConfig(url=quiet.ws_url, liveness=LIVENESS), faults=board)
    board.inject("ws_fallback", "crash", point="ws_message", count=1)
    ref.ask(Activate(MARKETS), timeout=WAIT)
    _dies_with_its_client_stopped(quiet, ref, stopped)


def test_a_hang_at_ws_message_blocks_the_actor_until_cleared(
    quiet: Simulator, board: FaultBoard
) -> None:
    injection = board.inject("ws_fallback", "hang", point="ws_message")
    ref = _start(quiet, faults=board)
    ref.ask(Activate(MARKETS), timeout=WAIT)
    assert board.wait_hanging(1, WAIT)
    pending = ref.ask(HealthRequest(), block=False)
    with pytest.raises(pykka.Timeout):
        pending.get(timeout=0.05)
    injection.clear()
    assert isinstance(pending.get(timeout=WAIT), WsHealth)
    assert isinstance(_answered(ref, TickerRequest(MARKETS)), Reply)


def test_delay_and_memory_growth_at_ws_message_let_the_items_through(
    quiet: Simulator, board: FaultBoard, clock: ManualClock
) -> None:
    board.inject("ws_fallback", "delay", point="ws_message", seconds=0.25, count=1)
    growth = board.inject("ws_fallback", "memory_growth", point="ws_message", count=1)
    ref = _activated(quiet, faults=board)
    assert clock.sleeps == [0.25]
    assert board.held_bytes == 4096
    growth.clear()
    assert board.held_bytes == 0
    assert isinstance(ref.ask(TickerRequest(MARKETS), timeout=WAIT), Reply)
