"""The Upbit Quotation REST client: every public endpoint, typed answers, typed errors.

::

    with RestClient(RestConfig(base_url=sim.base_url), limiter=limiter) as client:
        client.get_tickers(["KRW-BTC", "KRW-ETH"])
        client.get_candles("KRW-BTC", "1m", count=500)   # oldest first, paged

Layers: parameters are checked by :mod:`quotation.rest.validation` (an
:class:`~quotation.errors.InvalidRequest` before any network call), every
request takes a slot from the shared :class:`~quotation.rest.ratelimit.RateLimiter`
under its endpoint's group, goes out on one ``requests.Session`` (keep-alive)
with a (connect, read) timeout, and the JSON body becomes models through
:mod:`quotation.parsing` (decoded by orjson; an order-book body is read by msgspec
straight into the models, ``parse_orderbooks_json``, with the same results and errors).

Errors (all :class:`~quotation.errors.QuotationError`):

=================  ====================================================================
InvalidRequest     bad parameter (before sending); Upbit 400, 404 ``Code not found``
                   (``status`` set; for 404 ``parameter`` is the market parameter)
RateLimited        429 (the group is paused with backoff), or no limiter slot within
                   ``RestConfig.max_wait``
Banned             418: every REST call of the process is paused until ``until``
ServerError        5xx or another unexpected status (``status``, ``body``)
TransportError     connect/read/total timeout, refused, reset, black hole, broken body
IncompleteAnswer   a TransportError: the call's deadline passed (``partial``, ``expected``)
FormatError        the body is not JSON, or not the payload the endpoint promises
BodyTooLarge       a FormatError: the body passed ``max_body_bytes`` (``limit``, ``received``)
=================  ====================================================================

Retries: by default the client retries only a 429, once, after the group's
pause, and only if the pause fits in ``max_wait``; it never retries a 4xx, a
418 or a malformed answer. 5xx and transport retries are off by default (the
caller — the router or the fallback — decides) and can be turned on in
:class:`RestConfig`.

How long a call can take: every HTTP exchange (one attempt) has a hard
``total_timeout``, counted on the injected clock from handing the request to
the session (connecting included) through the status line and headers to the
last byte of the body: every socket read (headers too, through
:class:`~quotation.rest.deadline_adapter.DeadlineAdapter`) waits at most the
time left, so a server that drips its headers or trickles its body is cut off
about at the deadline (a ``TransportError`` naming the total timeout and the
path; the connection is closed, not reused). Independently, ``read_timeout`` is
the longest silence (capped at ``total_timeout``) and ``connect_timeout`` bounds
connecting. A whole call — its pages, market chunks, retries and limiter waits —
is under one deadline, ``call_deadline`` (30 s) or its ``deadline=``: each wait
and exchange gets only the time left, and once it passes the call raises
:class:`~quotation.errors.IncompleteAnswer` with what was fetched (``partial``),
never a short list as if whole.

How much a call can hold: at most ``max_body_bytes`` of one answer's body (error
answers too), counted as it streams in, both the bytes on the wire (compressed, if
the server compressed) and the decoded bytes; each read asks for no more than the
limit leaves plus one, so a gzip bomb or a body that never ends stops one decoded
byte past the limit. A declared ``Content-Length`` over the limit stops the call
before the body is read. Either way a :class:`~quotation.errors.BodyTooLarge`
naming the limit and the path; the connection is closed, not reused, and the
limiter slot is returned as a failure (as after a timeout), not as a 429. It is a
malformed answer, so it is never retried. Error bodies and success bodies nested
deeper than a decoder can follow are a readable message and a ``FormatError``.

Order of results: candles are returned **oldest first** (ascending
``start``), however many pages they took; tickers, orderbooks and instruments
in the server's order; trades **newest first**, as Upbit sends them (their
``sequential_id`` is not an order, so the client does not re-sort them; page
back with ``cursor=trades[-1].sequential_id``).
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from itertools import islice
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import orjson
import requests
import urllib3

from quotation.clock import Clock
from quotation.errors import (
    Banned,
    BodyTooLarge,
    FormatError,
    IncompleteAnswer,
    InvalidRequest,
    InvalidValue,
    RateLimited,
    ServerError,
    TransportError,
)
from quotation.models import (
    Candle,
    CandleInterval,
    Market,
    Orderbook,
    OrderbookInstrument,
    Ticker,
    Trade,
)
from quotation.parsing import (
    parse_candles,
    parse_markets,
    parse_orderbook_instruments,
    parse_orderbooks_json,
    parse_tickers,
    parse_trades,
)
from quotation.redact import redact_url, redacted_repr
from quotation.rest.answers import (
    AnswerKind,
    ban_duration,
    classify_status,
    parse_error_body,
    retry_after_seconds,
)
from quotation.rest.deadline_adapter import DeadlineAdapter, ExchangeGuard
from quotation.rest.ratelimit import Permit, RateLimiter, process_limiter
from quotation.rest.remaining_req import parse_remaining_req
from quotation.rest.validation import (
    CANDLES_PER_REQUEST,
    format_candle_to,
    validate_candle_count,
    validate_candle_to,
    validate_converting_price_unit,
    validate_cursor,
    validate_days_ago,
    validate_deadline,
    validate_interval,
    validate_is_details,
    validate_level,
    validate_market,
    validate_markets,
    validate_orderbook_count,
    validate_quote_currencies,
    validate_trades_count,
    validate_trades_to,
)
from quotation.values import check_all

__all__ = ["UPBIT_REST_URL", "RestClient", "RestConfig", "chunk_codes"]

logger = logging.getLogger(__name__)

UPBIT_REST_URL = "https://api.upbit.com/v1"
"""Upbit's Quotation REST base (Korea)."""

