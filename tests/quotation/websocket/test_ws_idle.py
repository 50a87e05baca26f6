"""A WebSocket client without subscriptions stands by idle, and (un)subscribes on demand.

The WebSocket fallback is started early but subscribes only at Level 2, and drops
its subscriptions when the router recovers. So a client with an empty set must
not connect; emptying the set closes the connection on purpose (not a failure);
and re-subscribing a market is a fresh start for it, not a gap: what traded while
it was unsubscribed is neither fetched nor marked.

Real sockets on 127.0.0.1 against the simulator; every wait is on a state change
(client status, simulator hub counters, delivered items), never on time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from quotation.clock import SystemClock
from quotation.errors import InvalidRequest
from quotation.models import StreamType, TradeGap
from quotation.rest.client import RestClient, RestConfig
from quotation.rest.ratelimit import RateLimiter
from quotation.websocket.client import (
    CloseReason,
    ConnectionState,
    WebSocketClient,
    WebSocketConfig,
    WebSocketLike,
    WebSocketStatus,
    default_connector,
)
from quotation.websocket.liveness import LivenessConfig
from quotation.websocket.pacing import Pacer, RateWindow
from quotation.websocket.subscription import DataType, Subscription
from tests.quotation.websocket.ws_support import FAST_BACKOFF, WAIT, Collector, sids
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(30)

MARKET = "KRW-BTC"
OTHER = "KRW-ETH"
TRADES = (Subscription(DataType.TRADE, (MARKET,)),)
BOTH_TRADES = (Subscription(DataType.TRADE, (MARKET, OTHER)),)
QUICK = LivenessConfig(ping_interval=0.2, pong_timeout=5.0, idle_timeout=10.0)
"""Wakes the receive loop every 0.05 s (where (un)subscriptions take effect); lenient
thresholds so a loaded machine never declares the socket dead."""


class CountingClock(SystemClock):
    """The real clock, counting sleeps (an idle client must not sleep-poll)."""

    __slots__ = ("sleeps",)

    def __init__(self) -> None:
        self.sleeps = 0

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        super().sleep(seconds)


@dataclass
class Probe:
    """What a client did that its status does not say."""

    clock: CountingClock = field(default_factory=CountingClock)
    pacer: Pacer = field(default_factory=lambda: Pacer((RateWindow(1, 3600.0),)))
    """A connect pacer allowing one slot per hour: ``delay > 0`` once a slot was used."""
    connector_calls: int = 0
    backoffs: int = 0
    """Backoff delays drawn (each draws one random number)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def connector(self, url: str, timeout: float) -> WebSocketLike:
        with self.lock:
            self.connector_calls += 1
        return default_connector(url, timeout)

    def random(self) -> float:
        with self.lock:
            self.backoffs += 1
        return 0.5

    def slot_used(self) -> bool:
        return self.pacer.delay(self.clock.monotonic()) > 0


MakeIdleClient = Callable[..., tuple[WebSocketClient, Collector, Probe]]


@pytest.fixture
def quiet_sim(sim_factory: Callable[..., Simulator]) -> Simulator:
    """A simulator whose markets trade only when the test says so."""
    return sim_factory(seed=3, auto_trade=False)


@pytest.fixture
def make_client() -> Iterator[MakeIdleClient]:
    """Started clients (no subscriptions unless given), every one stopped afterwards."""
    clients: list[WebSocketClient] = []

    def make(
        sim: Simulator,
        subscriptions: tuple[Subscription, ...] = (),
        *,
        trade_source: Any = None,
        pace_connects: bool = False,
        **kwargs: Any,
    ) -> tuple[WebSocketClient, Collector, Probe]:
        kwargs.setdefault("backoff", FAST_BACKOFF)
        kwargs.setdefault("liveness", QUICK)
        probe = Probe()
        config = WebSocketConfig(subscriptions=subscriptions, url=sim.ws_url, **kwargs)
        client = WebSocketClient(
            config,
            clock=probe.clock,
            trade_source=trade_source,
            random=probe.random,
            connector=probe.connector,
            connect_pacer=probe.pacer if pace_connects else None,
        )
        collector = Collector()
        client.add_consumer(collector)
        clients.append(client)
        client.start()
        return client, collector, probe

    yield make
    for client in clients:
        client.stop()


@pytest.fixture
def rest(quiet_sim: Simulator, limiter: RateLimiter) -> Iterator[RestClient]:
    client = RestClient(RestConfig(base_url=quiet_sim.base_url), limiter=limiter)
    yield client
    client.close()


def _idle(status: WebSocketStatus) -> bool:
    # idle_since is set by the receive thread itself once it has decided to wait:
    # a fence, unlike the IDLE state that start() shows before the thread runs.
    return status.state is ConnectionState.IDLE and status.idle_since is not None


def _trade_ids(collector: Collector, market: str) -> list[int]:
    return [t.sequential_id for t in collector.trades() if t.market == market]


def test_the_config_default_is_no_subscriptions() -> None:
    assert WebSocketConfig().subscriptions == ()


