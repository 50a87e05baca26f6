"""Checks on REST request parameters, made before any network call.

Every function takes what a caller passed and returns the value in the exact
form the client sends to Upbit (upper-case codes, UTC ``to`` strings, decimal
strings for ``level``), or raises :class:`~quotation.errors.InvalidRequest`
with ``parameter`` naming the bad parameter and ``value`` what was given.

The rules and their reasons:

* Market codes are ``QUOTE-BASE`` in upper case (``KRW-BTC``, ``BTC-1INCH``);
  a lower-case code is an error, not silently upper-cased, because Upbit
  itself rejects it and the caller's data is then wrong somewhere.
* Candle ``count`` may exceed Upbit's 200 per request: the client pages
  backwards. It is capped at :data:`MAX_CANDLE_COUNT` (50 requests, about
  five seconds of the candle group's 10 req/s budget).
* Candle ``to`` is exclusive. A ``datetime`` must be timezone-aware; strings
  must be in one of Upbit's documented forms; both are sent as
  ``YYYY-MM-DDTHH:MM:SSZ`` in UTC (a string without an offset is UTC, as Upbit
  reads it).
* Trades ``to`` is a UTC time of day, ``HHmmss`` or ``HH:mm:ss`` (or a
  ``datetime.time``), sent as ``HHmmss``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import partial

from quotation.errors import InvalidRequest
from quotation.models import CandleInterval

__all__ = [
    "CANDLES_PER_REQUEST",
    "MAX_CANDLE_COUNT",
    "MAX_ORDERBOOK_COUNT",
    "MAX_TRADES_COUNT",
    "format_candle_to",
    "validate_candle_count",
    "validate_candle_to",
    "validate_converting_price_unit",
    "validate_cursor",
    "validate_days_ago",
    "validate_deadline",
    "validate_interval",
    "validate_is_details",
    "validate_level",
    "validate_market",
    "validate_markets",
    "validate_orderbook_count",
    "validate_quote_currencies",
    "validate_trades_count",
    "validate_trades_to",
]

CANDLES_PER_REQUEST = 200
"""Upbit's maximum ``count`` for one candle request."""
MAX_CANDLE_COUNT = 10_000
"""The most candles one ``get_candles`` call may ask for (paged 200 at a time)."""
MAX_TRADES_COUNT = 500
"""Upbit's maximum ``count`` for ``/trades/ticks``."""
MAX_ORDERBOOK_COUNT = 30
"""Upbit's maximum ``count`` (depth) for ``/orderbook``."""
MAX_DAYS_AGO = 7

_MARKET_RE = re.compile(r"[A-Z0-9]{1,16}-[A-Z0-9]{1,16}")
_CURRENCY_RE = re.compile(r"[A-Z0-9]{1,16}")
_CANDLE_TO_RE = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}:\d{2})"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?"
)
_TRADES_TO_RE = re.compile(r"(\d{2}):?(\d{2}):?(\d{2})")
_SHORT_INTERVALS = {interval.value: interval for interval in CandleInterval}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_market(market: object, *, parameter: str = "market") -> str:
    """One market code such as ``KRW-BTC``, returned unchanged."""
    if not isinstance(market, str):
        raise InvalidRequest(
            f"{parameter} must be a market code string such as 'KRW-BTC', got {market!r}",
            parameter=parameter,
            value=market,
        )
    if _MARKET_RE.fullmatch(market) is None:
        hint = " (market codes are upper case)" if market.upper() != market else ""
        raise InvalidRequest(
            f"{parameter}: {market!r} is not a market code like 'KRW-BTC'{hint}",
            parameter=parameter,
            value=market,
        )
    return market


def validate_markets(markets: object, *, parameter: str = "markets") -> tuple[str, ...]:
    """A non-empty collection of market codes (a single string is one market).

    Duplicates are dropped, first occurrence kept, so each market is asked once.
    """
    check = partial(validate_market, parameter=parameter)
    return _unique_codes(markets, parameter, "market", check)


def validate_quote_currencies(quotes: object) -> tuple[str, ...]:
    """A non-empty collection of quote currencies (``KRW``, ``BTC``, ``USDT``)."""
    parameter = "quote_currencies"

    def currency_code(item: object) -> str:
        if not isinstance(item, str) or _CURRENCY_RE.fullmatch(item) is None:
            raise InvalidRequest(
                f"{parameter}: {item!r} is not an upper-case currency code like 'KRW'",
                parameter=parameter,
                value=item,
            )
        return item

    return _unique_codes(quotes, parameter, "currency", currency_code)


