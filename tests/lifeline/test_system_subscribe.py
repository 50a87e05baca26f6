"""MarketDataSystem.subscribe against the simulator (markets still unless a test trades them),
on the shortened timings of test_system: trades in the exchange's order from the router's
WebSocket at Level 0, from the WebSocket fallback across a forced Level 2 without duplicates,
close() and a raising callback; and the dispatcher's drop-oldest bound on its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from actors.messages import Source
from lifeline import Level, MarketDataSystem, Update
from lifeline.answer import AnswerSource
from lifeline.subscriptions import Dispatcher, StreamKind
from quotation.clock import SystemClock
from quotation.errors import InvalidRequest
from quotation.models import Change, Side, StreamType, Trade
from tests.lifeline.system_support import started_system
from tests.lifeline.test_system import WAIT, Levels, config_for, wait_until, ws_health
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(60)

BTC, XRP = "KRW-BTC", "KRW-XRP"


class Collected:
    """A callback that keeps every update; waits for a condition on them."""

    def __init__(self) -> None:
        self.updates: list[Update[Any]] = []
        self._changed = threading.Condition()

    def __call__(self, update: Update[Any]) -> None:
        with self._changed:
            self.updates.append(update)
            self._changed.notify_all()

    def trade_ids(self) -> list[int]:
        with self._changed:
            return [u.data.sequential_id for u in self.updates]

    def wait_for(self, predicate: Callable[[list[Update[Any]]], bool],
                 timeout: float = WAIT) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self.updates), timeout):
                raise AssertionError(f"not seen after {timeout} s: {len(self.updates)} updates")

    def has_ids(self, ids: list[int]) -> Callable[[list[Update[Any]]], bool]:
        wanted = set(ids)
        return lambda updates: wanted <= {u.data.sequential_id for u in updates}


@pytest.fixture
def sim(sim_factory: Callable[..., Simulator]) -> Simulator:
    return sim_factory(seed=1, auto_trade=False, rate_limit=None)


@pytest.fixture
def system(sim: Simulator) -> Iterator[MarketDataSystem]:
    with started_system(config_for(sim)) as started:
        yield started


def trade(sim: Simulator, market: str, n: int = 1) -> list[int]:
    return [t.sequential_id for t in sim.engine.step_market(market, n)]


def in_exchange_order(updates: list[Update[Any]], log: list[int]) -> bool:
    """Realtime trades come in the exchange's order. A connection's first trade is a SNAPSHOT
    of the latest trade when it subscribed, which may overtake one traded just before."""
    position = {sequential_id: n for n, sequential_id in enumerate(log)}
    realtime = [position[u.data.sequential_id] for u in updates
                if u.data.stream_type is StreamType.REALTIME]
    return realtime == sorted(realtime)


def first_update(sim: Simulator, seen: Collected, *, source: Source,
                 market: str = BTC) -> None:
    """Trade ``market`` until an update from ``source`` arrives (the stream is live)."""
    deadline = time.monotonic() + WAIT
    while not any(u.source is source for u in list(seen.updates)):
        assert time.monotonic() < deadline, f"no update from {source} within {WAIT} s"
        trade(sim, market)
        time.sleep(0.05)


def test_subscribing_trades_at_level_0_delivers_them_in_the_exchanges_order(
    system: MarketDataSystem, sim: Simulator
) -> None:
    seen = Collected()
    sub = system.subscribe("trade", [BTC], seen)
    first_update(sim, seen, source=Source.SMART_ROUTER_WEBSOCKET)
    stepped = [i for _ in range(4) for i in trade(sim, BTC, 5)]
    seen.wait_for(seen.has_ids(stepped))
    ids = seen.trade_ids()
    log = [t.sequential_id for t in sim.engine.trades(BTC)]
    start = min(log.index(i) for i in ids)
    assert sorted(ids, key=log.index) == log[start:]  # every trade since the first, once
    assert in_exchange_order(seen.updates, log)
    assert ids[-len(stepped):] == stepped
    for update in seen.updates:
        assert update.source is Source.SMART_ROUTER_WEBSOCKET
        assert update.level is Level.NORMAL
        assert update.data.market == BTC
        assert update.age >= 0
    sub.close()


def test_trades_keep_arriving_from_the_websocket_fallback_across_level_2_without_duplicates(
    system: MarketDataSystem, sim: Simulator
) -> None:
    levels = Levels(system)
    seen, others = Collected(), Collected()
    system.subscribe("trade", [BTC], seen)
    system.subscribe("ticker", [XRP], others)  # not a trading symbol: added while subscribed
    first_update(sim, seen, source=Source.SMART_ROUTER_WEBSOCKET)
    system.faults.inject("smart_router", "crash", point="request")
    levels.wait_for(Level.FALLBACK)
    assert set(ws_health(system).symbols) == {"KRW-BTC", "KRW-ETH", XRP}
    first_update(sim, seen, source=Source.WS_FALLBACK)
    stepped = trade(sim, BTC, 10)
    seen.wait_for(seen.has_ids(stepped))
    later = [u for u in seen.updates if u.data.sequential_id in stepped]
    assert {u.source for u in later} == {Source.WS_FALLBACK}
    assert {u.level for u in later} == {Level.FALLBACK}
    first_update(sim, others, source=Source.WS_FALLBACK, market=XRP)
    system.faults.clear_all()
    levels.wait_for(Level.NORMAL)
    first_update(sim, seen, source=Source.SMART_ROUTER_WEBSOCKET)
    stepped = trade(sim, BTC, 10)
    seen.wait_for(seen.has_ids(stepped))
    ids = seen.trade_ids()
    assert len(ids) == len(set(ids)), "a trade was delivered twice"
    log = [t.sequential_id for t in sim.engine.trades(BTC)]
    assert in_exchange_order(seen.updates, log)


def test_close_stops_delivery_and_can_be_called_twice(
    system: MarketDataSystem, sim: Simulator
) -> None:
    closed, witness = Collected(), Collected()
    sub = system.subscribe("trade", BTC, closed)
    system.subscribe("trade", [BTC], witness)
    first_update(sim, closed, source=Source.SMART_ROUTER_WEBSOCKET)
    sub.close()
    sub.close()
    assert sub.closed
    before = len(closed.updates)
    stepped = trade(sim, BTC, 5)
    witness.wait_for(witness.has_ids(stepped))
    assert len(closed.updates) == before


def test_a_raising_callback_does_not_stop_the_others(
    system: MarketDataSystem, sim: Simulator
) -> None:
    calls: list[Update[Any]] = []

    def broken(update: Update[Any]) -> None:
        calls.append(update)
        raise RuntimeError("the host's bug")

    witness = Collected()
    bad = system.subscribe("trade", [BTC], broken)
    system.subscribe("trade", [BTC], witness)
    first_update(sim, witness, source=Source.SMART_ROUTER_WEBSOCKET)
    stepped = trade(sim, BTC, 5)
    witness.wait_for(witness.has_ids(stepped))
    assert {u.data.sequential_id for u in calls} >= set(stepped)
    assert bad.failures == len(calls)
    assert not bad.closed


def test_a_bad_kind_market_or_callback_is_refused_at_once(system: MarketDataSystem) -> None:
    with pytest.raises(InvalidRequest):
        system.subscribe("candle.5m", [BTC], print)
    with pytest.raises(InvalidRequest):
        system.subscribe("trade", ["BTC"], print)
    with pytest.raises(InvalidRequest):
        system.subscribe("trade", [], print)
    with pytest.raises(TypeError):
        system.subscribe("trade", [BTC], "not callable")  # type: ignore[arg-type]


def _trade(sequential_id: int) -> Trade:
    return Trade(BTC, sequential_id, datetime.now(UTC), 1.0, 1.0, Side.BID, 1.0, 0.0, 0.0,
                 Change.EVEN)


def test_a_slow_callback_never_blocks_an_offer_and_the_oldest_updates_are_dropped() -> None:
    release, entered = threading.Event(), threading.Event()
    got: list[int] = []

    def slow(update: Update[Any]) -> None:
        entered.set()
        release.wait(WAIT)
        got.append(update.data.sequential_id)

    dispatcher = Dispatcher(SystemClock(), lambda: Level.NORMAL, capacity=3)
    dispatcher.start()
    try:
        dispatcher.add(StreamKind.TRADE, (BTC,), slow)
        dispatcher.offer([_trade(1)], Source.SMART_ROUTER_WEBSOCKET)
        assert entered.wait(WAIT)  # the callback holds the dispatcher thread
        began = time.monotonic()
        dispatcher.offer([_trade(i) for i in range(2, 8)], Source.SMART_ROUTER_WEBSOCKET)
        dispatcher.offer([_trade(1)], Source.WS_FALLBACK)  # a duplicate, from the other side
        assert time.monotonic() - began < 0.1
        assert dispatcher.dropped == 4  # 2..5 went: 6, 7 and the duplicate were kept
        release.set()
        wait_until(lambda: got == [1, 6, 7] and dispatcher.duplicates == 1)
        dispatcher.offer([_trade(8)], Source.SMART_ROUTER_WEBSOCKET)
        wait_until(lambda: got == [1, 6, 7, 8])
    finally:
        release.set()
        dispatcher.stop()
    assert dispatcher.subscriptions == ()


def test_router_items_are_not_taken_once_the_router_is_out() -> None:
    level = [Level.FALLBACK]
    got: list[AnswerSource] = []
    dispatcher = Dispatcher(SystemClock(), lambda: level[0])
    dispatcher.start()
    try:
        dispatcher.add(StreamKind.TRADE, (BTC,), lambda u: got.append(u.source))
        dispatcher.offer([_trade(1)], Source.SMART_ROUTER_WEBSOCKET)
        dispatcher.offer([_trade(2)], Source.WS_FALLBACK)
        wait_until(lambda: got == [Source.WS_FALLBACK])
        level[0] = Level.DEGRADED
        dispatcher.offer([_trade(3)], Source.SMART_ROUTER_WEBSOCKET)
        wait_until(lambda: got == [Source.WS_FALLBACK, Source.SMART_ROUTER_WEBSOCKET])
    finally:
        dispatcher.stop()


def test_a_callback_raising_system_exit_is_counted_and_the_dispatcher_keeps_delivering(
    caplog: pytest.LogCaptureFixture
) -> None:
    got: list[int] = []

    def exits(update: Update[Any]) -> None:
        raise SystemExit(3)

    dispatcher = Dispatcher(SystemClock(), lambda: Level.NORMAL)
    dispatcher.start()
    try:
        exiting = dispatcher.add(StreamKind.TRADE, (BTC,), exits)
        dispatcher.add(StreamKind.TRADE, (BTC,), lambda u: got.append(u.data.sequential_id))
        dispatcher.offer([_trade(1)], Source.SMART_ROUTER_WEBSOCKET)
        dispatcher.offer([_trade(2)], Source.SMART_ROUTER_WEBSOCKET)
        wait_until(lambda: got == [1, 2])
        assert exiting.failures == 2
        assert "SystemExit" in caplog.text  # logged with its traceback
    finally:
        dispatcher.stop()
