"""The smart router: each request from a fresh WebSocket entry or from REST, never failing for
want of a WebSocket.

:class:`SmartRouter` is a plain pykka actor. ``on_start`` opens a :class:`RestClient` on the
process's one limiter and a :class:`WebSocketClient` that starts idle. Per request:

1. a request past its ``deadline`` (:mod:`actors.messages`) is answered at once with
   :class:`~actors.errors.RequestExpired` (no demand counted, no REST call: a request
   buffered while the router restarted, or queued behind a slow call, is not replayed
   through the shared limiter); then fault point ``request``;
2. the demand is counted (:class:`~actors.routing.Demand`); markets asked for often are
   subscribed (ticker, orderbook, trade: one connection, the whole set re-sent), markets
   neither asked for nor read from the board by a host (:meth:`SnapshotBoard.note_read`)
   within ``cold_after`` dropped; a probe re-evaluates the demand without counting, so a
   cold market is dropped even when no other request comes;
3. the channel (:mod:`actors.routing`): the :class:`~actors.snapshots.SnapshotBoard` answers
   when every market is fresh and the WebSocket healthy (``Source.SMART_ROUTER_WEBSOCKET``),
   else one REST call for the whole request, its markets batched
   (``Source.SMART_ROUTER_REST``), bounded by what is left of the request's deadline
   (the client's per-call ``deadline``); candles always come from REST;
4. fault point ``normalize`` on the answer's models (a ``corrupt`` surfaces as
   :class:`~quotation.errors.FormatError`), then the answer is checked against the request
   (types, markets, interval, count; tickers and order books put in the order asked);
5. the reply.

The WebSocket side runs on the client's delivery thread, not the actor's: its consumer
passes each item through fault point ``ws_message`` and publishes the survivors on the board
at once, so a slow REST call never holds back fresh prices, and the host's facade can read
the board in its own thread (:meth:`SnapshotBoard.answer`) under the same rules.

Pinned markets (:class:`~actors.messages.Pin`, from the facade's subscriptions): kept
subscribed whatever the demand (they do not count against ``max_hot_markets``), their
1-minute candles too for ``candles``; each Pin replaces the last. A
:class:`~actors.messages.Listen` listener gets every item the delivery thread put through
``ws_message`` (candles included), right after the board; it must not block, and what it
raises is logged, never lets the delivery thread fail. Both are state of one instance: a
restarted router starts unpinned and unheard until told again.

Coalescing: the actor answers one message at a time, so identical requests that arrive
while a REST call runs wait in its inbox. The REST answer is kept for
``rules.coalesce_window`` (0.1 s) keyed by the request, and those identical requests are
answered with it (counted as ``coalesced``): no second call for the same data. The kept
answer is at most that old and its ``produced_at`` says how old its data is. Errors are not
kept (the next request tries again); a :class:`~actors.messages.ProbeRequest` never reads
or writes it (it must test REST).

Degraded: while markets are subscribed but the connection is down (backing off, refused,
reconnecting after a failure), the board says the WebSocket is unhealthy, every request
goes to REST, and :class:`~actors.messages.RouterStatus` (the answer to
:class:`~actors.messages.HealthRequest`) says ``degraded`` with the reason; it clears once
the connection is live again. A client idle because nothing is hot is not degraded.

Faults (:mod:`actors.faults`, actor ``smart_router``): ``start`` first in ``on_start``;
``request`` and ``normalize`` inside an ask (a crash tells the actor :class:`CrashNow` and
reaches the asker); ``ws_message`` per WebSocket item on the delivery thread: ``raise`` and
``corrupt`` keep that item off the board (counted ``messages_failed`` /
``messages_malformed``), ``crash`` tells the actor :class:`CrashNow` (it dies, closing both
clients), ``hang`` and ``delay`` stall the delivery thread (entries age, requests go to REST).

Logging (logger ``actors.smart_router``): INFO when the subscribed set changes or the
router turns degraded or recovers; DEBUG per REST call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import pykka

from actors.errors import check_deadline
from actors.faults import (
    ActorName,
    CrashNow,
    FaultBoard,
    FaultPoint,
    InjectedCrash,
    InjectedFault,
)
from actors.messages import (
    CandlesRequest,
    HealthRequest,
    Listen,
    Listener,
    MarketData,
    OrderbookRequest,
    Pin,
    ProbeRequest,
    Reply,
    Request,
    RouterStatus,
    Source,
    TickerRequest,
    TradesRequest,
)
from actors.revalidate import as_payload, revalidate
from actors.routing import Demand, RoutingRules, coalesces
from actors.snapshots import SnapshotBoard
from quotation.clock import Clock, SystemClock
from quotation.errors import FormatError
from quotation.models import Candle, Orderbook, Ticker, Trade
from quotation.rest import RateLimiter, RestClient, RestConfig
from quotation.websocket import (
    CloseReason,
    ConnectionState,
    DataType,
    StreamItem,
    Subscription,
    WebSocketClient,
    WebSocketConfig,
    WebSocketStatus,
)

__all__ = ["STOP_TIMEOUT", "SmartRouter", "WebSocketVerdict", "assess_websocket"]

logger = logging.getLogger(__name__)

_ME = ActorName.SMART_ROUTER
C = TypeVar("C")

STOP_TIMEOUT = 5.0
"""Seconds the WebSocket client's threads get to end when the router stops."""