def _unique_codes(
    codes: object, parameter: str, noun: str, check: Callable[[object], str]
) -> tuple[str, ...]:
    """``codes`` (a collection, or one string) checked one by one, first occurrences kept.

    ``noun`` names one code in the errors: ``market`` or ``currency``.
    """
    items: list[object]
    if isinstance(codes, str):
        items = [codes]
    elif isinstance(codes, Iterable) and not isinstance(codes, bytes | bytearray | dict):
        items = list(codes)
    else:
        raise InvalidRequest(
            f"{parameter} must be a list of {noun} codes, got {codes!r}",
            parameter=parameter,
            value=codes,
        )
    if not items:
        raise InvalidRequest(
            f"{parameter} must name at least one {noun}", parameter=parameter, value=codes
        )
    return tuple(dict.fromkeys(check(item) for item in items))


def validate_is_details(is_details: object) -> bool:
    """``is_details`` must be a real ``bool``."""
    if not isinstance(is_details, bool):
        raise InvalidRequest(
            f"is_details must be True or False, got {is_details!r}",
            parameter="is_details",
            value=is_details,
        )
    return is_details


def validate_interval(interval: object) -> CandleInterval:
    """A :class:`CandleInterval` or its short name (``'1s'``, ``'5m'``, ``'1d'``, ``'1M'`` …)."""
    if isinstance(interval, CandleInterval):
        return interval
    if isinstance(interval, str) and interval in _SHORT_INTERVALS:
        return _SHORT_INTERVALS[interval]
    names = ", ".join(_SHORT_INTERVALS)
    raise InvalidRequest(
        f"interval must be a CandleInterval or one of {names}; got {interval!r}",
        parameter="interval",
        value=interval,
    )


def _check_count(count: object, low: int, high: int) -> int:
    if not _is_int(count) or not low <= count <= high:  # type: ignore[operator]
        raise InvalidRequest(
            f"count must be an integer from {low} to {high}, got {count!r}",
            parameter="count",
            value=count,
        )
    return count  # type: ignore[return-value]


def validate_candle_count(count: object) -> int:
    """1 to :data:`MAX_CANDLE_COUNT`; above 200 the client pages."""
    return _check_count(count, 1, MAX_CANDLE_COUNT)


def validate_trades_count(count: object) -> int:
    """1 to 500."""
    return _check_count(count, 1, MAX_TRADES_COUNT)


def validate_orderbook_count(count: object) -> int | None:
    """``None`` (Upbit's default, 30) or 1 to 30."""
    if count is None:
        return None
    return _check_count(count, 1, MAX_ORDERBOOK_COUNT)