def test_a_client_without_subscriptions_waits_idle_and_never_connects(
    quiet_sim: Simulator, make_client: MakeIdleClient
) -> None:
    quiet_sim.ws.set_accepting(False)  # a handshake attempt would be refused and counted
    client, _, probe = make_client(quiet_sim, pace_connects=True)
    assert client.wait_until(_idle, WAIT)
    status = client.status()
    assert status.subscriptions == 0
    assert (status.connects, status.connect_failures, status.last_close) == (0, 0, None)
    assert probe.connector_calls == 0
    assert not probe.slot_used()
    stats = quiet_sim.ws.stats()
    assert (stats.connections, stats.refused) == (0, 0)
    assert probe.clock.sleeps == 0  # waits on a condition, does not poll


def test_subscribing_an_idle_client_connects_and_streams_snapshot_then_realtime(
    quiet_sim: Simulator, make_client: MakeIdleClient
) -> None:
    client, got, probe = make_client(quiet_sim, pace_connects=True)
    assert client.wait_until(_idle, WAIT)
    client.set_subscriptions((*TRADES, Subscription(DataType.TICKER, (MARKET,))))
    assert client.wait_live(WAIT)
    new = quiet_sim.engine.step_market(MARKET, 2)
    assert got.wait_for(lambda items: new[-1].sequential_id in sids(items))
    trades = got.trades()
    assert trades[0].stream_type is StreamType.SNAPSHOT
    assert [t.sequential_id for t in trades[-2:]] == [t.sequential_id for t in new]
    assert {t.stream_type for t in trades[-2:]} == {StreamType.REALTIME}
    status = client.status()
    assert status.state is ConnectionState.LIVE
    assert (status.subscriptions, status.idle_since) == (2, None)
    assert (status.connects, status.recoveries, status.connect_failures) == (1, 0, 0)
    assert probe.connector_calls == 1
    assert probe.slot_used()
    assert quiet_sim.ws.stats().subscribed == 1


def test_emptying_the_subscriptions_closes_the_connection_on_purpose_and_goes_idle(
    quiet_sim: Simulator, make_client: MakeIdleClient
) -> None:
    client, _, probe = make_client(quiet_sim, TRADES)
    assert client.wait_live(WAIT)
    assert quiet_sim.ws.wait_for(lambda st: st.subscribed == 1, WAIT)
    client.set_subscriptions([])
    assert client.wait_until(_idle, WAIT)
    assert quiet_sim.ws.wait_for(lambda st: st.connections == 0, WAIT)
    status = client.status()
    assert status.last_close is CloseReason.UNSUBSCRIBED
    assert status.subscriptions == 0
    assert (status.connects, status.connect_failures, status.recoveries, status.gaps) == (
        1,
        0,
        0,
        0,
    )
    assert probe.backoffs == 0  # a deliberate close draws no backoff
    assert probe.connector_calls == 1


def test_resubscribing_after_an_unsubscribe_is_a_fresh_start_not_a_gap(
    quiet_sim: Simulator, make_client: MakeIdleClient, rest: RestClient
) -> None:
    # With a REST trade source, a gap wrongly expected would be filled (gap_filled > 0).
    client, got, probe = make_client(quiet_sim, TRADES, trade_source=rest)
    assert client.wait_live(WAIT)
    before = quiet_sim.engine.step_market(MARKET, 3)
    assert got.wait_for(lambda items: before[-1].sequential_id in sids(items))
    client.set_subscriptions([])
    assert client.wait_until(_idle, WAIT)
    assert quiet_sim.ws.wait_for(lambda st: st.connections == 0, WAIT)

    unsubscribed = quiet_sim.engine.step_market(MARKET, 20)  # nobody listening
    client.set_subscriptions(TRADES)
    assert client.wait_live(WAIT)
    after = quiet_sim.engine.step_market(MARKET, 2)
    assert got.wait_for(lambda items: after[-1].sequential_id in sids(items))

    status = client.status()
    assert (status.gaps, status.gap_fills, status.gap_filled) == (0, 0, 0)
    assert not any(isinstance(i, TradeGap) for i in got.snapshot())
    assert status.recoveries == 0  # a fresh start is not a recovery
    assert (status.connects, status.connect_failures) == (2, 0)
    assert probe.backoffs == 0
    received = _trade_ids(got, MARKET)
    assert len(received) == len(set(received)), "a trade was delivered twice"
    # Of the unsubscribed period only the newest trade arrives: it is the new snapshot.
    skipped = {t.sequential_id for t in unsubscribed}
    assert [sid for sid in received if sid in skipped] == [unsubscribed[-1].sequential_id]
    assert received[-3:] == [t.sequential_id for t in (unsubscribed[-1], *after)]


def test_unsubscribing_again_after_resubscribing_closes_again(
    quiet_sim: Simulator, make_client: MakeIdleClient
) -> None:
    client, _, _ = make_client(quiet_sim, TRADES)
    for round_ in (1, 2):
        assert client.wait_live(WAIT)
        client.set_subscriptions([])
        assert client.wait_until(_idle, WAIT)
        assert quiet_sim.ws.wait_for(lambda st: st.connections == 0, WAIT)
        assert client.status().connects == round_
        client.set_subscriptions(TRADES)
    assert client.wait_live(WAIT)
    status = client.status()
    assert (status.connects, status.connect_failures, status.recoveries) == (3, 0, 0)


