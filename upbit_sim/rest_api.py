"""Upbit's Quotation REST API on aiohttp, served from the engine, plus the ``/_sim/`` controls.

Every ``/v1`` answer goes through one pipeline (:meth:`RestApi._serve`) that applies, in order, the
fault plan (black hole, latency, 418, 429, error status), the Upbit-like rate
limit, the handler, and the body faults (drift, malformed or truncated JSON),
and stamps Upbit's headers (``Content-Type: application/json;charset=UTF-8``,
``Remaining-Req``, ``Limit-By-Ip``); the trickle fault then sends whichever
answer came out slowly. Handlers only validate parameters, read the
engine and return the payload. ``/_sim/`` routes are never limited or faulted.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

import orjson
from aiohttp import web

from quotation.clock import Clock
from quotation.models import CandleInterval
from upbit_sim.catalogue import QUOTES, supported_levels, tick_size
from upbit_sim.engine import MarketEngine
from upbit_sim.faults import (
    DRIFT_ADDED,
    DRIFT_REMOVED,
    BodyFault,
    FaultController,
    FaultPlan,
)
from upbit_sim.limits import ServerRateLimiter, Verdict
from upbit_sim.orderbook import MAX_DEPTH
from upbit_sim.wire import (
    candle_json,
    instrument_json,
    market_json,
    orderbook_json,
    ticker_json,
    trade_json,
)

__all__ = [
    "INVALID_PARAMETER",
    "MISSING_PARAMETER",
    "TYPE_MISMATCH",
    "RestApi",
    "group_of",
]

logger = logging.getLogger(__name__)

INVALID_PARAMETER = "Invalid parameter. Check the given value!"
MISSING_PARAMETER = "Missing request parameter error. Check the required parameters!"
TYPE_MISMATCH = "Type mismatch error. Check the parameters type!"
CODE_NOT_FOUND = "Code not found"
TOO_MANY = "Too many API requests."

_JSON = "application/json;charset=UTF-8"
_TEXT = "text/plain;charset=UTF-8"
_BASE_HEADERS = {
    "Cache-Control": "no-cache, no-store, max-age=0, must-revalidate",
    "Pragma": "no-cache",
    "Expires": "0",
    "Limit-By-Ip": "Yes",
}
_POLL_SECONDS = 0.05
"""How often a trickling answer looks whether its client is still there."""
_DAY_MS = 86_400_000
_MAX_CANDLES = 200
_MAX_TRADES = 500
_MINUTE_INTERVALS: dict[str, CandleInterval] = {
    str(interval.minutes): interval for interval in CandleInterval if interval.minutes is not None
}
_GROUPS: tuple[tuple[str, str], ...] = (
    ("/v1/market/", "market"),
    ("/v1/ticker", "ticker"),
    ("/v1/candles/", "candles"),
    ("/v1/trades/", "crix-trades"),
    ("/v1/orderbook", "orderbook"),
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Payload = list[dict[str, Any]]
Reader = Callable[[web.Request], Payload]
"""Validates a request and reads its answer from the engine (raises ``_ApiError``)."""


def group_of(path: str) -> str:
    """The ``Remaining-Req`` group of a ``/v1`` path (``default`` for anything unknown)."""
    for prefix, group in _GROUPS:
        if path.startswith(prefix):
            return group
    return "default"


class _ApiError(Exception):
    """An Upbit error answer: ``{"error": {"name": status, "message": message}}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _NeedsHistory(Exception):
    """A reader needs markets whose history is not generated yet (done off the loop)."""

    def __init__(self, markets: list[str]) -> None:
        super().__init__(", ".join(markets))
        self.markets = markets


def _error_body(status: int, message: str) -> bytes:
    return orjson.dumps({"error": {"name": status, "message": message}})


