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
    anything else                     → TypeError naming it

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
from types import TracebackType
from typing import Any

import pykka

from actors.faults import ActorName, CrashNow, FaultBoard, FaultPoint, InjectedCrash, InjectedFault
from actors.messages import (
    CandlesRequest,
    HealthRequest,
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

__all__ = ["RestFallback"]

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

    def on_start(self) -> None:
        self._faults.at(_ME, FaultPoint.START)
        self._client = RestClient(self._config, limiter=self._limiter)
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
        client, self._client = self._client, None
        if client is not None:
            client.close()

    # -- messages --------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        match message:
            case TickerRequest() | CandlesRequest() | TradesRequest() | OrderbookRequest():
                return self._answer(message)
            case HealthRequest():
                return self._health()
            case CrashNow():
                raise message.error()
            case _:
                raise TypeError(f"RestFallback does not take {type(message).__name__}")

    def _answer(self, request: Request) -> Reply:
        self._board.begin(self._clock.monotonic())
        try:
            self._faults.at(_ME, FaultPoint.REQUEST)
            reply = self._fetch(request)
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
        self._last_success_at = self._clock.monotonic()
        self._consecutive_failures = 0
        self._board.succeeded(self._last_success_at)
        return reply

    def _fetch(self, request: Request) -> Reply:
        client = self._client
        if client is None:  # pykka delivers no message before on_start succeeded
            raise RuntimeError("RestFallback is not started")
        items: list[MarketData]
        as_of: float | None = None
        match request:
            case TickerRequest(markets):
                items = list(client.get_tickers(markets))
            case OrderbookRequest(markets):
                items = list(client.get_orderbooks(markets))
            case CandlesRequest(market, interval, count, to):
                items = list(client.get_candles(market, interval, count=count, to=to))
                as_of = self._clock.time()
            case TradesRequest(market, count):
                items = list(client.get_trades(market, count=count))
                as_of = self._clock.time()
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