def test_a_market_dropped_from_a_live_subscription_and_added_back_gets_no_bogus_gap(
    quiet_sim: Simulator, make_client: MakeIdleClient, rest: RestClient
) -> None:
    client, got, _ = make_client(quiet_sim, BOTH_TRADES, trade_source=rest)
    assert client.wait_live(WAIT)
    a0 = quiet_sim.engine.step_market(MARKET, 1)[0]
    b0 = quiet_sim.engine.step_market(OTHER, 1)[0]
    assert got.wait_for(lambda items: {a0.sequential_id, b0.sequential_id} <= sids(items))

    # A different non-empty set goes out on the live connection; MARKET's snapshot
    # comes again as a duplicate, which shows the new request took effect.
    duplicates = client.status().duplicates
    client.set_subscriptions(TRADES)
    assert client.wait_until(lambda s: s.duplicates > duplicates, WAIT)
    assert client.status().connects == 1
    dropped = quiet_sim.engine.step_market(OTHER, 5)  # OTHER is not subscribed now

    # An outage; OTHER is asked for again meanwhile (it takes effect on the reconnect).
    quiet_sim.ws.set_accepting(False)
    assert quiet_sim.ws.drop_all() == 1
    assert client.wait_until(lambda s: s.connect_failures >= 1, WAIT)
    client.set_subscriptions(BOTH_TRADES)
    missed = quiet_sim.engine.step_market(MARKET, 4)  # MARKET stayed subscribed: a real hole
    quiet_sim.ws.set_accepting(True)
    assert client.wait_until(lambda s: s.recoveries >= 1, WAIT)
    a1 = quiet_sim.engine.step_market(MARKET, 1)[0]
    b1 = quiet_sim.engine.step_market(OTHER, 1)[0]
    assert got.wait_for(lambda items: {a1.sequential_id, b1.sequential_id} <= sids(items))

    status = client.status()
    assert (status.gap_fills, status.gap_filled, status.gaps) == (1, len(missed) - 1, 0)
    assert not any(isinstance(i, TradeGap) for i in got.snapshot())
    # MARKET: every trade once, in the simulator's order (the hole was filled).
    market_ids = _trade_ids(got, MARKET)
    log = [t.sequential_id for t in quiet_sim.engine.trades(MARKET)]
    assert market_ids == log[log.index(market_ids[0]) :]
    # OTHER: nothing of the period it was unsubscribed, but the newest (its new snapshot).
    other_ids = _trade_ids(got, OTHER)
    assert len(other_ids) == len(set(other_ids))
    skipped = {t.sequential_id for t in dropped}
    assert [sid for sid in other_ids if sid in skipped] == [dropped[-1].sequential_id]
    assert other_ids[-2:] == [dropped[-1].sequential_id, b1.sequential_id]


def test_emptying_the_subscriptions_during_an_outage_goes_idle_without_retrying(
    quiet_sim: Simulator, make_client: MakeIdleClient
) -> None:
    client, _, probe = make_client(quiet_sim, TRADES)
    assert client.wait_live(WAIT)
    quiet_sim.ws.set_accepting(False)
    assert quiet_sim.ws.drop_all() == 1
    assert client.wait_until(lambda s: s.connect_failures >= 1, WAIT)
    client.set_subscriptions([])
    assert client.wait_until(_idle, WAIT)
    calls = probe.connector_calls
    quiet_sim.ws.set_accepting(True)
    client.set_subscriptions(TRADES)
    assert client.wait_live(WAIT)
    status = client.status()
    assert probe.connector_calls == calls + 1  # straight to one successful connect
    assert status.recoveries == 0  # a fresh start after idle, not a recovery


def test_an_invalid_set_is_refused_and_changes_nothing(
    quiet_sim: Simulator, make_client: MakeIdleClient
) -> None:
    client, _, _ = make_client(quiet_sim)
    assert client.wait_until(_idle, WAIT)
    with pytest.raises(InvalidRequest) as caught:
        client.set_subscriptions(
            [Subscription(DataType.TRADE, (MARKET,)), Subscription(DataType.TRADE, (OTHER,))]
        )
    assert caught.value.parameter == "subscriptions"
    assert client.subscriptions == ()
    assert _idle(client.status())


def test_stop_wakes_an_idle_client_at_once(
    quiet_sim: Simulator, make_client: MakeIdleClient
) -> None:
    client, _, probe = make_client(quiet_sim)
    assert client.wait_until(_idle, WAIT)
    # True only if the receive thread ended within the timeout: it was woken, not waited out.
    assert client.stop(timeout=WAIT)
    assert client.status().state is ConnectionState.STOPPED
    assert probe.connector_calls == 0
    assert probe.clock.sleeps == 0