_NOT_FAILURES = (None, CloseReason.UNSUBSCRIBED, CloseReason.STOPPED)
"""How a previous connection may have ended for a new attempt to be a fresh start."""


@dataclass(frozen=True, slots=True)
class WebSocketVerdict:
    """What the router makes of its WebSocket: may it answer, is the router degraded, why."""

    healthy: bool
    degraded: bool
    reason: str | None


def assess_websocket(status: WebSocketStatus, *, wanted: bool) -> WebSocketVerdict:
    """The router's reading of its client's ``status`` (pure).

    Not ``wanted`` (nothing hot): idle by design, neither healthy nor degraded. Wanted and
    LIVE: healthy. Wanted and connecting for the first time (or after being idle): neither.
    Anything else while wanted (backing off, rejected, stopped, reconnecting after a lost
    connection): degraded, REST only.
    """
    state = status.state
    if not wanted:
        return WebSocketVerdict(False, False, None)
    if state is ConnectionState.LIVE:
        return WebSocketVerdict(True, False, None)
    if (state in (ConnectionState.IDLE, ConnectionState.CONNECTING, ConnectionState.SUBSCRIBED)
            and status.last_close in _NOT_FAILURES):
        return WebSocketVerdict(False, False, None)
    why = status.last_close.value if status.last_close is not None else "no connection"
    detail = f": {status.last_error}" if status.last_error else ""
    return WebSocketVerdict(False, True, f"websocket {state.value} after {why}{detail}")