_READ_SIZE = 65536
"""Most bytes taken from the connection per read (an explicit size makes urllib3 check that
the whole ``Content-Length`` came, so a cut body is a ``TransportError``, not a short body)."""

_T = TypeVar("_T")
Params = list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class RestConfig:
    """How the client talks to Upbit. Every default is stated here once."""

    base_url: str = UPBIT_REST_URL
    connect_timeout: float = 3.05
    """Seconds to establish a connection."""
    read_timeout: float = 5.0
    """Longest silence while waiting for or reading an answer (a black hole ends after it)."""
    total_timeout: float = 15.0
    """Longest one HTTP exchange may take, from sending to the last byte of the body; a
    server that trickles bytes is cut off (``TransportError``) once it is passed."""
    max_wait: float = 10.0
    """Longest total wait for the rate limiter (slots, 429 pauses, bans) within one call."""
    call_deadline: float = 30.0
    """Longest one call may take, all its requests (pages, market chunks, retries) and limiter
    waits included; each request gets only the time left (``IncompleteAnswer`` once passed,
    with what was fetched). 30 s: one request's ``max_wait`` plus ``total_timeout`` (25 s)
    with room, and ``get_candles(count=10000)`` (50 pages at 10 req/s, about 5 s) six times
    over. A call's ``deadline=`` overrides it."""
    rate_limit_retries: int = 1
    """Retries of a 429 after the group's pause (only if the pause fits in ``max_wait``)."""
    server_error_retries: int = 0
    """Retries of a 5xx answer (off: the caller decides)."""
    transport_error_retries: int = 0
    """Retries after a timeout, refused or reset connection (off: the caller decides)."""
    default_ban: float = 60.0
    """Assumed ban length when a 418 answer does not say."""
    max_markets_per_request: int = 100
    """Markets per ``/ticker``, ``/orderbook`` request; more are split into several."""
    max_query_length: int = 2000
    """Longest ``markets=`` value in characters; longer lists are split."""
    pool_size: int = 10
    """Keep-alive connections kept per host (threads beyond it open short-lived ones)."""
    max_body_bytes: int = 4 * 1024 * 1024
    """Longest answer body, in bytes on the wire and decoded (``BodyTooLarge`` beyond it).
    4 MiB: sixteen times the largest answer measured on the simulator (an orderbook of 100
    markets: 256 KiB; ``ticker/all`` for KRW, BTC and USDT: 164 KiB for 232 markets)."""
    user_agent: str = "lifeline-quotation/0.1"

    def __post_init__(self) -> None:
        if not (isinstance(self.base_url, str)
                and self.base_url.startswith(("http://", "https://"))):
            shown = redact_url(self.base_url) if isinstance(self.base_url, str) else self.base_url
            raise InvalidValue(f"base_url must be an http(s) URL, got {shown!r}",
                               field="base_url", value=self.base_url)
        check_all(self, ("connect_timeout", "read_timeout", "total_timeout", "call_deadline"),
                  above=0)
        check_all(self, ("max_wait", "default_ban"), at_least=0)
        check_all(self, ("rate_limit_retries", "server_error_retries", "transport_error_retries"),
                  at_least=0, integer=True)
        check_all(self, ("max_markets_per_request", "max_query_length", "pool_size",
                         "max_body_bytes"), at_least=1, integer=True)

    def __repr__(self) -> str:
        return redacted_repr(self, "base_url")  # credentials in base_url are never shown