class RestApi:
    """Builds the aiohttp application of the simulator's REST side."""

    def __init__(
        self,
        engine: MarketEngine,
        faults: FaultController,
        limiter: ServerRateLimiter | None,
        clock: Clock,
    ) -> None:
        self.engine = engine
        self.faults = faults
        self.limiter = limiter
        self._clock = clock
        self._stopping: asyncio.Event | None = None

    def application(self) -> web.Application:
        """A new application with every route (call on the event-loop thread)."""
        self._stopping = asyncio.Event()
        app = web.Application()
        routes: tuple[tuple[str, Reader], ...] = (
            ("/v1/market/all", self._market_all),
            ("/v1/ticker", self._ticker),
            ("/v1/ticker/all", self._ticker_all),
            ("/v1/candles/seconds", self._candles_fixed(CandleInterval.SECOND_1)),
            ("/v1/candles/minutes/{unit}", self._candles_minutes),
            ("/v1/candles/days", self._candles_fixed(CandleInterval.DAY)),
            ("/v1/candles/weeks", self._candles_fixed(CandleInterval.WEEK)),
            ("/v1/candles/months", self._candles_fixed(CandleInterval.MONTH)),
            ("/v1/candles/years", self._candles_fixed(CandleInterval.YEAR)),
            ("/v1/trades/ticks", self._trades_ticks),
            ("/v1/orderbook", self._orderbook),
            ("/v1/orderbook/instruments", self._orderbook_instruments),
        )
        for path, reader in routes:
            app.router.add_get(path, self._endpoint(group_of(path), reader))
        app.router.add_get("/_sim/health", self._sim_health)
        app.router.add_get("/_sim/faults", self._sim_faults)
        app.router.add_post("/_sim/faults", self._sim_set_faults)
        app.router.add_post("/_sim/faults/reset", self._sim_reset_faults)
        app.router.add_post("/_sim/ratelimit/reset", self._sim_reset_limits)
        app.router.add_post("/_sim/step", self._sim_step)
        return app

    def begin_stop(self) -> None:
        """Drop every black-holed request unanswered and cut every trickling answer short."""
        if self._stopping is not None:
            self._stopping.set()

    # -- pipeline ---------------------------------------------------------------------------

    def _endpoint(self, group: str, reader: Reader) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._serve(request, group, reader)

        return handle

    async def _serve(self, request: web.Request, group: str, reader: Reader) -> web.StreamResponse:
        plan = self.faults.plan(request.path)
        answer = await self._answer(request, group, reader, plan)
        if plan.trickle_bytes > 0:
            return await self._trickle(request, answer, plan)
        return answer

    async def _answer(
        self, request: web.Request, group: str, reader: Reader, plan: FaultPlan
    ) -> web.Response:
        if not plan.is_clean:
            early = await self._apply_early_faults(request, plan, group)
            if early is not None:
                return early
        remaining = 9
        if self.limiter is not None:
            client = request.remote or "unknown"
            decision = self.limiter.check(client, group, self._clock.monotonic())
            remaining = decision.remaining
            if decision.verdict is Verdict.LIMITED:
                return _too_many(group)
            if decision.verdict is Verdict.BANNED:
                return _banned(group, decision.ban_whole_seconds)
        try:
            data = await self._read(request, reader)
        except _ApiError as exc:
            return _respond(exc.status, _error_body(exc.status, exc.message), group, remaining)
        if plan.drift:
            data = _drift(data)
        body = orjson.dumps(data)
        if plan.body is BodyFault.MALFORMED:
            body = b'[{"market":' + body[1:].replace(b":", b"=", 1)
        elif plan.body is BodyFault.TRUNCATED:
            body = body[: max(1, len(body) // 2)]
        return _respond(200, body, group, remaining)

    async def _read(self, request: web.Request, reader: Reader) -> Payload:
        """Run ``reader``; history it still needs is generated on a worker thread first."""
        while True:
            try:
                return reader(request)
            except _NeedsHistory as need:  # each retry needs fewer markets, so this ends
                await asyncio.to_thread(self.engine.ensure, need.markets)

    async def _apply_early_faults(
        self, request: web.Request, plan: FaultPlan, group: str
    ) -> web.Response | None:
        if plan.black_hole:
            await self._hold(request)
        if plan.latency > 0:
            await asyncio.sleep(plan.latency)
        if plan.ban_seconds > 0:
            return _banned(group, max(1, math.ceil(plan.ban_seconds)))
        if plan.storm:
            return _too_many(group)
        if plan.error_status is not None:
            status = plan.error_status
            try:
                phrase = http.HTTPStatus(status).phrase
            except ValueError:
                phrase = "Error"
            return _respond(status, _error_body(status, phrase), group, 0)
        return None

    async def _hold(self, request: web.Request) -> None:
        """Keep the request unanswered while the black hole is on; drop it if the server stops."""
        stopping = self._stopping
        if stopping is None:
            raise RuntimeError("application() was not called")
        self.faults.hold_started()
        try:
            while self.faults.black_hole_active(request.path):
                if stopping.is_set():
                    break
                try:
                    await asyncio.wait_for(stopping.wait(), timeout=0.02)
                except TimeoutError:
                    continue
        finally:
            self.faults.hold_ended()
        if stopping.is_set():
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError

    async def _trickle(
        self, request: web.Request, answer: web.Response, plan: FaultPlan
    ) -> web.StreamResponse:
        """Send ``answer``'s status and headers now, then its body piece by piece.

        Ends early, dropping the connection, when the client has gone or the server stops.
        """
        stopping = self._stopping
        if stopping is None:
            raise RuntimeError("application() was not called")
        body = answer.body
        if not isinstance(body, bytes | bytearray):
            raise TypeError(f"cannot trickle a {type(body).__name__} body")
        stream = web.StreamResponse(status=answer.status, headers=answer.headers)
        stream.content_length = len(body)
        self.faults.trickle_started()
        try:
            await stream.prepare(request)
            step = plan.trickle_bytes
            for start in range(0, len(body), step):
                await _pause(request, plan.trickle_interval, stopping)
                await stream.write(bytes(body[start : start + step]))
            await stream.write_eof()
        except ConnectionError:  # the client went away between two checks
            _drop(request)
        finally:
            self.faults.trickle_ended()
        return stream

    # -- parameters -------------------------------------------------------------------------

    def _markets_param(self, request: web.Request, name: str = "markets") -> list[str]:
        raw = _list_param(request, name)
        if raw is None:
            raise _ApiError(400, MISSING_PARAMETER)
        codes = [code.strip() for code in raw.split(",") if code.strip()]
        if not codes:
            raise _ApiError(400, INVALID_PARAMETER)
        if not all(self.engine.has_market(code) for code in codes):
            raise _ApiError(404, CODE_NOT_FOUND)
        return self._ready(list(dict.fromkeys(codes)))

    def _ready(self, codes: list[str]) -> list[str]:
        """``codes``, once their history exists (else :class:`_NeedsHistory` is raised)."""
        missing = [code for code in codes if not self.engine.ready(code)]
        if missing:
            raise _NeedsHistory(missing)
        return codes

    def _market_param(self, request: web.Request) -> str:
        code = request.query.get("market")
        if code is None:
            raise _ApiError(400, MISSING_PARAMETER)
        if not self.engine.has_market(code.strip()):
            raise _ApiError(404, CODE_NOT_FOUND)
        return self._ready([code.strip()])[0]

    # -- /v1 handlers -----------------------------------------------------------------------

    def _market_all(self, request: web.Request) -> Payload:
        details = _bool_param(request, "is_details", default=False)
        return [market_json(info, details=details) for info in self.engine.markets()]

    def _ticker(self, request: web.Request) -> Payload:
        codes = self._markets_param(request)
        return [ticker_json(ticker) for ticker in self.engine.tickers(codes)]

    def _ticker_all(self, request: web.Request) -> Payload:
        raw = _list_param(request, "quote_currencies")
        if raw is None:
            raise _ApiError(400, MISSING_PARAMETER)
        quotes = [quote.strip() for quote in raw.split(",") if quote.strip()]
        if not quotes or any(quote not in QUOTES for quote in quotes):
            raise _ApiError(400, INVALID_PARAMETER)
        wanted = set(quotes)
        codes = self._ready([info.market for info in self.engine.markets() if info.quote in wanted])
        return [ticker_json(ticker) for ticker in self.engine.tickers(codes)]

    def _candles_fixed(self, interval: CandleInterval) -> Reader:
        def read(request: web.Request) -> Payload:
            return self._candles(request, interval)

        return read

    def _candles_minutes(self, request: web.Request) -> Payload:
        unit = request.match_info["unit"]
        interval = _MINUTE_INTERVALS.get(unit)
        if interval is None:
            if not unit.isdigit():
                raise _ApiError(400, TYPE_MISMATCH)
            raise _ApiError(400, INVALID_PARAMETER)
        return self._candles(request, interval)

    def _candles(self, request: web.Request, interval: CandleInterval) -> Payload:
        market = self._market_param(request)
        count = _int_param(request, "count", default=1, low=1, high=_MAX_CANDLES)
        to_ms = _time_param(request.query.get("to"))
        converting = request.query.get("converting_price_unit")
        if converting is not None and (interval is not CandleInterval.DAY or converting != "KRW"):
            raise _ApiError(400, INVALID_PARAMETER)
        candles = self.engine.candles(market, interval, count, to_ms)
        if converting is None:
            return [candle_json(candle) for candle in candles]
        quote = market.split("-", 1)[0]
        rate_market = None if quote == "KRW" else f"KRW-{quote}"
        if rate_market is not None:
            self._ready([rate_market])
        body = []
        for candle in candles:
            rate = 1.0
            if rate_market is not None:
                day = self.engine.candle_at(rate_market, CandleInterval.DAY, candle.start)
                rate = day.trade_price if day else self.engine.ticker(rate_market).trade_price
            body.append(candle_json(candle, converted_price=round(candle.trade_price * rate, 8)))
        return body

    def _trades_ticks(self, request: web.Request) -> Payload:
        market = self._market_param(request)
        count = _int_param(request, "count", default=1, low=1, high=_MAX_TRADES)
        days_ago = _optional_int_param(request, "days_ago", low=1, high=7)
        cursor = _optional_int_param(request, "cursor", low=0, high=2**63 - 1)
        to_text = request.query.get("to")
        before_ms: int | None = None
        since_ms: int | None = None
        if days_ago is not None or to_text is not None:
            now = self.engine.now_ms()
            day_start = now - now % _DAY_MS - (days_ago or 0) * _DAY_MS
            since_ms = day_start
            before_ms = day_start + _DAY_MS
            if to_text is not None:
                before_ms = day_start + _time_of_day_ms(to_text)
        trades = self.engine.trades_page(
            market, count, before_ms=before_ms, since_ms=since_ms, cursor=cursor
        )
        return [trade_json(trade) for trade in trades]

    def _orderbook(self, request: web.Request) -> Payload:
        codes = self._markets_param(request)
        count = _int_param(request, "count", default=MAX_DEPTH, low=1, high=MAX_DEPTH)
        level_text = request.query.get("level")
        level = Decimal(0)
        if level_text is not None:
            try:
                level = Decimal(level_text.strip())
            except InvalidOperation:
                raise _ApiError(400, TYPE_MISMATCH) from None
            if not level.is_finite() or level < 0:
                raise _ApiError(400, INVALID_PARAMETER)
        body = []
        for code in codes:
            if level != 0:
                info = self.engine.info(code)
                price = self.engine.ticker(code).trade_price
                if level not in supported_levels(info.quote, price):
                    continue
            book = self.engine.orderbook(code, count, float(level))
            body.append(orderbook_json(book))
        return body

    def _orderbook_instruments(self, request: web.Request) -> Payload:
        codes = self._markets_param(request)
        body = []
        for code in codes:
            info = self.engine.info(code)
            price = self.engine.ticker(code).trade_price
            body.append(
                instrument_json(
                    info, tick_size(info.quote, price), supported_levels(info.quote, price)
                )
            )
        return body

    # -- /_sim handlers ---------------------------------------------------------------------

    async def _sim_health(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "UP", "seed": self.engine.seed})

    async def _sim_faults(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.faults.snapshot())

    async def _sim_set_faults(self, request: web.Request) -> web.StreamResponse:
        try:
            spec = orjson.loads(await request.read())
            self.faults.configure(spec)
        except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
            return web.json_response({"error": {"name": 400, "message": str(exc)}}, status=400)
        return web.json_response(self.faults.snapshot())

    async def _sim_reset_faults(self, request: web.Request) -> web.StreamResponse:
        self.faults.reset()
        return web.json_response(self.faults.snapshot())

    async def _sim_reset_limits(self, request: web.Request) -> web.StreamResponse:
        if self.limiter is not None:
            self.limiter.reset()
        return web.json_response({"reset": True})

    async def _sim_step(self, request: web.Request) -> web.StreamResponse:
        try:
            count, market = _step_spec(orjson.loads(await request.read() or b"{}"))
            trades = (
                self.engine.step(count)
                if market is None
                else self.engine.step_market(market, count)
            )
        except (orjson.JSONDecodeError, TypeError, ValueError, KeyError) as exc:
            return web.json_response({"error": {"name": 400, "message": str(exc)}}, status=400)
        return web.json_response(
            {"trades": len(trades), "last": trade_json(trades[-1]) if trades else None}
        )


def _step_spec(spec: object) -> tuple[int, str | None]:
    """``{"n": 10, "market": "KRW-BTC"}`` (both optional) of ``POST /_sim/step``."""
    if not isinstance(spec, dict):
        raise TypeError("step spec must be a JSON object")
    count = spec.get("n", 1)
    market = spec.get("market")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 100_000:
        raise ValueError(f"n must be an integer in 1..100000, got {count!r}")
    if market is not None and not isinstance(market, str):
        raise TypeError(f"market must be a string, got {market!r}")
    return count, market


def _respond(status: int, body: bytes, group: str, remaining: int) -> web.Response:
    headers = dict(_BASE_HEADERS)
    headers["Content-Type"] = _JSON
    headers["Remaining-Req"] = f"group={group}; min=600; sec={remaining}"
    return web.Response(status=status, body=body, headers=headers)


async def _pause(request: web.Request, seconds: float, stopping: asyncio.Event) -> None:
    """Wait ``seconds``, but drop the request as soon as its client goes or the server stops."""
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    while True:
        transport = request.transport
        if stopping.is_set() or transport is None or transport.is_closing():
            _drop(request)
        left = until - loop.time()
        if left <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=min(left, _POLL_SECONDS))


