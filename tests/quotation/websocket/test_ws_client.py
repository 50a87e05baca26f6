"""The WebSocket client against the simulator: subscribe, recover, detect dead sockets.

Every test runs on a real socket on 127.0.0.1 with liveness thresholds configured
small; nothing asserts a duration, tests wait on the client's own state changes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import websocket as ws_lib

from quotation.models import Candle, Orderbook, StreamType, Ticker, Trade, TradeGap
from quotation.rest.client import RestClient, RestConfig
from quotation.rest.ratelimit import RateLimiter
from quotation.websocket.cache import StreamItem
from quotation.websocket.client import (
    CloseReason,
    ConnectionState,
    WebSocketLike,
    WebSocketStatus,
    default_connector,
)
from quotation.websocket.liveness import KeepaliveMode, LivenessConfig
from quotation.websocket.subscription import DataType, Subscription, WsFormat
from tests.quotation.websocket.ws_support import (
    WAIT,
    MakeClient,
    drop_and_trade_meanwhile,
    making_clients,
    sids,
)
from upbit_sim import Simulator
from upbit_sim.ws.hub import MalformedKind

pytestmark = pytest.mark.timeout(30)

MARKET = "KRW-BTC"
ALL_TYPES = (
    Subscription(DataType.TICKER, (MARKET,)),
    Subscription(DataType.TRADE, (MARKET,)),
    Subscription(DataType.ORDERBOOK, (MARKET,), depth=5),
    Subscription(DataType.CANDLE_1M, (MARKET,)),
)


@pytest.fixture
def quiet_sim(sim_factory: Callable[..., Simulator]) -> Simulator:
    """A simulator whose markets trade only when the test says so."""
    return sim_factory(seed=3, auto_trade=False)


@pytest.fixture
def make_client() -> Iterator[MakeClient]:
    yield from making_clients(ALL_TYPES)


def _kinds(items: list[StreamItem]) -> set[type]:
    return {type(i) for i in items}


@pytest.mark.parametrize("fmt", list(WsFormat))
def test_subscribe_and_receive_snapshot_then_realtime(
    quiet_sim: Simulator,
    make_client: MakeClient,
    fmt: WsFormat,
) -> None:
    client, got = make_client(quiet_sim, format=fmt)
    assert client.wait_live(WAIT)
    assert got.wait_for(lambda items: _kinds(items) >= {Ticker, Trade, Orderbook, Candle})
    assert {i.stream_type for i in got.items if not isinstance(i, TradeGap)} == {
        StreamType.SNAPSHOT
    }
    quiet_sim.engine.step_market(MARKET, 2)
    assert got.wait_for(
        lambda items: (
            sum(1 for i in items if isinstance(i, Trade) and i.stream_type is StreamType.REALTIME)
            == 2
        )
    )
    realtime = [i for i in got.items if getattr(i, "stream_type", None) is StreamType.REALTIME]
    assert _kinds(realtime) >= {Ticker, Trade, Orderbook, Candle}
    book = client.cache.orderbook(MARKET)
    assert book is not None and len(book.value.levels) == 5
    assert book.age(client.clock.monotonic()) >= 0
    ticker = client.cache.ticker(MARKET)
    assert ticker is not None
    assert ticker.value.trade_price == quiet_sim.engine.ticker(MARKET).trade_price
    assert client.status().malformed == 0


def test_reconnect_after_a_server_close_restores_every_subscription(
    quiet_sim: Simulator, make_client: MakeClient
) -> None:
    client, got = make_client(quiet_sim)
    assert client.wait_live(WAIT)
    assert got.wait_for(lambda items: len(_kinds(items)) == 4)
    assert quiet_sim.ws.close_all() == 1
    assert client.wait_until(lambda s: s.recoveries >= 1, WAIT)
    status = client.status()
    assert status.last_close is CloseReason.SERVER_CLOSED
    assert status.connects == 2
    before = len(got.items)
    quiet_sim.engine.step_market(MARKET, 1)
    # The new connection carries all four types again (snapshots and the new trade's updates).
    assert got.wait_for(
        lambda items: (
            _kinds(
                [
                    i
                    for i in items[before:]
                    if getattr(i, "stream_type", None) is StreamType.REALTIME
                ]
            )
            == {Ticker, Trade, Orderbook, Candle}
        )
    )


def test_silent_but_open_socket_is_detected_within_the_idle_timeout_and_replaced(
    sim: Simulator, make_client: MakeClient
) -> None:
    liveness = LivenessConfig(ping_interval=0.1, pong_timeout=5.0, idle_timeout=0.3)
    client, _ = make_client(sim, liveness=liveness)
    assert client.wait_live(WAIT)
    sim.ws.set_silent(True)
    assert client.wait_until(lambda s: s.last_close is CloseReason.SILENT, WAIT)
    sim.ws.set_silent(False)
    assert client.wait_until(lambda s: s.recoveries >= 1 and s.state is ConnectionState.LIVE, WAIT)


def test_missed_pongs_are_detected_while_data_still_flows(
    sim: Simulator, make_client: MakeClient
) -> None:
    codes = tuple(m.market for m in sim.engine.markets()[:10])
    liveness = LivenessConfig(ping_interval=0.1, pong_timeout=0.3, idle_timeout=30.0)
    client, _ = make_client(
        sim, subscriptions=(Subscription(DataType.TICKER, codes),), liveness=liveness
    )
    assert client.wait_live(WAIT)
    assert client.wait_until(lambda s: s.keepalives_answered >= 2, WAIT)
    sim.ws.set_answer_pings(False)
    assert client.wait_until(lambda s: s.last_close is CloseReason.MISSED_PONG, WAIT)
    sim.ws.set_answer_pings(True)
    assert client.wait_until(lambda s: s.recoveries >= 1, WAIT)


def test_a_quiet_market_with_answered_pings_keeps_its_connection(
    quiet_sim: Simulator, make_client: MakeClient
) -> None:
    # Windows of 1 s, not less: a loaded 2-core CI machine can stall a thread for 0.3 s.
    liveness = LivenessConfig(ping_interval=0.05, pong_timeout=1.0, idle_timeout=1.0)
    client, _ = make_client(quiet_sim, liveness=liveness)
    assert client.wait_live(WAIT)
    # About twice idle_timeout passes without data; pongs alone keep the socket alive.
    assert client.wait_until(lambda s: s.keepalives_answered >= 40, WAIT)
    status = client.status()
    assert status.connects == 1
    assert status.last_close is None
    assert status.state is ConnectionState.LIVE


def test_text_ping_keepalive_is_answered_with_status_up(
    quiet_sim: Simulator, make_client: MakeClient
) -> None:
    liveness = LivenessConfig(
        ping_interval=0.25, pong_timeout=1.0, idle_timeout=2.0, keepalive=KeepaliveMode.TEXT
    )
    client, _ = make_client(quiet_sim, liveness=liveness)
    assert client.wait_live(WAIT)
    assert client.wait_until(lambda s: s.keepalives_answered >= 3, WAIT)
    status = client.status()
    assert status.ignored >= 3  # the {"status":"UP"} answers are not data
    assert status.connects == 1


@pytest.mark.parametrize("kind", list(MalformedKind))
def test_malformed_frames_are_skipped_while_the_connection_stays_up(
    quiet_sim: Simulator,
    make_client: MakeClient,
    kind: MalformedKind,
) -> None:
    client, got = make_client(quiet_sim)
    assert client.wait_live(WAIT)
    assert quiet_sim.ws.inject_malformed(3, kind) == 3
    assert client.wait_until(lambda s: s.malformed >= 3, WAIT)
    new = quiet_sim.engine.step_market(MARKET, 1)[0]
    assert got.wait_for(
        lambda items: any(
            isinstance(i, Trade) and i.sequential_id == new.sequential_id for i in items
        )
    )
    status = client.status()
    assert status.malformed == 3
    assert status.connects == 1
    assert status.state is ConnectionState.LIVE


def test_no_trade_is_lost_or_duplicated_across_a_forced_reconnect(
    quiet_sim: Simulator, make_client: MakeClient, limiter: RateLimiter
) -> None:
    rest = RestClient(RestConfig(base_url=quiet_sim.base_url), limiter=limiter)
    try:
        client, got = make_client(
            quiet_sim,
            subscriptions=(Subscription(DataType.TRADE, (MARKET,)),),
            trade_source=rest,
            gap_fill_page_size=10,
        )
        _, missed = drop_and_trade_meanwhile(quiet_sim, client, got, MARKET, missed=37)
        assert client.wait_until(lambda s: s.recoveries >= 1, WAIT)
        after = quiet_sim.engine.step_market(MARKET, 5)
        assert got.wait_for(lambda items: after[-1].sequential_id in sids(items))
    finally:
        rest.close()

    received = [t.sequential_id for t in got.trades()]
    assert len(received) == len(set(received)), "a trade was delivered twice"
    log = [t.sequential_id for t in quiet_sim.engine.trades(MARKET)]
    expected = log[log.index(received[0]) :]
    assert received == expected  # same trades, same order as the simulator's own log
    status = client.status()
    assert status.gap_filled == len(missed) - 1  # the newest missed one came as the snapshot
    assert status.gaps == 0
    assert not any(isinstance(i, TradeGap) for i in got.items)


def test_a_hole_that_cannot_be_filled_is_marked(
    quiet_sim: Simulator, make_client: MakeClient
) -> None:
    client, got = make_client(
        quiet_sim, subscriptions=(Subscription(DataType.TRADE, (MARKET,)),)
    )  # no trade source: missed trades cannot be fetched
    assert client.wait_live(WAIT)
    before = quiet_sim.engine.step_market(MARKET, 1)[0]
    assert got.wait_for(lambda items: before.sequential_id in sids(items))
    quiet_sim.ws.set_accepting(False)
    quiet_sim.ws.drop_all()
    assert client.wait_until(lambda s: s.connect_failures >= 1, WAIT)
    quiet_sim.engine.step_market(MARKET, 4)
    quiet_sim.ws.set_accepting(True)
    assert got.wait_for(lambda items: any(isinstance(i, TradeGap) for i in items))
    gap = next(i for i in got.items if isinstance(i, TradeGap))
    assert gap.after_sequential_id == before.sequential_id
    assert client.cache.gaps(MARKET) == [gap]


def test_an_error_frame_stops_the_client_with_a_typed_error(
    quiet_sim: Simulator, make_client: MakeClient
) -> None:
    def ticketless(url: str, timeout: float) -> WebSocketLike:
        conn = default_connector(url, timeout)
        return _TicketStripper(conn)

    client, _ = make_client(quiet_sim, connector=ticketless)
    assert not client.wait_live(WAIT)
    assert client.status().state is ConnectionState.REJECTED
    assert client.error is not None
    assert client.error.code == "NO_TICKET"


def test_a_slow_consumer_drops_items_but_never_stalls_the_socket(
    quiet_sim: Simulator, make_client: MakeClient
) -> None:
    client, _ = make_client(
        quiet_sim,
        subscriptions=(Subscription(DataType.TRADE, (MARKET,)),),
        delivery_capacity=5,
    )
    release = threading.Event()
    entered = threading.Event()

    def stuck(batch: tuple[StreamItem, ...]) -> None:
        entered.set()
        release.wait(WAIT)

    client.add_consumer(stuck)
    try:
        assert client.wait_live(WAIT)
        quiet_sim.engine.step_market(MARKET, 1)
        assert entered.wait(WAIT)
        last = quiet_sim.engine.step_market(MARKET, 30)[-1]
        # The receive loop keeps going: the cache has the newest trade, extra items are dropped.
        assert client.wait_until(lambda s: s.dropped > 0, WAIT)
        assert client.wait_until(lambda s: s.messages >= 32, WAIT)
        cached = client.cache.last_trade(MARKET)
        assert cached is not None and cached.value.sequential_id == last.sequential_id
    finally:
        release.set()


def test_replayed_recording_parses_into_the_canonical_model(
    quiet_sim: Simulator,
    make_client: MakeClient,
    recordings_dir: Any,
) -> None:
    path = recordings_dir / "websocket" / "simple-trade-orderbook-2021-04-17.log"
    codes = (
        "BTC-ARK",
        "BTC-FCT2",
        "BTC-STPT",
        "BTC-ITAM",
        "BTC-MARO",
        "KRW-WAVES",
        "BTC-AQT",
        "BTC-XTZ",
        "KRW-LAMB",
        "BTC-PAX",
    )
    subs = (
        Subscription(DataType.TRADE, codes, is_only_realtime=True),
        Subscription(DataType.ORDERBOOK, codes, is_only_realtime=True),
    )
    for fmt in (WsFormat.SIMPLE, WsFormat.DEFAULT):
        client, got = make_client(quiet_sim, subscriptions=subs, format=fmt)
        assert client.wait_until(lambda s: s.state is ConnectionState.SUBSCRIBED, WAIT)
        assert quiet_sim.ws.wait_for(lambda st: st.subscribed >= 1, WAIT)
        sent = quiet_sim.ws.replay(path, speed=None).result(WAIT)
        assert sent > 400
        assert client.wait_until(_frames_at_least(sent), WAIT)
        status = client.status()
        assert status.malformed == 0
        assert status.messages == sent
        assert _kinds(got.items) == {Trade, Orderbook}
        client.stop()


class _TicketStripper:
    """A real connection whose subscription request loses its ticket (to provoke NO_TICKET)."""

    def __init__(self, conn: WebSocketLike) -> None:
        self._conn = conn

    def send(self, payload: bytes | str, opcode: int = ws_lib.ABNF.OPCODE_TEXT) -> int:
        if isinstance(payload, str) and payload.startswith('[{"ticket"'):
            payload = "[" + payload[payload.index("},") + 2 :]
        return self._conn.send(payload, opcode)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _frames_at_least(count: int) -> Callable[[WebSocketStatus], bool]:
    return lambda status: status.frames >= count


def test_reconnect_on_request_resubscribes_and_recovers(
    quiet_sim: Simulator, make_client: MakeClient
) -> None:
    client, _ = make_client(quiet_sim)
    assert client.wait_live(WAIT)
    client.reconnect()
    assert client.wait_until(lambda s: s.recoveries >= 1, WAIT)
    status = client.status()
    assert status.last_close is CloseReason.RECONNECT_REQUESTED
    assert status.connects == 2


def test_changed_subscriptions_are_sent_on_the_live_connection(
    quiet_sim: Simulator, make_client: MakeClient
) -> None:
    client, got = make_client(quiet_sim, subscriptions=(Subscription(DataType.TICKER, (MARKET,)),))
    assert client.wait_live(WAIT)
    client.set_subscriptions(
        (
            Subscription(DataType.TICKER, (MARKET,)),
            Subscription(DataType.CANDLE_1S, (MARKET,)),
        )
    )
    assert got.wait_for(lambda items: any(isinstance(i, Candle) for i in items))
    assert client.status().connects == 1


def test_a_reconnect_counts_as_recovered_only_once_fresh_data_arrives(
    quiet_sim: Simulator, make_client: MakeClient
) -> None:
    client, _ = make_client(
        quiet_sim,
        subscriptions=(Subscription(DataType.TRADE, (MARKET,), is_only_realtime=True),),
    )
    assert client.wait_until(lambda s: s.state is ConnectionState.SUBSCRIBED, WAIT)
    quiet_sim.engine.step_market(MARKET, 1)
    assert client.wait_live(WAIT)
    quiet_sim.ws.close_all()
    # Handshake and subscription done, but the market is quiet: not recovered yet.
    assert client.wait_until(
        lambda s: s.connects == 2 and s.state is ConnectionState.SUBSCRIBED, WAIT
    )
    assert quiet_sim.ws.wait_for(lambda st: st.subscribed == 1, WAIT)
    assert client.status().recoveries == 0
    quiet_sim.engine.step_market(MARKET, 1)
    assert client.wait_until(lambda s: s.recoveries == 1, WAIT)
    assert client.status().state is ConnectionState.LIVE
