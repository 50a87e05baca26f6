"""Gap fills run off the receive thread: the socket keeps being read while REST is slow.

Against the real simulator: REST is made slow (or failing) by a small
:class:`~quotation.websocket.gapfill.TradeSource` in front of the real REST client that
waits on an event the test controls, so nothing here depends on timing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from quotation.errors import TransportError
from quotation.models import Orderbook, StreamType, Ticker, Trade, TradeGap
from quotation.rest.client import RestClient, RestConfig
from quotation.rest.ratelimit import RateLimiter
from quotation.websocket.cache import StreamItem
from quotation.websocket.client import ConnectionState
from quotation.websocket.gapfill import TradeSource
from quotation.websocket.liveness import LivenessConfig
from quotation.websocket.subscription import DataType, Subscription
from tests.quotation.websocket.ws_support import (
    WAIT,
    MakeClient,
    drop_and_trade_meanwhile,
    making_clients,
    sids,
)
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(30)

MARKET = "KRW-BTC"
OTHER = "KRW-ETH"
TRADES_ONLY = (Subscription(DataType.TRADE, (MARKET,)),)
WITH_OTHER_MARKET = (
    Subscription(DataType.TICKER, (MARKET, OTHER)),
    Subscription(DataType.TRADE, (MARKET,)),
    Subscription(DataType.ORDERBOOK, (OTHER,), depth=5),
)
PINGING = LivenessConfig(ping_interval=0.05, pong_timeout=5.0, idle_timeout=5.0)


class GatedTrades:
    """REST ``trades/ticks`` that waits for a gate first: a slow (or banned) server on demand."""

    def __init__(self, inner: TradeSource) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.answered = threading.Event()

    def get_trades(self, market: str, *, count: int = 1, cursor: int | None = None) -> list[Trade]:
        self.entered.set()
        if not self.gate.wait(WAIT):
            raise TransportError("the test never opened the gate")
        page = self.inner.get_trades(market, count=count, cursor=cursor)
        self.answered.set()
        return page


class FailingTrades:
    """REST ``trades/ticks`` that always fails, as with the server unreachable."""

    def __init__(self) -> None:
        self.calls = 0

    def get_trades(self, market: str, *, count: int = 1, cursor: int | None = None) -> list[Trade]:
        self.calls += 1
        raise TransportError("connection refused")


@pytest.fixture
def quiet_sim(sim_factory: Callable[..., Simulator]) -> Simulator:
    """A simulator whose markets trade only when the test says so."""
    return sim_factory(seed=3, auto_trade=False)


@pytest.fixture
def rest(quiet_sim: Simulator, limiter: RateLimiter) -> Iterator[RestClient]:
    client = RestClient(RestConfig(base_url=quiet_sim.base_url), limiter=limiter)
    yield client
    client.close()


@pytest.fixture
def make_client() -> Iterator[MakeClient]:
    yield from making_clients(TRADES_ONLY)


def _stream(items: list[StreamItem]) -> list[int | str]:
    """Trades by id and gaps as ``"gap"``, in delivery order."""
    return [
        i.sequential_id if isinstance(i, Trade) else "gap"
        for i in items
        if isinstance(i, Trade | TradeGap)
    ]


def _realtime(items: list[StreamItem], kind: type, market: str) -> bool:
    return any(
        isinstance(i, kind)
        and getattr(i, "market", None) == market
        and getattr(i, "stream_type", None) is StreamType.REALTIME
        for i in items
    )


def test_a_slow_gap_fill_does_not_stop_the_socket_from_being_read(
    quiet_sim: Simulator, rest: RestClient, make_client: MakeClient
) -> None:
    source = GatedTrades(rest)
    try:
        client, got = make_client(
            quiet_sim,
            subscriptions=WITH_OTHER_MARKET,
            trade_source=source,
            liveness=PINGING,
            gap_fill_page_size=10,
        )
        delivered, away = drop_and_trade_meanwhile(quiet_sim, client, got, MARKET, missed=23)
        # The reconnect's snapshot trade (the newest one missed) starts the fill; REST hangs.
        assert source.entered.wait(WAIT)
        assert client.wait_until(lambda s: s.gap_fills_pending == 1 and s.held_trades == 1, WAIT)
        answered = client.status().keepalives_answered
        mark = len(got.snapshot())

        # Other markets and data types keep flowing while the fill is pending ...
        quiet_sim.engine.step_market(OTHER, 3)
        assert got.wait_for(
            lambda items: (
                _realtime(items[mark:], Ticker, OTHER) and _realtime(items[mark:], Orderbook, OTHER)
            )
        )
        # ... pings keep being answered ...
        assert client.wait_until(lambda s: s.keepalives_answered >= answered + 5, WAIT)
        # ... and the market's own new trades are read, but held behind the missed ones.
        live = [t.sequential_id for t in quiet_sim.engine.step_market(MARKET, 4)]
        assert client.wait_until(lambda s: s.held_trades == 5, WAIT)
        assert sids(got.snapshot()) == set(delivered)
        status = client.status()
        assert status.state is ConnectionState.LIVE
        assert status.connects == 2
        assert status.gap_fills_pending == 1

        source.gate.set()
        assert got.wait_for(lambda items: live[-1] in sids(items))
    finally:
        source.gate.set()

    received = [t.sequential_id for t in got.trades()]
    log = [t.sequential_id for t in quiet_sim.engine.trades(MARKET)]
    assert received == log[log.index(received[0]) :]  # no loss, no duplicate, trade order
    assert received[-(len(away) + len(live)) :] == away + live
    status = client.status()
    assert (status.gap_fills, status.gap_fills_pending, status.held_trades) == (1, 0, 0)
    assert status.gap_filled == len(away) - 1  # the newest missed one came as the snapshot
    assert status.gaps == 0
    assert status.last_gap_fill_seconds is not None and status.last_gap_fill_seconds >= 0
    cached = [c.value.sequential_id for c in client.cache.trades(MARKET)]
    assert cached == received[-len(cached) :]  # the cache keeps trade order too


def test_a_failing_trade_source_marks_the_hole_and_live_trades_continue(
    quiet_sim: Simulator, make_client: MakeClient
) -> None:
    source = FailingTrades()
    client, got = make_client(quiet_sim, trade_source=source)
    delivered, away = drop_and_trade_meanwhile(quiet_sim, client, got, MARKET, missed=6)
    assert got.wait_for(lambda items: any(isinstance(i, TradeGap) for i in items))
    live = [t.sequential_id for t in quiet_sim.engine.step_market(MARKET, 3)]
    assert got.wait_for(lambda items: live[-1] in sids(items))

    assert _stream(got.snapshot()) == [*delivered, "gap", away[-1], *live]
    gap = next(i for i in got.snapshot() if isinstance(i, TradeGap))
    assert (gap.after_sequential_id, gap.before_sequential_id) == (delivered[-1], away[-1])
    assert "TransportError" in gap.reason
    assert client.cache.gaps(MARKET) == [gap]
    status = client.status()
    assert source.calls == 1
    assert (status.gaps, status.gap_fills, status.gap_fills_pending) == (1, 1, 0)
    assert status.state is ConnectionState.LIVE


def test_a_fill_that_outlasts_the_hold_buffer_is_abandoned_and_its_hole_marked(
    quiet_sim: Simulator, rest: RestClient, make_client: MakeClient
) -> None:
    source = GatedTrades(rest)
    try:
        client, got = make_client(
            quiet_sim, trade_source=source, liveness=PINGING, gap_fill_hold_capacity=3
        )
        delivered, away = drop_and_trade_meanwhile(quiet_sim, client, got, MARKET, missed=6)
        assert source.entered.wait(WAIT)
        assert client.wait_until(lambda s: s.held_trades == 1, WAIT)
        live = [t.sequential_id for t in quiet_sim.engine.step_market(MARKET, 5)]
        # The 4th held trade overflows: the hole is marked, everything held is delivered.
        assert got.wait_for(lambda items: live[-1] in sids(items))
        status = client.status()
        assert (status.gap_fills_abandoned, status.gap_fills_pending, status.held_trades) == (
            1,
            0,
            0,
        )
        # The late REST answer is ignored: nothing delivered twice or out of order.
        source.gate.set()
        assert source.answered.wait(WAIT)
        answered = client.status().keepalives_answered
        assert client.wait_until(lambda s: s.keepalives_answered >= answered + 3, WAIT)
        more = [t.sequential_id for t in quiet_sim.engine.step_market(MARKET, 2)]
        assert got.wait_for(lambda items: more[-1] in sids(items))
    finally:
        source.gate.set()

    assert _stream(got.snapshot()) == [*delivered, "gap", away[-1], *live, *more]
    gap = next(i for i in got.snapshot() if isinstance(i, TradeGap))
    assert (gap.after_sequential_id, gap.before_sequential_id) == (delivered[-1], away[-1])
    assert "3 trades held" in gap.reason
    status = client.status()
    assert (status.gaps, status.gap_fills, status.gap_filled) == (1, 0, 0)


def test_stop_does_not_wait_for_a_gap_fill_stuck_in_rest(
    quiet_sim: Simulator, rest: RestClient, make_client: MakeClient
) -> None:
    source = GatedTrades(rest)
    try:
        client, got = make_client(quiet_sim, trade_source=source)
        delivered, away = drop_and_trade_meanwhile(quiet_sim, client, got, MARKET, missed=4)
        assert source.entered.wait(WAIT)
        assert client.wait_until(lambda s: s.gap_fills_pending == 1, WAIT)
        client.stop(timeout=0.2)  # returns although REST never answers
        status = client.status()
        assert status.state is ConnectionState.STOPPED
        # The pending fill is given up: its hole marked, the held trade still delivered.
        assert _stream(got.snapshot()) == [*delivered, "gap", away[-1]]
        assert (status.gap_fills_abandoned, status.gap_fills_pending, status.held_trades) == (
            1,
            0,
            0,
        )
        gap = next(i for i in got.snapshot() if isinstance(i, TradeGap))
        assert "stopped" in gap.reason
    finally:
        source.gate.set()


def test_a_second_reconnect_while_a_fill_is_pending_queues_its_fill_behind_the_first(
    quiet_sim: Simulator, rest: RestClient, make_client: MakeClient
) -> None:
    source = GatedTrades(rest)
    try:
        # No rate limit: the second hole's fill is submitted at once and queues behind the
        # first (with one, it would wait and join a later range: test_ws_gapfill_rate).
        client, got = make_client(
            quiet_sim, trade_source=source, gap_fill_page_size=10, gap_fill_min_interval=0.0
        )
        delivered, away = drop_and_trade_meanwhile(quiet_sim, client, got, MARKET, missed=12)
        assert source.entered.wait(WAIT)
        live = [t.sequential_id for t in quiet_sim.engine.step_market(MARKET, 3)]
        assert client.wait_until(lambda s: s.held_trades == 4, WAIT)

        quiet_sim.ws.set_accepting(False)
        assert quiet_sim.ws.drop_all() == 1
        assert client.wait_until(lambda s: s.connect_failures >= 2, WAIT)
        away_again = [t.sequential_id for t in quiet_sim.engine.step_market(MARKET, 7)]
        quiet_sim.ws.set_accepting(True)
        assert client.wait_until(lambda s: s.gap_fills_pending == 2 and s.held_trades == 5, WAIT)
        assert sids(got.snapshot()) == set(delivered)

        source.gate.set()
        assert client.wait_until(lambda s: s.gap_fills == 2 and s.held_trades == 0, WAIT)
        more = [t.sequential_id for t in quiet_sim.engine.step_market(MARKET, 2)]
        assert got.wait_for(lambda items: more[-1] in sids(items))
    finally:
        source.gate.set()

    assert _stream(got.snapshot()) == [*delivered, *away, *live, *away_again, *more]
    status = client.status()
    assert status.gap_filled == len(away) - 1 + len(away_again) - 1
    assert (status.gaps, status.gap_fills_pending) == (0, 0)