def _drop(request: web.Request) -> NoReturn:
    """Abandon a request mid-answer: close its connection at once and end the handler."""
    if request.transport is not None:
        request.transport.abort()
    raise asyncio.CancelledError


def _too_many(group: str) -> web.Response:
    headers = dict(_BASE_HEADERS)
    headers["Content-Type"] = _TEXT
    headers["Remaining-Req"] = f"group={group}; min=600; sec=0"
    return web.Response(status=429, body=TOO_MANY.encode(), headers=headers)


def _banned(group: str, seconds: int) -> web.Response:
    message = f"Too many requests. Blocked for {seconds} seconds."
    return _respond(418, _error_body(418, message), group, 0)


def _drift(data: list[dict[str, Any]]) -> list[dict[str, Any]]:
    drifted = []
    for item in data:
        changed = {key: value for key, value in item.items() if key not in DRIFT_REMOVED}
        changed.update(DRIFT_ADDED)
        drifted.append(changed)
    return drifted


def _list_param(request: web.Request, name: str) -> str | None:
    """A list parameter as one comma-separated value, ``None`` when absent.

    Upbit answers every market named, whether the list comes comma-separated
    (``markets=A,B``) or as repeated parameters (``markets=A&markets=B``, as some
    widely used clients send it), so repeated values are joined.
    """
    values = request.query.getall(name, [])
    return ",".join(values) if values else None


