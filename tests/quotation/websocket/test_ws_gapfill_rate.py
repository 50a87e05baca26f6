"""REST gap fills are rate-limited per market: at most one per ``gap_fill_min_interval``.

Against the real simulator on a :class:`~tests.fakes.ManualClock` that only the test moves
(the backoff draw is 0, so the client never sleeps on it). The client's connector waits
at a gate the test closes while it trades, so "missed while away" needs no real timing.
The trade source counts REST requests and notes when (client clock) and from where.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from quotation.errors import InvalidValue
from quotation.models import Trade
from quotation.rest.client import RestClient, RestConfig
from quotation.rest.ratelimit import RateLimiter
from quotation.websocket.client import (
    ConnectionState,
    WebSocketClient,
    WebSocketConfig,
    WebSocketLike,
    WebSocketStatus,
    default_connector,
)
from quotation.websocket.gapfill import GapFill, may_start_fill, share_fill, unfilled_gap
from quotation.websocket.subscription import DataType, Subscription
from tests.fakes import ManualClock
from tests.quotation.examples import T0, example_trade
from tests.quotation.websocket.ws_support import WAIT, Collector, MakeClient, making_clients, sids
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(30)

MARKET = "KRW-BTC"
OTHER = "KRW-ETH"
INTERVAL = 10.0


@dataclass(frozen=True, slots=True)
class Request:
    """One REST ``trades/ticks`` request the client made."""

    market: str
    cursor: int | None
    at: float


class CountingTrades:
    """The real REST client, every request noted with the client clock's reading."""

    def __init__(self, inner: RestClient, clock: ManualClock) -> None:
        self.inner = inner
        self.clock = clock
        self.requests: list[Request] = []

    def get_trades(self, market: str, *, count: int = 1, cursor: int | None = None) -> list[Trade]:
        self.requests.append(Request(market, cursor, self.clock.monotonic()))
        return self.inner.get_trades(market, count=count, cursor=cursor)


class GatedConnector:
    """The default connector behind a gate: closed, the client waits before connecting."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, url: str, timeout: float) -> WebSocketLike:
        if not self.gate.wait(WAIT):
            raise OSError("the test never opened the gate")
        return default_connector(url, timeout)


@pytest.fixture
def quiet_sim(sim_factory: Callable[..., Simulator]) -> Simulator:
    """A simulator whose markets trade only when the test says so."""
    return sim_factory(seed=3, auto_trade=False)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def source(
    quiet_sim: Simulator, limiter: RateLimiter, clock: ManualClock
) -> Iterator[CountingTrades]:
    rest = RestClient(RestConfig(base_url=quiet_sim.base_url), limiter=limiter)
    yield CountingTrades(rest, clock)
    rest.close()


@pytest.fixture
def connector() -> Iterator[GatedConnector]:
    connector = GatedConnector()
    yield connector
    connector.gate.set()  # a client still waiting at it can stop


@pytest.fixture
def make_client() -> Iterator[MakeClient]:
    yield from making_clients((Subscription(DataType.TRADE, (MARKET,)),))


def start(
    make_client: MakeClient,
    sim: Simulator,
    source: CountingTrades,
    connector: GatedConnector,
    markets: tuple[str, ...] = (MARKET,),
) -> tuple[WebSocketClient, Collector]:
    client, got = make_client(
        sim,
        subscriptions=(Subscription(DataType.TRADE, markets),),
        trade_source=source,
        connector=connector,
        clock=source.clock,
        random=lambda: 0.0,  # no backoff wait: the clock moves only when the test says
        gap_fill_min_interval=INTERVAL,
    )
    assert client.wait_live(WAIT)
    return client, got


def away(
    sim: Simulator, client: WebSocketClient, connector: GatedConnector, missed: dict[str, int]
) -> dict[str, list[int]]:
    """Drop the socket, trade ``missed`` per market while the client waits at the gate,
    let it back in and wait for the reconnect's snapshot trades. Returns the missed ids."""
    connects = client.status().connects
    connector.gate.clear()
    assert sim.ws.drop_all() == 1
    assert client.wait_until(
        lambda s: s.state is ConnectionState.CONNECTING and s.connects == connects, WAIT
    )
    ids = {m: [t.sequential_id for t in sim.engine.step_market(m, n)] for m, n in missed.items()}
    connector.gate.set()
    assert client.wait_until(lambda s: s.connects == connects + 1, WAIT)
    assert sim.ws.wait_for(lambda s: s.subscribed == 1, WAIT)
    return ids