@dataclass(frozen=True, slots=True)
class _Endpoint:
    path: str
    group: str
    """The rate-limit group expected before the first ``Remaining-Req`` says otherwise."""
    payload: str
    """The payload name used in FormatError."""
    market_parameter: str | None = None


_MARKETS = _Endpoint("/market/all", "market", "market")
_TICKER = _Endpoint("/ticker", "ticker", "ticker", "markets")
_TICKER_ALL = _Endpoint("/ticker/all", "ticker", "ticker", "quote_currencies")
_TRADES = _Endpoint("/trades/ticks", "crix-trades", "trade", "market")
_ORDERBOOK = _Endpoint("/orderbook", "orderbook", "orderbook", "markets")
_INSTRUMENTS = _Endpoint("/orderbook/instruments", "orderbook", "orderbook_instrument", "markets")


def _decoded(parse: Callable[[object], list[_T]]) -> Callable[[bytes], list[_T]]:
    """A body parser: ``parse`` of what orjson decodes from the body."""

    def parse_body(body: bytes) -> list[_T]:
        return parse(orjson.loads(body))

    return parse_body


_PARSE_MARKETS = _decoded(parse_markets)
_PARSE_TICKERS = _decoded(parse_tickers)
_PARSE_TRADES = _decoded(parse_trades)
_PARSE_INSTRUMENTS = _decoded(parse_orderbook_instruments)


def _candle_endpoint(interval: CandleInterval) -> _Endpoint:
    return _Endpoint(interval.rest_path, "candles", "candle", "market")


def chunk_codes(codes: Sequence[str], max_count: int, max_chars: int) -> list[list[str]]:
    """Split codes into lists of at most ``max_count`` whose comma-joined length ≤ ``max_chars``.

    A single code longer than ``max_chars`` still gets a list of its own.
    """
    chunks: list[list[str]] = []
    current: list[str] = []
    length = 0
    for code in codes:
        added = len(code) + (1 if current else 0)
        if current and (len(current) >= max_count or length + added > max_chars):
            chunks.append(current)
            current, length = [], 0
            added = len(code)
        current.append(code)
        length += added
    if current:
        chunks.append(current)
    return chunks


def _query(params: Params) -> str:
    # quote (not quote_plus): ':' → %3A, '+' → %2B, ' ' → %20; commas between codes stay.
    return urlencode(params, safe=",", quote_via=quote)