class SmartRouter(pykka.ThreadingActor):
    """The primary data path; see the module docstring.

    ``ws_config`` is taken without its subscriptions (the router decides them); ``limiter``
    is the process's one REST budget; ``snapshots`` the board the host's facade reads (one of
    the router's own if not given); ``clock`` times the rules and the WebSocket client.
    """

    def __init__(
        self,
        rest_config: RestConfig,
        ws_config: WebSocketConfig,
        limiter: RateLimiter,
        *,
        rules: RoutingRules | None = None,
        snapshots: SnapshotBoard | None = None,
        faults: FaultBoard | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__()
        self._rest_config = rest_config
        self._ws_config = replace(ws_config, subscriptions=())
        self._limiter = limiter
        self._rules = rules if rules is not None else RoutingRules()
        self._board = snapshots if snapshots is not None else SnapshotBoard()
        self._writer: int | None = None
        """This instance's writer token on the board (:meth:`SnapshotBoard.claim`)."""
        self._faults = faults if faults is not None else FaultBoard()
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._rest: RestClient | None = None
        self._ws: WebSocketClient | None = None
        self._demand = Demand(self._rules)
        self._subscribed: tuple[str, ...] = ()
        self._candles: tuple[str, ...] = ()
        self._pinned = Pin(())
        self._listener: Listener | None = None
        self._memo: dict[Request, tuple[float, Reply]] = {}
        self._degraded = False
        self._rest_calls = 0
        self._ws_answers = 0
        self._coalesced = 0
        self._rest_evidence: tuple[float, Reply] | None = None
        """(when, reply) of the last REST call if it succeeded and none failed since."""
        self._messages_failed = 0
        self._messages_malformed = 0

    @property
    def snapshots(self) -> SnapshotBoard:
        return self._board

    # -- lifecycle -----------------------------------------------------------------------

    def on_start(self) -> None:
        self._faults.at(_ME, FaultPoint.START)
        self._writer = self._board.claim()  # supersedes an abandoned predecessor's writes
        try:
            self._rest = RestClient(self._rest_config, limiter=self._limiter)
            self._ws = WebSocketClient(self._ws_config, clock=self._clock,
                                       trade_source=self._rest)
            self._ws.add_consumer(self._on_stream)
            self._ws.start()
        except BaseException:
            self._close()  # pykka calls no hook for a failed start
            raise

    def on_stop(self) -> None:
        self._close()

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        self._close()

    def _close(self) -> None:
        writer = self._writer
        self._board.clear(writer=writer)  # a no-op once a successor has claimed the board
        ws, self._ws = self._ws, None
        rest, self._rest = self._rest, None
        if ws is not None and not ws.stop(STOP_TIMEOUT):
            logger.warning("smart router: WebSocket threads still running after %.1f s",
                           STOP_TIMEOUT)
        if rest is not None:
            rest.close()
        self._memo.clear()
        self._board.clear(writer=writer)  # again: a batch delivered while it stopped is gone

    # -- messages ------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        match message:
            case CrashNow():
                raise message.error()
            case HealthRequest():
                return self._status()
            case Pin():
                self._pinned = message
                self._follow_demand(self._clock.monotonic())
                return None
            case Listen(listener):
                self._listener = listener
                return None
            case ProbeRequest():
                return self._probe(message)
            case TickerRequest() | OrderbookRequest() | TradesRequest() | CandlesRequest():
                return self._serve(message, probe=False)
            case _:
                raise TypeError(f"SmartRouter does not take {type(message).__name__}")

    def _probe(self, probe: ProbeRequest) -> Reply:
        """The probe's ticker through REST, or the router's own evidence (see
        :class:`~actors.messages.ProbeRequest`): its last REST answer, when it succeeded
        within ``evidence_within`` and nothing failed since. An injected crash kills the
        actor whichever way the probe went (as :meth:`_serve` does)."""
        try:
            return self._probe_answer(probe)
        except InjectedCrash as crash:
            self.actor_ref.tell(CrashNow.of(crash))  # dies when it reaches the message
            raise

    def _probe_answer(self, probe: ProbeRequest) -> Reply:
        now = self._clock.monotonic()
        check_deadline(probe, probe.deadline, now)
        evidence = self._rest_evidence
        if evidence is not None and probe.evidence_within > 0:
            at, reply = evidence
            if now - at <= probe.evidence_within:
                self._faults.at(_ME, FaultPoint.REQUEST)  # a request fault hits probes too
                self._follow_demand(now)
                self._assess()
                return reply
        return self._answer(TickerRequest((probe.market,), deadline=probe.deadline), probe=True)

    def _serve(self, request: Request, *, probe: bool) -> Reply:
        try:
            return self._answer(request, probe=probe)
        except InjectedCrash as crash:
            self.actor_ref.tell(CrashNow.of(crash))  # dies when it reaches the message
            raise

    def _answer(self, request: Request, *, probe: bool) -> Reply:
        check_deadline(request, request.deadline, self._clock.monotonic())
        self._faults.at(_ME, FaultPoint.REQUEST)
        now = self._clock.monotonic()
        if not probe:
            self._demand.record(_markets(request), now)
        self._follow_demand(now)  # a probe only re-evaluates: cold markets go
        self._assess()
        reply = None if probe else self._board.answer(request, now, self._rules)
        if reply is not None:
            self._ws_answers += 1
            return self._normalized(request, reply.data, reply.source, None)
        if probe:
            return self._from_rest(request, probe=True)
        kept = self._coalesced_reply(request, now)
        if kept is not None:
            return kept
        reply = self._from_rest(request)
        self._memo[request] = (self._clock.monotonic(), reply)
        return reply

    def _coalesced_reply(self, request: Request, now: float) -> Reply | None:
        rules = self._rules
        for key in [k for k, (at, _) in self._memo.items() if not coalesces(at, now, rules)]:
            del self._memo[key]
        kept = self._memo.get(request)
        if kept is None:
            return None
        self._coalesced += 1
        return kept[1]

    def _from_rest(self, request: Request, *, probe: bool = False) -> Reply:
        try:
            reply = self._call_rest(request)
        except Exception:
            self._rest_evidence = None  # a failure since: the next probe makes a call
            raise
        if not probe:  # evidence is the host's traffic: a probe's own call proves only itself
            self._rest_evidence = (self._clock.monotonic(), reply)
        return reply

    def _call_rest(self, request: Request) -> Reply:
        rest = _opened(self._rest)
        left = check_deadline(request, request.deadline, self._clock.monotonic())
        self._rest_calls += 1
        logger.debug("smart router: REST for %r", request)
        items: Sequence[MarketData]
        as_of: float | None = None
        if isinstance(request, TickerRequest):
            items = rest.get_tickers(request.markets, deadline=left)
        elif isinstance(request, OrderbookRequest):
            items = rest.get_orderbooks(request.markets, deadline=left)
        elif isinstance(request, TradesRequest):
            items = rest.get_trades(request.market, count=request.count, deadline=left)
            as_of = self._clock.time()
        else:
            items = rest.get_candles(request.market, request.interval, count=request.count,
                                     to=request.to, deadline=left)
            as_of = self._clock.time()
        return self._normalized(request, items, Source.SMART_ROUTER_REST, as_of)

    def _normalized(
        self, request: Request, items: Sequence[MarketData], source: Source, as_of: float | None
    ) -> Reply:
        """Fault point ``normalize``, then the answer checked against the request."""
        ordered = _in_request_order(request, items)
        action = self._faults.check(_ME, FaultPoint.NORMALIZE)
        if action is not None:
            spoiled = self._faults.apply(action, [as_payload(item) for item in ordered])
            ordered = revalidate(spoiled, [type(item) for item in ordered])
        _check_answer(request, ordered)
        return Reply.of(ordered, source, as_of=as_of)

    # -- demand and the WebSocket ---------------------------------------------------------

    def _follow_demand(self, now: float) -> None:
        pinned = self._pinned.markets
        hot = self._demand.hot_markets(now, self._board.read_at)
        wanted = pinned + tuple(m for m in hot if m not in pinned)
        candles = self._pinned.candles
        if (wanted, candles) == (self._subscribed, self._candles) or self._ws is None:
            return
        logger.info("smart router: subscribing %d market(s): %s", len(wanted), ", ".join(wanted))
        # before the client: the new markets' first items count
        self._board.set_markets(wanted, writer=self._writer)
        self._subscribed, self._candles = wanted, candles
        self._ws.set_subscriptions(_subscriptions(wanted, candles))

    def _assess(self) -> WebSocketVerdict:
        ws = _opened(self._ws)
        verdict = assess_websocket(ws.status(), wanted=bool(self._subscribed))
        self._board.set_ws_healthy(verdict.healthy, writer=self._writer)
        if verdict.degraded != self._degraded:
            self._degraded = verdict.degraded
            if verdict.degraded:
                logger.warning("smart router degraded, REST only: %s", verdict.reason)
            else:
                logger.info("smart router: WebSocket back, degraded mode over")
        return verdict

    def _on_stream(self, batch: tuple[StreamItem, ...]) -> None:
        """The client's delivery thread: ``ws_message`` per item, survivors onto the board."""
        ws = self._ws
        if ws is None or not self._board.owns(self._writer):
            return  # stopped, or superseded: a newer router instance owns the board
        received_at = self._clock.monotonic()
        faults = self._faults
        taken: list[StreamItem] = []
        for item in batch:
            action = faults.check(_ME, FaultPoint.WS_MESSAGE)
            if action is None:
                taken.append(item)
                continue
            try:
                spoiled = faults.apply(action, [as_payload(item)])
                taken.extend(revalidate(spoiled, [type(item)]))
            except InjectedCrash as crash:
                self.actor_ref.tell(CrashNow.of(crash))  # dies when it reaches the message
                return
            except InjectedFault:
                self._messages_failed += 1
            except FormatError:
                self._messages_malformed += 1
        self._board.publish(taken, received_at, writer=self._writer)
        listener = self._listener
        if listener is not None and taken:
            try:
                listener(tuple(taken))
            except Exception:  # the host's side must never stop the delivery thread
                logger.exception("smart router: the stream listener failed")
        verdict = assess_websocket(ws.status(), wanted=bool(self._subscribed))
        self._board.set_ws_healthy(verdict.healthy, writer=self._writer)

    def _status(self) -> RouterStatus:
        ws = _opened(self._ws)
        verdict = self._assess()
        return RouterStatus(
            now=self._clock.monotonic(),
            degraded=verdict.degraded,
            reason=verdict.reason,
            subscribed=self._subscribed,
            connection=ws.status(),
            rest_calls=self._rest_calls,
            ws_answers=self._ws_answers,
            coalesced=self._coalesced,
            messages_failed=self._messages_failed,
            messages_malformed=self._messages_malformed,
        )


def _opened(client: C | None) -> C:
    if client is None:
        raise RuntimeError("the smart router is not started (or already stopped)")
    return client


def _markets(request: Request) -> tuple[str, ...]:
    if isinstance(request, TickerRequest | OrderbookRequest):
        return request.markets
    return (request.market,)


def _subscriptions(markets: tuple[str, ...], candles: tuple[str, ...] = ()
                   ) -> tuple[Subscription, ...]:
    found = [Subscription(kind, markets) for kind in
             (DataType.TICKER, DataType.ORDERBOOK, DataType.TRADE)] if markets else []
    if candles:
        found.append(Subscription(DataType.CANDLE_1M, candles))
    return tuple(found)


def _in_request_order(request: Request, items: Sequence[MarketData]) -> list[MarketData]:
    """Tickers and order books in the order asked (REST answers in the server's order);
    a market asked for and not answered is a :class:`FormatError`."""
    if not isinstance(request, TickerRequest | OrderbookRequest):
        return list(items)
    by_market: dict[str, MarketData] = {}
    for item in items:
        market = getattr(item, "market", None)
        if isinstance(market, str):
            by_market[market] = item
    missing = [m for m in request.markets if m not in by_market]
    if missing:
        raise FormatError(f"no answer for {', '.join(missing)}",
                          payload=_payload_name(request), field="market")
    return [by_market[m] for m in request.markets]


_EXPECTED: dict[type[Any], type[Any]] = {
    TickerRequest: Ticker,
    OrderbookRequest: Orderbook,
    TradesRequest: Trade,
    CandlesRequest: Candle,
}


def _payload_name(request: Request) -> str:
    return _EXPECTED[type(request)].__name__.lower()


def _check_answer(request: Request, items: Sequence[MarketData]) -> None:
    """:class:`FormatError` unless ``items`` are what ``request`` asked for."""
    expected = _EXPECTED[type(request)]
    name = _payload_name(request)
    markets = set(_markets(request))
    checks: list[tuple[str, Callable[[Any], bool]]] = [
        ("type", lambda item: isinstance(item, expected)),
        ("market", lambda item: item.market in markets),
    ]
    if isinstance(request, CandlesRequest):
        interval = request.interval
        checks.append(("interval", lambda item: item.interval is interval))
    for item in items:
        for field, ok in checks:
            if not ok(item):
                raise FormatError(f"{name}: unexpected {field} in {item!r:.120}",
                                  payload=name, field=field)
    if isinstance(request, TradesRequest | CandlesRequest) and len(items) > request.count:
        raise FormatError(f"{name}: {len(items)} items for count {request.count}",
                          payload=name, field="count")
