"""The REST fallback actor: the direct Upbit REST client, on the process-wide rate limiter.

When the smart router is out, requests go straight to :class:`RestFallback`. It holds one
:class:`~quotation.rest.RestClient` built in ``on_start`` on the ONE
:class:`~quotation.rest.RateLimiter` passed to its constructor (the router's too: one budget
per Upbit group; a private limiter would silently double the rate) and closed in
``on_stop`` and ``on_failure``. A restart builds a new actor from the same arguments.

Messages (asked; :mod:`actors.messages`)::

    TickerRequest, OrderbookRequest   → Reply(source=rest_fallback), stamped by the oldest
                                        snapshot's own exchange timestamp
    CandlesRequest, TradesRequest     → Reply(source=rest_fallback), stamped as_of the wall
                                        time (clock.time()) it was answered
    HealthRequest                     → RestHealth: last success/failure, failures in a row,
                                        last error, ban and paused groups from the limiter
    LaneRequest                       → its RestLane (below)
    anything else                     → TypeError naming it

A request past its ``deadline`` (:mod:`actors.messages`, on the actor's ``clock``) is answered
at once with :class:`~actors.errors.RequestExpired`, not sent and not counted as a failure: a
request buffered while the actor restarted, or queued behind a slow one, is not replayed
through the shared limiter. A request still in time is sent with what is left of its deadline
as the client's per-call ``deadline`` (the call ends by then).

The lane (:class:`RestLane`): the same request path, lent to the facade so that a host's
thread makes the call itself, without two thread hops (~130 µs on a ~870 µs loopback call).
Why that keeps the actor's guarantees is in the class's docstring.

Errors: the typed ``quotation`` errors (``RateLimited``, ``Banned``, ``ServerError``,
``TransportError``, ``FormatError``, ``InvalidRequest``) go back to the asker unchanged and
the actor lives on. Every one but ``InvalidRequest`` (the caller's mistake) counts as a
failed request in :class:`~actors.messages.RestHealth`; so does an injected ``raise``.

Fault points (:mod:`actors.faults`, actor ``rest_fallback``): ``start`` first thing in
``on_start``; ``request`` on each request; ``normalize`` on the parsed models before the
reply (a ``corrupt`` there spoils their payload and re-validating it raises ``FormatError``
to the asker, counted as a failure: :mod:`actors.revalidate`). A crash at either ask point
goes back to the asker and the actor dies of it (``CrashNow``), closing its client.

Clock: ``clock`` stamps answers and health times; it defaults to the limiter's clock, so the
limiter's ``banned_until`` and the health times are on one clock. The client itself always
runs on the limiter's clock (its waits and deadlines must agree with the limiter's).

Logging (logger ``actors.rest_fallback``): DEBUG per failed request, INFO on start and stop.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import Any

import pykka

from actors.errors import check_deadline
from actors.faults import ActorName, CrashNow, FaultBoard, FaultPoint, InjectedCrash, InjectedFault
from actors.messages import (
    CandlesRequest,
    HealthRequest,
    LaneRequest,
    MarketData,
    OrderbookRequest,
    Reply,
    Request,
    RestHealth,
    Source,
    TickerRequest,
    TradesRequest,
)
from actors.rest_health import RestHealthBoard
from actors.revalidate import checked
from quotation.clock import Clock
from quotation.errors import InvalidRequest, QuotationError
from quotation.rest import RateLimiter, RestClient, RestConfig

__all__ = ["RestFallback", "RestLane"]

logger = logging.getLogger(__name__)

_ME = ActorName.REST_FALLBACK


class RestFallback(pykka.ThreadingActor):
    """The direct REST client as an actor, sharing the process-wide ``limiter``."""

    def __init__(
        self,
        rest_config: RestConfig,
        limiter: RateLimiter,
        *,
        faults: FaultBoard | None = None,
        clock: Clock | None = None,
        health: RestHealthBoard | None = None,
    ) -> None:
        super().__init__()
        self._config = rest_config
        self._limiter = limiter
        self._faults = faults if faults is not None else FaultBoard()
        self._clock: Clock = clock if clock is not None else limiter.clock
        self._client: RestClient | None = None
        self._lane: RestLane | None = None
        self._last_success_at: float | None = None
        self._last_failure_at: float | None = None
        self._consecutive_failures = 0
        self._board = health if health is not None else RestHealthBoard()
        """Where each request is published as it begins and ends (:mod:`actors.rest_health`;
        the health probe reads it without queuing behind the host's requests)."""
        self._last_error: str | None = None

    @property
    def limiter(self) -> RateLimiter:
        """The shared limiter its client takes its slots from."""
        return self._limiter

    @property
    def client(self) -> RestClient | None:
        """Its REST client while started; ``None`` before ``on_start`` and once closed."""
        return self._client

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def lane(self) -> RestLane | None:
        """Its lane while started (closed once it stops); ``None`` before ``on_start``."""
        return self._lane

    def on_start(self) -> None:
        self._faults.at(_ME, FaultPoint.START)
        self._client = RestClient(self._config, limiter=self._limiter)
        self._lane = RestLane(self, self._client, self._faults)
        logger.info("REST fallback started")

    def on_stop(self) -> None:
        self._close()
        logger.info("REST fallback stopped")

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._close()

    def _close(self) -> None:
        """Close the lane first (no caller starts a call on it any more), then the client:
        at once, or by the caller whose call is in flight, when it ends (never under it)."""
        client, self._client = self._client, None
        lane = self._lane
        if lane is not None:
            lane.close()
        elif client is not None:
            client.close()

    # -- messages --------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        match message:
            case TickerRequest() | CandlesRequest() | TradesRequest() | OrderbookRequest():
                return self._answer(message)
            case HealthRequest():
                return self._health()
            case LaneRequest():
                return self._lane
            case CrashNow():
                raise message.error()
            case _:
                raise TypeError(f"RestFallback does not take {type(message).__name__}")

    def _answer(self, request: Request) -> Reply:
        lane = self._lane
        if lane is None:  # pykka delivers no message before on_start succeeded
            raise RuntimeError("RestFallback is not started")
        with lane.lock:  # one call at a time: this one or a caller's on the lane
            return self._serve(lane.client, request, faults=True)

    def _serve(self, client: RestClient, request: Request, *, faults: bool) -> Reply:
        """One request on ``client`` (the caller holds the lane's lock): expired → at once;
        the fault points when ``faults`` (the actor's own thread); health recorded."""
        left = check_deadline(request, request.deadline, self._clock.monotonic())
        self._board.begin(self._clock.monotonic())
        try:
            if faults:
                self._faults.at(_ME, FaultPoint.REQUEST)
            reply = self._fetch(client, request, left, faults=faults)
        except InjectedCrash as crash:
            self._board.ended()
            self.actor_ref.tell(CrashNow.of(crash))
            raise
        except InvalidRequest:
            self._board.ended()
            raise  # the caller's mistake: never a failure of the fallback
        except (QuotationError, InjectedFault) as error:
            self._failed(error)
            raise
        except BaseException:
            self._board.ended()  # anything else: no outcome, but no longer in flight
            raise
        self._last_success_at = self._clock.monotonic()
        self._consecutive_failures = 0
        self._board.succeeded(self._last_success_at)
        return reply

    def _fetch(self, client: RestClient, request: Request, left: float | None, *,
               faults: bool) -> Reply:
        items: list[MarketData]
        as_of: float | None = None
        match request:
            case TickerRequest(markets):
                items = list(client.get_tickers(markets, deadline=left))
            case OrderbookRequest(markets):
                items = list(client.get_orderbooks(markets, deadline=left))
            case CandlesRequest(market, interval, count, to):
                items = list(client.get_candles(market, interval, count=count, to=to,
                                                deadline=left))
                as_of = self._clock.time()
            case TradesRequest(market, count):
                items = list(client.get_trades(market, count=count, deadline=left))
                as_of = self._clock.time()
        if faults:
            items = checked(self._faults, _ME, FaultPoint.NORMALIZE, items)
        return Reply.of(items, Source.REST_FALLBACK, as_of=as_of)

    def _failed(self, error: Exception) -> None:
        self._last_failure_at = self._clock.monotonic()
        self._consecutive_failures += 1
        self._last_error = f"{type(error).__name__}: {error}"
        self._board.failed(self._last_failure_at, self._last_error)
        logger.debug("REST fallback request failed (%d in a row): %s",
                     self._consecutive_failures, self._last_error)

    def _health(self) -> RestHealth:
        status = self._limiter.status()
        paused = tuple(name for name, group in status.groups.items()
                       if group.paused_until is not None)
        return RestHealth(
            now=self._clock.monotonic(),
            last_success_at=self._last_success_at,
            last_failure_at=self._last_failure_at,
            consecutive_failures=self._consecutive_failures,
            last_error=self._last_error,
            banned_until=status.banned_until,
            paused_groups=paused,
        )


class RestLane:
    """A running :class:`RestFallback`'s request path, lent to callers in their own thread.

    :meth:`fetch` makes the call in the caller's thread, or answers ``None`` (then ask the
    actor as usual): the lane is closed, busy, or a fault of ``rest_fallback`` is live. It
    is the actor's path, not a second client; why that keeps the actor's guarantees:

    * **One call at a time, as before.** The lane's lock is held by whoever makes a REST
      fallback call: the actor for each request from its inbox (it waits for the lock), or a
      caller that found the lane free (it never waits: a busy lane answers ``None``). So at
      most one fallback call is in flight, on the one client, as when every request went
      through the inbox, and the health record (successes, failures in a row, last error,
      what ``RestHealth`` reports and the probe reads) is written by one thread at a time.
    * **Restarts.** The actor closes its lane first thing when it stops or fails
      (``on_stop``, ``on_failure``); a closed lane answers ``None``; the client is closed by
      whoever releases the lock last, so never under a call in flight, and a caller whose
      call began before the close finishes it on the still-open client. A new instance
      lends a new lane (the facade asks each new instance for it: ``LaneRequest``).
    * **Fault injection.** While any fault of ``rest_fallback`` is live on the board, every
      request goes through the inbox and its fault points (``request``, ``normalize``), as
      before; with none live those points do nothing, so skipping them changes nothing. A
      fault injected while a lane call runs applies from the next request, as for a call
      the actor has begun. A hang or delay therefore never holds a host's thread.
    * **Liveness.** The actor's thread stays free for its supervisor's pings while a caller
      uses the lane; a lane call is bounded by its request's ``deadline`` (the client's
      per-call deadline; ``call_deadline`` without one), so the actor waits for the lock at
      most that long, well within its liveness deadline.
    * **The shared limiter.** The same client on the same process-wide limiter: the same
      budget, the same 429 pauses and 418 ban, waited for in the caller's thread and bounded
      by the request's deadline.
    """

    __slots__ = ("_client", "_faults", "_open", "_owner", "_shut", "lock")

    def __init__(self, owner: RestFallback, client: RestClient, faults: FaultBoard) -> None:
        self._owner = owner
        self._client = client
        self._faults = faults
        self.lock = threading.Lock()
        """Held by whoever makes a call (the actor blocks on it; a lane caller never does)."""
        self._open = True
        self._shut = False

    @property
    def open(self) -> bool:
        """Whether the instance that lent it still runs (a closed lane answers ``None``)."""
        return self._open

    @property
    def client(self) -> RestClient:
        return self._client

    def fetch(self, request: Request) -> Reply | None:
        """The REST fallback's reply to ``request``, made in this thread; ``None`` if the
        lane is closed, busy, or a fault of ``rest_fallback`` is live (ask the actor). Raises
        what the actor would answer: ``RequestExpired``, the typed ``quotation`` errors."""
        if not self._open or (self._faults.enabled and self._faulted()):
            return None
        if not self.lock.acquire(blocking=False):
            return None
        try:
            if self._closed():  # closed while this caller took the lock
                return None
            return self._owner._serve(self._client, request, faults=False)
        finally:
            self.lock.release()
            if self._closed():
                self._try_shut()

    def close(self) -> None:
        """No call starts on the lane any more; the client is closed now if no call is in
        flight, else by that call when it ends."""
        self._open = False
        self._try_shut()

    def _try_shut(self) -> None:
        if self._shut or not self.lock.acquire(blocking=False):
            return  # closed already, or a call is in flight: it shuts when it releases
        try:
            if not self._shut:
                self._shut = True
                self._client.close()
        finally:
            self.lock.release()

    def _closed(self) -> bool:
        return not self._open  # read anew: another thread closes it

    def _faulted(self) -> bool:
        return any(fault.actor is _ME for fault in self._faults.active())