class RestClient:
    """A blocking Upbit Quotation REST client, safe to share between threads.

    ``limiter`` defaults to :func:`~quotation.rest.ratelimit.process_limiter`, the
    one process-wide limiter (system clock, Upbit's 10 req/s per group): every
    client built without a limiter shares that one budget, as Upbit counts per
    IP. That is process-global state (its pauses and bans outlast the client);
    pass your own :class:`RateLimiter` to isolate a client, e.g. in a test or
    for a second host with its own budget. ``clock`` times each exchange's
    ``total_timeout``; it defaults to the limiter's clock, and a clock without a
    limiter is refused (:class:`~quotation.errors.InvalidValue`): the process
    limiter cannot run on it. ``session`` may be given (the caller then owns it
    and :meth:`close` leaves it open; the client removes its ``Origin`` header
    and sets ``User-Agent`` and ``Accept``); otherwise the client makes one and
    :meth:`close` closes it. Proxy and certificate settings (the environment's, if the
    session trusts it, and the session's ``proxies``/``verify``/``cert``) are read once,
    when the client is built.
    """

    def __init__(
        self,
        config: RestConfig | None = None,
        *,
        limiter: RateLimiter | None = None,
        clock: Clock | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self._config = config if config is not None else RestConfig()
        if limiter is None:
            if clock is not None:
                # The process limiter sleeps on the system clock: waits on one clock and
                # deadlines on another would agree on neither. Say which limiter is meant.
                raise InvalidValue(
                    "RestClient: a clock needs a limiter on the same clock "
                    "(limiter=RateLimiter(clock)); without both, the process-wide "
                    "limiter and the system clock are used",
                    field="limiter",
                    value=None,
                )
            limiter = process_limiter()
        self._limiter = limiter
        self._clock = clock if clock is not None else limiter.clock
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            adapter = DeadlineAdapter(
                pool_connections=1, pool_maxsize=self._config.pool_size, max_retries=0
            )
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        # Upbit throttles requests that carry an Origin header to 1 per 10 s.
        session.headers.pop("Origin", None)
        session.headers["User-Agent"] = self._config.user_agent
        session.headers["Accept"] = "application/json"
        self._session = session
        self._base = self._config.base_url.rstrip("/")
        self._read_timeout = min(self._config.read_timeout, self._config.total_timeout)
        # What the environment says about proxies and certificates (``HTTPS_PROXY``,
        # ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``...) and the session's own ``proxies``/``verify``/
        # ``cert``, read once for the base URL, as httpx does when a client is built:
        # ``Session.get`` reads them anew on every call (all of ``os.environ``, twice: ~90 µs).
        settings = session.merge_environment_settings(self._base + "/", {}, True, None, None)
        self._send_settings: dict[str, Any] = dict(settings)

    @property
    def config(self) -> RestConfig:
        return self._config

    @property
    def limiter(self) -> RateLimiter:
        return self._limiter

    def close(self) -> None:
        """Close the session's connections if the client made it (idempotent)."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> RestClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- endpoints ---------------------------------------------------------------

    # Every endpoint takes ``deadline=`` (seconds; default ``RestConfig.call_deadline``): the
    # longest the whole call may take, limiter waits and every request included. Once it
    # passes: IncompleteAnswer, with what was fetched so far.

    def get_markets(self, is_details: bool = False, *, deadline: float | None = None
                    ) -> list[Market]:
        """Every trading pair (``/market/all``); ``is_details`` adds warning and cautions."""
        details = validate_is_details(is_details)
        call = self._start(deadline, expected=0)
        params = [("is_details", "true" if details else "false")]
        return self._fetch(_MARKETS, params, _PARSE_MARKETS, call)

    def get_tickers(self, markets: Iterable[str] | str, *, deadline: float | None = None
                    ) -> list[Ticker]:
        """Current tickers of ``markets`` (split into several requests if the list is long)."""
        codes = validate_markets(markets)
        call = self._start(deadline, expected=len(codes))
        return self._fetch_chunked(_TICKER, "markets", codes, [], _PARSE_TICKERS, call=call)

    def get_tickers_by_quote(
        self, quote_currencies: Iterable[str] | str, *, deadline: float | None = None
    ) -> list[Ticker]:
        """Tickers of every market quoted in the given currencies (``/ticker/all``)."""
        quotes = validate_quote_currencies(quote_currencies)
        call = self._start(deadline, expected=0)
        return self._fetch(
            _TICKER_ALL, [("quote_currencies", ",".join(quotes))], _PARSE_TICKERS, call
        )

    def get_candles(
        self,
        market: str,
        interval: CandleInterval | str,
        *,
        count: int = 1,
        to: datetime | str | None = None,
        converting_price_unit: str | None = None,
        deadline: float | None = None,
    ) -> list[Candle]:
        """Up to ``count`` candles ending before ``to`` (exclusive; ``None`` = now), oldest first.

        More than 200 are fetched page by page backwards (each page's ``to`` is
        the oldest candle so far), without duplicates. Fewer come back when
        Upbit has no more (buckets without trades do not exist; seconds candles
        only cover three months). ``converting_price_unit='KRW'`` is for day
        candles only. If ``deadline`` passes first: :class:`IncompleteAnswer` whose
        ``partial`` holds the newest candles fetched so far, oldest first.
        """
        code = validate_market(market)
        kind = validate_interval(interval)
        wanted = validate_candle_count(count)
        end = validate_candle_to(to)
        unit = validate_converting_price_unit(converting_price_unit, kind)
        endpoint = _candle_endpoint(kind)
        call = self._start(deadline, expected=wanted)
        # Newest first, strictly: each page is (Upbit sends newest first; a page that is not
        # is put so), and a later page only adds what is older than the page before it.
        found: list[Candle] = []
        bound: datetime | None = None
        while len(found) < wanted:
            size = min(CANDLES_PER_REQUEST, wanted - len(found))
            params: Params = [("market", code), ("count", str(size))]
            if end is not None:
                params.append(("to", end))
            if unit is not None:
                params.append(("converting_price_unit", unit))
            try:
                page = self._fetch_page(
                    endpoint, params, lambda body: parse_candles(orjson.loads(body), kind), call
                )
            except _CallExpired as exc:
                raise _incomplete(endpoint, call, tuple(reversed(found)), exc) from None
            fresh = page if bound is None else [c for c in page if c.start < bound]
            fresh = _newest_first(fresh)
            found.extend(fresh)
            if len(page) < size or not fresh or len(found) >= wanted:
                break
            bound = min(candle.start for candle in page)
            end = format_candle_to(bound)
        return found[wanted - 1::-1] if len(found) >= wanted else found[::-1]

    def get_trades(
        self,
        market: str,
        *,
        count: int = 1,
        to: str | time | None = None,
        cursor: int | None = None,
        days_ago: int | None = None,
        deadline: float | None = None,
    ) -> list[Trade]:
        """Recent trades of ``market``, newest first (Upbit's order).

        ``to`` is a UTC time of day (``HHmmss``/``HH:mm:ss`` or a ``time``); ``cursor`` a
        ``sequential_id`` to page back from; ``days_ago`` 1–7.
        """
        params: Params = [
            ("market", validate_market(market)),
            ("count", str(validate_trades_count(count))),
        ]
        end = validate_trades_to(to)
        since = validate_cursor(cursor)
        days = validate_days_ago(days_ago)
        if end is not None:
            params.append(("to", end))
        if since is not None:
            params.append(("cursor", str(since)))
        if days is not None:
            params.append(("days_ago", str(days)))
        call = self._start(deadline, expected=int(params[1][1]))
        return self._fetch(_TRADES, params, _PARSE_TRADES, call)

    def get_orderbooks(
        self,
        markets: Iterable[str] | str,
        *,
        count: int | None = None,
        level: object = None,
        deadline: float | None = None,
    ) -> list[Orderbook]:
        """Order books of ``markets``: ``count`` levels (1–30, Upbit's default 30).

        ``level`` aggregates prices (KRW markets only; 0 = native tick).
        """
        codes = validate_markets(markets)
        depth = validate_orderbook_count(count)
        aggregation = validate_level(level, codes)
        extra: Params = []
        if aggregation is not None:
            extra.append(("level", aggregation))
        if depth is not None:
            extra.append(("count", str(depth)))
        call = self._start(deadline, expected=len(codes))
        return self._fetch_chunked(
            _ORDERBOOK, "markets", codes, extra, parse_orderbooks_json, call=call
        )

    def get_orderbook_instruments(
        self, markets: Iterable[str] | str, *, deadline: float | None = None
    ) -> list[OrderbookInstrument]:
        """Tick size and supported ``level`` values of ``markets``."""
        codes = validate_markets(markets)
        call = self._start(deadline, expected=len(codes))
        return self._fetch_chunked(
            _INSTRUMENTS, "markets", codes, [], _PARSE_INSTRUMENTS, call=call
        )

    # -- plumbing ----------------------------------------------------------------

    def _start(self, deadline: object, *, expected: int) -> _Call:
        """A call starting now, ending ``deadline`` (or ``call_deadline``) seconds later."""
        given = validate_deadline(deadline)
        seconds = given if given is not None else self._config.call_deadline
        return _Call(self._clock.monotonic() + seconds, seconds, expected)

    def _fetch_chunked(
        self,
        endpoint: _Endpoint,
        name: str,
        codes: Sequence[str],
        extra: Params,
        parse: Callable[[bytes], list[_T]],
        *,
        call: _Call,
    ) -> list[_T]:
        config = self._config
        result: list[_T] = []
        for chunk in chunk_codes(codes, config.max_markets_per_request, config.max_query_length):
            params: Params = [(name, ",".join(chunk)), *extra]
            try:
                result.extend(self._fetch_page(endpoint, params, parse, call))
            except _CallExpired as exc:
                raise _incomplete(endpoint, call, tuple(result), exc) from None
        return result

    def _fetch(
        self, endpoint: _Endpoint, params: Params, parse: Callable[[bytes], list[_T]], call: _Call
    ) -> list[_T]:
        """A call of one request (its retries aside)."""
        try:
            return self._fetch_page(endpoint, params, parse, call)
        except _CallExpired as exc:
            raise _incomplete(endpoint, call, (), exc) from None

    def _fetch_page(
        self, endpoint: _Endpoint, params: Params, parse: Callable[[bytes], list[_T]], call: _Call
    ) -> list[_T]:
        """One request of ``call``, its body parsed (:class:`_CallExpired` if its deadline passes).

        ``parse`` takes the body; orjson's error on one that is not JSON becomes a FormatError.
        """
        body = self._request(endpoint, params, call)
        try:
            return parse(body)
        except orjson.JSONDecodeError as exc:
            raise FormatError(
                f"{endpoint.path}: the answer is not JSON ({exc}); starts {body[:80]!r}",
                payload=endpoint.payload,
            ) from None

    def _request(self, endpoint: _Endpoint, params: Params, call: _Call) -> bytes:
        """One logical GET: limiter slot, send, status → body or typed error, retries.

        The limiter wait and every attempt get only what is left of ``call``'s deadline
        (:class:`_CallExpired` once it has passed; a ban still raises ``Banned``).
        """
        config = self._config
        clock = self._clock
        url = f"{self._base}{endpoint.path}?{_query(params)}"
        wait_until = clock.monotonic() + config.max_wait
        rate_limited = server_errors = transport_errors = 0
        while True:
            permit = self._acquire(endpoint, wait_until, call)
            try:
                response, body = self._exchange(url, endpoint, call.ends)
            except (requests.RequestException, urllib3.exceptions.HTTPError, _TotalTimeout) as exc:
                permit.release(success=False)
                if transport_errors < config.transport_error_retries:
                    transport_errors += 1
                    logger.debug("GET %s failed (%s); retrying", endpoint.path, exc)
                    continue
                raise _transport_error(endpoint.path, exc, config.total_timeout) from exc
            except BaseException:  # BodyTooLarge too: a failure, as a timeout is, never a 429
                permit.release(success=False)
                raise
            status = response.status_code
            kind = classify_status(status)
            remaining = parse_remaining_req(response.headers.get("Remaining-Req"))
            permit.release(remaining, success=kind is AnswerKind.OK)
            if kind is AnswerKind.OK:
                return body
            error = parse_error_body(body)
            if kind is AnswerKind.RATE_LIMITED:
                group = remaining.group if remaining is not None else permit.group
                pause = self._limiter.on_rate_limited(
                    group, retry_after=retry_after_seconds(response.headers)
                )
                left = wait_until - clock.monotonic()
                if rate_limited < config.rate_limit_retries and pause <= left:
                    rate_limited += 1
                    logger.info("GET %s: 429, retrying after %.2f s", endpoint.path, pause)
                    continue
                raise RateLimited(
                    f"GET {endpoint.path}: HTTP 429 ({error.message}); "
                    f"group {group!r} paused {pause:.2f} s",
                    group=group,
                    retry_after=pause,
                )
            if kind is AnswerKind.BANNED:
                stated = ban_duration(error, response.headers)
                duration = stated if stated is not None else config.default_ban
                until = self._limiter.on_banned(duration)
                raise Banned(
                    f"GET {endpoint.path}: HTTP 418 ({error.message}); "
                    f"REST paused {duration:.1f} s",
                    until=until,
                    duration=duration,
                )
            if kind is AnswerKind.INVALID:
                parameter = endpoint.market_parameter if status == 404 else None
                value = dict(params).get(parameter) if parameter is not None else None
                raise InvalidRequest(
                    f"GET {endpoint.path}: HTTP {status}: {error.message}",
                    parameter=parameter,
                    value=value,
                    status=status,
                )
            if server_errors < config.server_error_retries:
                server_errors += 1
                logger.debug("GET %s: HTTP %d; retrying", endpoint.path, status)
                continue
            raise ServerError(
                f"GET {endpoint.path}: HTTP {status}: {error.message}",
                status=status,
                body=error.message,
            )

    def _acquire(self, endpoint: _Endpoint, wait_until: float, call: _Call) -> Permit:
        """A limiter slot by ``wait_until`` (``max_wait``) and before ``call``'s deadline."""
        clock = self._clock
        try:
            permit = self._limiter.acquire(
                endpoint.group, timeout=max(0.0, min(wait_until, call.ends) - clock.monotonic())
            )
        except RateLimited:
            if call.ends < wait_until:  # the call's deadline, not max_wait, cut the wait short
                raise _CallExpired("waiting for a rate-limit slot") from None
            raise
        if clock.monotonic() >= call.ends:
            permit.release(success=False)
            raise _CallExpired("waiting for a rate-limit slot")
        return permit

    def _exchange(
        self, url: str, endpoint: _Endpoint, call_ends: float
    ) -> tuple[requests.Response, bytes]:
        """One GET and its whole body, within ``total_timeout`` (:class:`_TotalTimeout` if not),
        the call's deadline ``call_ends`` (:class:`_CallExpired` if that comes first) and
        ``max_body_bytes`` (:class:`~quotation.errors.BodyTooLarge` if not).

        Connecting waits at most the time left. The status line and headers are read
        under an :class:`~quotation.rest.deadline_adapter.ExchangeGuard` (on the client's own
        session): every ``recv`` gets ``read_timeout`` or the time left, whichever is less,
        so a server dripping its headers is cut off at the deadline. The body is read with
        ``read1`` (whatever has arrived, one socket read at a time), so the deadline is
        checked between reads however slowly bytes come; once less than ``read_timeout`` is
        left, the socket's timeout is shrunk to what is left, so a read waiting for a silent
        server ends at the deadline too. Reading to the end hands the connection back to the
        pool (keep-alive); giving up closes it.
        """
        config = self._config
        start = self._clock.monotonic()
        own_deadline = start + config.total_timeout
        deadline = min(own_deadline, call_ends)

        def expired(what: str) -> Exception:
            return _CallExpired(what) if call_ends < own_deadline else _TotalTimeout(what)

        left = deadline - start
        timeout = (min(config.connect_timeout, left), min(self._read_timeout, left))
        guard = ExchangeGuard(self._clock, deadline=deadline, read_timeout=self._read_timeout)
        try:
            with guard.active():
                session = self._session
                response = session.send(
                    session.prepare_request(requests.Request("GET", url)),
                    timeout=timeout,
                    allow_redirects=False,
                    **self._send_settings,
                )
        except requests.exceptions.ConnectTimeout:
            if timeout[0] < config.connect_timeout:
                raise expired("not connected") from None
            raise
        except requests.exceptions.ReadTimeout:
            if guard.cut_short or timeout[1] < config.read_timeout:
                # The wait for the status line and headers was cut at the deadline.
                raise expired("no complete status line and headers") from None
            raise
        limit = self._config.max_body_bytes
        # Held before reading: urllib3 hands the connection back to the pool as soon as the
        # bytes on the wire are used up, which can happen while a compressed body is still
        # being decoded; a connection we give up on must be closed, not reused.
        connection = getattr(response.raw, "connection", None)
        try:
            _check_declared_length(response, limit)
            parts, complete = self._read_body(response.raw, deadline, guard)
        except _TooLarge as exc:
            _discard(response, connection)  # the rest is never read: not reused
            raise BodyTooLarge(
                f"GET {endpoint.path}: the answer passed max_body_bytes of {limit} ({exc})",
                payload=endpoint.payload,
                limit=limit,
                received=exc.received,
            ) from None
        except BaseException:
            _discard(response, connection)
            raise
        if not complete:
            _discard(response, connection)
            raise expired(_progress(parts, response))
        return response, parts[0] if len(parts) == 1 else b"".join(parts)

    def _read_body(
        self, raw: urllib3.BaseHTTPResponse, deadline: float, guard: ExchangeGuard
    ) -> tuple[list[bytes], bool]:
        """The body's pieces so far, and whether it is complete (``False``: the deadline passed).

        :class:`_TooLarge` once the decoded bytes or the bytes on the wire pass
        ``max_body_bytes``: a read asks for at most one byte more than the limit leaves, and
        urllib3 decodes no more than it is asked for, so at most ``limit + 1`` are ever held.
        """
        clock = self._clock
        limit = self._config.max_body_bytes
        counts_wire = isinstance(raw, urllib3.HTTPResponse)
        parts: list[bytes] = []
        held = 0
        shrunk = False
        try:
            while True:
                left = deadline - clock.monotonic()
                if left <= 0:
                    return parts, False
                if left < self._read_timeout:
                    shrunk = _shrink_read_timeout(raw, left) or shrunk
                chunk = raw.read1(min(_READ_SIZE, limit - held + 1), decode_content=True)
                if not chunk:
                    return parts, True
                held += len(chunk)
                if held > limit:
                    raise _TooLarge(f"more than {limit} bytes decoded", held)
                wire = raw.tell() if counts_wire else 0
                if wire > limit:
                    raise _TooLarge(f"{wire} bytes on the wire, {held} decoded", held)
                parts.append(chunk)
        except urllib3.exceptions.ReadTimeoutError:
            if shrunk or guard.cut_short:  # timed out at the deadline, not after read_timeout
                return parts, False
            raise


@dataclass(frozen=True, slots=True)
class _Call:
    """One logical call: it must end by ``ends`` (client clock), ``seconds`` after it began."""

    ends: float
    seconds: float
    expected: int
    """How many items were asked for (0: not known before the answer)."""


def _newest_first(candles: list[Candle]) -> list[Candle]:
    """``candles`` newest first without two of the same ``start`` (the first one kept); as
    given, without copying, when they already are (one linear pass: Upbit's order)."""
    starts = [candle.start for candle in candles]
    if all(map(operator.gt, starts, islice(starts, 1, None))):
        return candles
    unique: dict[datetime, Candle] = {}
    for candle in candles:
        unique.setdefault(candle.start, candle)
    return sorted(unique.values(), key=lambda candle: candle.start, reverse=True)


def _discard(response: requests.Response, connection: object) -> None:
    """Close an answer given up on, and its connection even if urllib3 already pooled it
    (a closed connection in the pool is replaced by a new one on its next use)."""
    response.close()
    close = getattr(connection, "close", None)
    if close is not None:
        close()


class _TotalTimeout(Exception):
    """An exchange passed ``RestConfig.total_timeout`` (the message says how far it got)."""


class _CallExpired(Exception):
    """A call's deadline passed during one of its requests (the message says where)."""


def _incomplete(
    endpoint: _Endpoint, call: _Call, partial: tuple[object, ...], exc: _CallExpired
) -> IncompleteAnswer:
    expected = f" of {call.expected}" if call.expected else ""
    return IncompleteAnswer(
        f"GET {endpoint.path}: call deadline of {call.seconds:g} s exceeded ({exc}); "
        f"{len(partial)}{expected} {endpoint.payload}s fetched before it, not returned",
        partial=partial,
        expected=call.expected,
        deadline=call.seconds,
    )


class _TooLarge(Exception):
    """An answer's body passed ``RestConfig.max_body_bytes`` (``received``: decoded bytes held)."""

    def __init__(self, what: str, received: int) -> None:
        super().__init__(what)
        self.received = received


def _check_declared_length(response: requests.Response, limit: int) -> None:
    """:class:`_TooLarge` at once if the answer's ``Content-Length`` is over ``limit``."""
    declared = response.headers.get("Content-Length", "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge(f"Content-Length {declared}", 0)


def _transport_error(path: str, exc: Exception, total_timeout: float) -> TransportError:
    if isinstance(exc, _TotalTimeout):
        return TransportError(f"GET {path}: total timeout of {total_timeout:g} s exceeded ({exc})")
    return TransportError(f"GET {path} failed: {type(exc).__name__}: {exc}")


def _progress(parts: list[bytes], response: requests.Response) -> str:
    received = sum(len(part) for part in parts)
    expected = response.headers.get("Content-Length")
    of = f" of {expected}" if expected is not None else ""
    return f"HTTP {response.status_code}, {received}{of} body bytes received"


def _shrink_read_timeout(raw: urllib3.BaseHTTPResponse, seconds: float) -> bool:
    """Lower the socket timeout of the connection ``raw`` reads from; whether it was done."""
    connection = raw.connection if isinstance(raw, urllib3.HTTPResponse) else None
    sock = connection.sock if connection is not None else None
    if sock is None:
        return False
    try:
        sock.settimeout(seconds)
    except OSError:
        return False
    return True