def live(sim: Simulator, market: str, count: int) -> list[int]:
    return [t.sequential_id for t in sim.engine.step_market(market, count)]


def holding(count: int) -> Callable[[WebSocketStatus], bool]:
    return lambda status: status.held_trades == count


def assert_log_order(got: Collector, sim: Simulator, market: str) -> None:
    """Every trade of ``market`` since the first one delivered: no loss, no duplicate, in order."""
    received = [t.sequential_id for t in got.trades() if t.market == market]
    log = [t.sequential_id for t in sim.engine.trades(market)]
    assert received == log[log.index(received[0]) :]


def test_holes_within_the_interval_wait_and_are_filled_by_one_rest_fill_in_trade_order(
    quiet_sim: Simulator,
    source: CountingTrades,
    connector: GatedConnector,
    make_client: MakeClient,
    clock: ManualClock,
) -> None:
    client, got = start(make_client, quiet_sim, source, connector)
    started = clock.monotonic()
    first = live(quiet_sim, MARKET, 3)
    assert got.wait_for(lambda items: first[-1] in sids(items))
    filled = away(quiet_sim, client, connector, {MARKET: 5})[MARKET]  # first fill: at once
    assert client.wait_until(lambda s: s.gap_fills == 1 and s.gap_fills_pending == 0, WAIT)
    assert [r.at for r in source.requests] == [started]
    # The fill's trades reach the consumer on the delivery thread: wait for them before
    # taking the baseline that the held holes below must not change.
    assert got.wait_for(lambda items: set(filled) <= sids(items))
    delivered = sids(got.snapshot())

    # Three more holes within the interval: none starts a fill; every trade since is held.
    last_missed: list[int] = []
    for n in range(3):
        last_missed = away(quiet_sim, client, connector, {MARKET: 4 + n})[MARKET]
        live(quiet_sim, MARKET, 2)  # received live between the holes: held
        # Held per hole: its snapshot trade (the newest missed) and the two live ones.
        assert client.wait_until(holding(3 * (n + 1)), WAIT)
    status = client.status()
    assert (status.gap_fills, status.gap_fills_pending, status.gaps) == (1, 1, 0)
    assert len(source.requests) == 1
    assert sids(got.snapshot()) == delivered
    assert clock.monotonic() == started  # nothing else moved the clock

    clock.advance(INTERVAL)  # the interval has passed: one fill covers all three holes
    assert client.wait_until(lambda s: s.gap_fills == 2 and s.held_trades == 0, WAIT)
    after = live(quiet_sim, MARKET, 2)
    assert got.wait_for(lambda items: after[-1] in sids(items))

    assert [(r.at, r.cursor) for r in source.requests[1:]] == [
        (started + INTERVAL, last_missed[-1])  # one page, down from the last hole's upper edge
    ]
    assert_log_order(got, quiet_sim, MARKET)
    status = client.status()
    assert (status.gap_fills, status.gap_fills_pending, status.gaps) == (2, 0, 0)
    assert status.gap_filled == 4 + (3 + 4 + 5)  # each hole's missed trades but its snapshot


def test_two_markets_are_rate_limited_independently(
    quiet_sim: Simulator,
    source: CountingTrades,
    connector: GatedConnector,
    make_client: MakeClient,
    clock: ManualClock,
) -> None:
    client, got = start(make_client, quiet_sim, source, connector, markets=(MARKET, OTHER))
    started = clock.monotonic()
    seed = {m: live(quiet_sim, m, 2)[-1] for m in (MARKET, OTHER)}
    assert got.wait_for(lambda items: set(seed.values()) <= sids(items))
    away(quiet_sim, client, connector, {MARKET: 3})  # MARKET's first fill
    assert client.wait_until(lambda s: s.gap_fills == 1, WAIT)

    clock.advance(3.0)
    away(quiet_sim, client, connector, {MARKET: 3, OTHER: 3})
    # OTHER never filled: its fill starts at once; MARKET's waits for its interval.
    assert client.wait_until(lambda s: s.gap_fills == 2 and s.gap_fills_pending == 1, WAIT)
    assert [(r.market, r.at) for r in source.requests] == [
        (MARKET, started),
        (OTHER, started + 3.0),
    ]

    clock.advance(INTERVAL - 3.0)
    assert client.wait_until(lambda s: s.gap_fills == 3 and s.gap_fills_pending == 0, WAIT)
    assert source.requests[-1].market == MARKET
    assert source.requests[-1].at == started + INTERVAL
    after = {m: live(quiet_sim, m, 1)[-1] for m in (MARKET, OTHER)}
    assert got.wait_for(lambda items: set(after.values()) <= sids(items))
    assert_log_order(got, quiet_sim, MARKET)
    assert_log_order(got, quiet_sim, OTHER)
    assert client.status().gaps == 0