def format_candle_to(moment: datetime) -> str:
    """An aware ``datetime`` as Upbit's ``to``: ``YYYY-MM-DDTHH:MM:SSZ`` in UTC.

    Sub-second parts are dropped (Upbit's ``to`` has second resolution).
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def validate_candle_to(to: object) -> str | None:
    """``None``, an aware ``datetime``, or a string in an Upbit form, sent as UTC ``…Z``.

    Accepted strings: ``2025-06-24T04:56:53Z``, ``2025-06-24T04:56:53``,
    ``2025-06-24 04:56:53`` (both UTC) and ``2025-06-24T13:56:53+09:00``.
    """
    if to is None:
        return None
    if isinstance(to, datetime):
        if to.tzinfo is None or to.utcoffset() is None:
            raise InvalidRequest(
                "to must be timezone-aware (e.g. datetime.now(UTC)); a naive datetime is ambiguous",
                parameter="to",
                value=to,
            )
        return format_candle_to(to)
    if isinstance(to, str):
        match = _CANDLE_TO_RE.fullmatch(to)
        if match is not None:
            zone = match["zone"]
            tz: timezone = UTC
            if zone and zone != "Z":
                sign = 1 if zone[0] == "+" else -1
                hours, minutes = int(zone[1:3]), int(zone[4:6])
                if hours <= 23 and minutes <= 59:
                    tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
                else:
                    match = None
            if match is not None:
                try:
                    moment = datetime.fromisoformat(f"{match['date']}T{match['time']}")
                except ValueError:
                    pass
                else:
                    return format_candle_to(moment.replace(tzinfo=tz))
    raise InvalidRequest(
        "to must be an aware datetime or a string like '2025-06-24T04:56:53Z', "
        f"'2025-06-24 04:56:53' or '2025-06-24T13:56:53+09:00'; got {to!r}",
        parameter="to",
        value=to,
    )


def validate_trades_to(to: object) -> str | None:
    """``None``, a ``datetime.time`` (UTC) or ``HHmmss`` / ``HH:mm:ss``; sent as ``HHmmss``."""
    if to is None:
        return None
    if isinstance(to, time):
        if to.tzinfo is not None and to.utcoffset() not in (None, timedelta(0)):
            raise InvalidRequest(
                "to (trades) is a UTC time of day; give it in UTC", parameter="to", value=to
            )
        return to.strftime("%H%M%S")
    if isinstance(to, str):
        match = _TRADES_TO_RE.fullmatch(to)
        consistent = match is not None and (len(to) == 6 or to[2] == to[5] == ":")
        if match is not None and consistent:
            hour, minute, second = (int(part) for part in match.groups())
            if hour <= 23 and minute <= 59 and second <= 59:
                return f"{hour:02d}{minute:02d}{second:02d}"
    raise InvalidRequest(
        f"to (trades) must be a UTC time of day 'HHmmss' or 'HH:mm:ss', got {to!r}",
        parameter="to",
        value=to,
    )


def validate_cursor(cursor: object) -> int | None:
    """``None`` or a trade's ``sequential_id`` (a non-negative integer)."""
    if cursor is None:
        return None
    if not _is_int(cursor) or cursor < 0:  # type: ignore[operator]
        raise InvalidRequest(
            f"cursor must be a trade's sequential_id (an integer), got {cursor!r}",
            parameter="cursor",
            value=cursor,
        )
    return cursor  # type: ignore[return-value]


def validate_days_ago(days_ago: object) -> int | None:
    """``None`` (today) or 1 to 7."""
    if days_ago is None:
        return None
    if not _is_int(days_ago) or not 1 <= days_ago <= MAX_DAYS_AGO:  # type: ignore[operator]
        raise InvalidRequest(
            f"days_ago must be an integer from 1 to {MAX_DAYS_AGO}, got {days_ago!r}",
            parameter="days_ago",
            value=days_ago,
        )
    return days_ago  # type: ignore[return-value]


def validate_converting_price_unit(unit: object, interval: CandleInterval) -> str | None:
    """``None`` or ``'KRW'``, and only for day candles (Upbit supports nothing else)."""
    if unit is None:
        return None
    if unit != "KRW":
        raise InvalidRequest(
            f"converting_price_unit only supports 'KRW', got {unit!r}",
            parameter="converting_price_unit",
            value=unit,
        )
    if interval is not CandleInterval.DAY:
        raise InvalidRequest(
            f"converting_price_unit is only for day candles, not {interval.value!r}",
            parameter="converting_price_unit",
            value=unit,
        )
    return unit


def validate_level(level: object, markets: Sequence[str]) -> str | None:
    """``None`` or a non-negative price unit, sent as a decimal string (``'10000'``).

    A non-zero level aggregates prices and exists for KRW markets only; level 0
    (the native tick) is accepted for every market.
    """
    if level is None:
        return None
    number: Decimal | None = None
    if isinstance(level, Decimal | int | float | str) and not isinstance(level, bool):
        try:
            number = Decimal(str(level).strip())
        except InvalidOperation:
            number = None
    if number is None or not number.is_finite() or number < 0:
        raise InvalidRequest(
            f"level must be a non-negative price unit such as 10000, got {level!r}",
            parameter="level",
            value=level,
        )
    if number != 0:
        others = [market for market in markets if not market.startswith("KRW-")]
        if others:
            raise InvalidRequest(
                f"level is only supported for KRW markets, not {', '.join(others)}",
                parameter="level",
                value=level,
            )
    return format(number.normalize(), "f")


def validate_deadline(deadline: object) -> float | None:
    """``None`` (``RestConfig.call_deadline``) or a call's deadline: seconds, finite and > 0."""
    if deadline is None:
        return None
    if (isinstance(deadline, bool) or not isinstance(deadline, int | float)
            or not 0 < deadline < float("inf")):
        raise InvalidRequest(
            f"deadline must be a number of seconds > 0, got {deadline!r}",
            parameter="deadline",
            value=deadline,
        )
    return float(deadline)