def _bool_param(request: web.Request, name: str, *, default: bool) -> bool:
    raw = request.query.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered not in ("true", "false"):
        raise _ApiError(400, TYPE_MISMATCH)
    return lowered == "true"


def _int_param(request: web.Request, name: str, *, default: int, low: int, high: int) -> int:
    value = _optional_int_param(request, name, low=low, high=high)
    return default if value is None else value


def _optional_int_param(request: web.Request, name: str, *, low: int, high: int) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        raise _ApiError(400, TYPE_MISMATCH) from None
    if not low <= value <= high:
        raise _ApiError(400, INVALID_PARAMETER)
    return value


def _time_param(raw: str | None) -> int | None:
    """Candles ``to``: ISO 8601 with ``T`` or a space, with or without an offset (none = UTC)."""
    if raw is None:
        return None
    text = raw.strip()
    if not text:
        raise _ApiError(400, INVALID_PARAMETER)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _ApiError(400, INVALID_PARAMETER) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _time_of_day_ms(raw: str) -> int:
    """Trades ``to``: ``HHmmss`` or ``HH:mm:ss`` (UTC) as ms after midnight."""
    text = raw.strip().replace(":", "")
    if len(text) != 6 or not text.isdigit():
        raise _ApiError(400, INVALID_PARAMETER)
    hours, minutes, seconds = int(text[:2]), int(text[2:4]), int(text[4:])
    if hours > 23 or minutes > 59 or seconds > 59:
        raise _ApiError(400, INVALID_PARAMETER)
    return ((hours * 60 + minutes) * 60 + seconds) * 1000