def test_a_hole_found_once_the_interval_has_passed_starts_its_fill_at_once(
    quiet_sim: Simulator,
    source: CountingTrades,
    connector: GatedConnector,
    make_client: MakeClient,
    clock: ManualClock,
) -> None:
    client, got = start(make_client, quiet_sim, source, connector)
    started = clock.monotonic()
    first = live(quiet_sim, MARKET, 2)
    assert got.wait_for(lambda items: first[-1] in sids(items))
    away(quiet_sim, client, connector, {MARKET: 3})
    assert client.wait_until(lambda s: s.gap_fills == 1, WAIT)

    clock.advance(INTERVAL)  # exactly the interval: the next hole is filled at once
    missed = away(quiet_sim, client, connector, {MARKET: 4})[MARKET]
    assert client.wait_until(lambda s: s.gap_fills == 2 and s.gap_fills_pending == 0, WAIT)
    assert [(r.at, r.cursor) for r in source.requests] == [
        (started, source.requests[0].cursor),
        (started + INTERVAL, missed[-1]),
    ]
    assert got.wait_for(lambda items: missed[-1] in sids(items))
    assert_log_order(got, quiet_sim, MARKET)
    assert client.status().gaps == 0


# -- the decisions, with plain numbers ------------------------------------------------------


def test_a_market_may_start_a_fill_only_once_the_interval_since_its_last_has_passed() -> None:
    assert may_start_fill(100.0, None, INTERVAL)  # never filled
    assert not may_start_fill(109.999, 100.0, INTERVAL)
    assert may_start_fill(110.0, 100.0, INTERVAL)
    assert may_start_fill(100.0, 100.0, 0.0)  # 0: no limit


def trade(sid: int) -> Trade:
    """Trade ``sid``, ``sid`` ms after T0: ids and times rise together."""
    return example_trade(sid, T0 + timedelta(milliseconds=sid))


def test_one_fill_over_several_holes_is_shared_out_between_their_edges() -> None:
    trades = {sid: trade(sid) for sid in range(1, 13)}
    # Holes (1, 5) and (7, 12): 6 was received live between them; REST has 2..11.
    fill = GapFill(tuple(trades[s] for s in range(2, 12)), None)
    holes = [(trades[1], trades[5]), (trades[7], trades[12])]
    shares = share_fill(fill, holes)
    assert [[x.sequential_id for x in s.trades] for s in shares] == [[2, 3, 4], [8, 9, 10, 11]]
    assert [s.gap for s in shares] == [None, None]

    # The page limit stopped the fill at 9: the first hole is marked whole, the second
    # from its lower edge up to 9, then 9..11 are delivered.
    short = GapFill(
        tuple(trades[s] for s in range(9, 12)), unfilled_gap(trades[1], trades[9], "pages")
    )
    first, second = share_fill(short, holes)
    assert first == GapFill((), unfilled_gap(trades[1], trades[5], "pages"))
    assert [x.sequential_id for x in second.trades] == [9, 10, 11]
    assert second.gap == unfilled_gap(trades[7], trades[9], "pages")
    # One hole: the fill itself.
    assert share_fill(short, [(trades[1], trades[12])]) == [short]


def test_a_negative_interval_is_refused_naming_its_field() -> None:
    with pytest.raises(InvalidValue) as caught:
        WebSocketConfig(gap_fill_min_interval=-1.0)
    assert caught.value.field == "gap_fill_min_interval"
    assert WebSocketConfig().gap_fill_min_interval == INTERVAL
