"""The REST fast path: one decoded Upbit answer → the model, with no per-field reader.

``quotation.parsing`` calls these first. Each function reads a whole payload with
known keys, checks the JSON types that matter cheaply, and builds the models; on
anything unexpected it raises one of ``DRIFT`` and the caller runs the strict
readers (``quotation._fields``) on the whole payload instead, which either accept
the drift or raise the ``FormatError`` naming the payload and field. So the fast
path never decides an error; it only has to never accept what the strict path
rejects, and build exactly what the strict path builds:

* numbers: an int or a float, never a bool or a string (``_NUMBERS``), stored as
  ``float`` through ``x * 1.0`` (what ``float(x)`` gives, ``-0.0`` kept);
* ids are ints, names are strings, enums come from the same tables;
* times: ``datetime.fromtimestamp(ms / 1000, UTC)`` as the strict path does, and a
  zone-less ``candle_date_time_utc`` read with ``+00:00`` appended, kept only if that
  gives a UTC time (a time that already has a zone does not parse so, and a bare date
  parses as naive: the strict path reads both);
* decimals from strings only (a number goes to the strict path).

The models (but ``OrderbookLevel``, a msgspec Struct built by its C constructor or by
msgspec itself) are frozen slotted dataclasses whose ``__init__`` sets each field through
``object.__setattr__``; most of a strict parse goes there. ``_draft(model)`` is a
mutable twin with the same slots whose plain ``__init__`` stores the fields; assigning
``__class__`` then makes it the model (CPython allows that between classes of identical
slot layout), an object equal in type and every field to one built by the model's own
``__init__``, for a quarter of the cost. A model that gains a ``__post_init__`` or a
layout the twin cannot match fails at import, not silently.

Order books also have a path from the raw body (``orderbooks_json``): one module-level
``msgspec.json.Decoder`` reads the bytes straight into small Structs (``_RawBook``, whose
``orderbook_units`` are the model's ``OrderbookLevel``s already) and the books are built
from them. Both Structs forbid unknown fields, so msgspec never skips a value unchecked:
every byte it accepts went through a typed field, and JSON that orjson would reject (a
number out of range, bad UTF-8) is rejected too. A key it does not know (Upbit drift), a
type it does not take (a float ``timestamp``, a bool, a null where a number belongs) or
a body that is not JSON raises ``msgspec.DecodeError`` (in ``DRIFT``); the caller then
decodes the body with orjson and runs ``orderbooks``, and so on to the strict readers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from operator import itemgetter
from typing import Any

import msgspec

from quotation.models import (
    Candle,
    CandleInterval,
    Change,
    Market,
    Orderbook,
    OrderbookInstrument,
    OrderbookLevel,
    Side,
    StreamType,
    Ticker,
    Trade,
)

__all__ = [
    "DRIFT",
    "candles",
    "instruments",
    "markets",
    "orderbooks",
    "orderbooks_json",
    "tickers",
    "trades",
]

DRIFT = (
    KeyError, TypeError, ValueError, AttributeError, OverflowError, OSError, InvalidOperation,
    msgspec.DecodeError, RecursionError,
)  # fmt: skip
"""What the fast path raises on a payload it does not handle: run the strict path then.

``msgspec.DecodeError`` (its ``ValidationError`` too) and ``RecursionError`` come from
``orderbooks_json`` only."""

_CHANGES: Mapping[str, Change] = {change.value: change for change in Change}
_SIDES: Mapping[str, Side] = {side.value: side for side in Side}
_STREAM_TYPES: Mapping[str, StreamType] = {kind.value: kind for kind in StreamType}
_SIGNS: Mapping[Change, float] = {Change.RISE: 1.0, Change.EVEN: 0.0, Change.FALL: -1.0}
_MARKET_WARNINGS: Mapping[str, bool] = {"NONE": False, "CAUTION": True}
_NUMBERS = frozenset({int, float})
_from_timestamp = datetime.fromtimestamp
_from_iso = datetime.fromisoformat
_from_isodate = date.fromisoformat


def _draft(model: type) -> Callable[..., Any]:
    """A mutable twin of ``model`` whose instances become ``model`` by ``__class__`` assignment."""
    names = tuple(field.name for field in dataclasses.fields(model))
    if hasattr(model, "__post_init__") or getattr(model, "__slots__", None) != names:
        raise TypeError(f"{model.__name__} is not a plain slotted dataclass; fix _rest_fast")
    twin = dataclasses.make_dataclass(
        f"_{model.__name__}Draft", names, slots=True, eq=False, repr=False, match_args=False
    )
    probe = twin(*(None for _ in names))
    probe.__class__ = model  # TypeError at import if the layouts ever differ
    return twin


_new: Callable[[Any], Any] = object.__new__
_TickerDraft = _draft(Ticker)
_CandleDraft = _draft(Candle)
_TradeDraft = _draft(Trade)
_OrderbookDraft = _draft(Orderbook)
_MarketDraft = _draft(Market)
_InstrumentDraft = _draft(OrderbookInstrument)


def _number(value: Any) -> float:
    if value.__class__ is bool:
        raise TypeError("a bool is not a number")
    return value * 1.0  # type: ignore[no-any-return]


def _optional_number(value: Any) -> float | None:
    return None if value is None else _number(value)


def _optional_date(value: Any) -> date | None:
    return None if value is None else _from_isodate(value)


def _optional_choice(value: Any, table: Mapping[str, Any]) -> Any:
    return None if value is None else table[value]


def _text(value: Any) -> str:
    if value.__class__ is not str:
        raise TypeError("not a string")
    return value


def _check_numbers(values: tuple[Any, ...]) -> None:
    if not _NUMBERS.issuperset(map(type, values)):
        raise TypeError("not a number")


_ticker_numbers = itemgetter(
    "trade_price", "opening_price", "high_price", "low_price", "prev_closing_price",
    "change_price", "change_rate", "signed_change_price", "signed_change_rate", "trade_volume",
    "acc_trade_price", "acc_trade_price_24h", "acc_trade_volume", "acc_trade_volume_24h",
    "highest_52_week_price", "lowest_52_week_price", "trade_timestamp", "timestamp",
)  # fmt: skip


def tickers(payload: list[Any]) -> list[Ticker]:
    """``/v1/ticker`` and ``/v1/ticker/all``."""
    result = []
    for m in payload:
        values = _ticker_numbers(m)
        _check_numbers(values)
        tp, op, hp, lp, pcp, cp, cr, scp, scr, tv, atp, atp24, atv, atv24, h52p, l52p, ttms, tms = (
            values
        )
        get = m.get
        state = get("market_state")
        if state is not None and state.__class__ is not str:
            raise TypeError("market_state")
        ticker = _TickerDraft(
            _text(m["market"]), tp * 1.0, op * 1.0, hp * 1.0, lp * 1.0, pcp * 1.0,
            _CHANGES[m["change"]], abs(cp * 1.0), abs(cr * 1.0), scp * 1.0, scr * 1.0,
            tv * 1.0, atp * 1.0, atp24 * 1.0, atv * 1.0, atv24 * 1.0,
            h52p * 1.0, _optional_date(get("highest_52_week_date")),
            l52p * 1.0, _optional_date(get("lowest_52_week_date")),
            _from_timestamp(ttms / 1000, UTC), _from_timestamp(tms / 1000, UTC),
            _optional_choice(get("stream_type"), _STREAM_TYPES),
            _optional_choice(get("ask_bid"), _SIDES),
            _optional_number(get("acc_ask_volume")), _optional_number(get("acc_bid_volume")),
            state,
        )  # fmt: skip
        ticker.__class__ = Ticker
        result.append(ticker)
    return result


def candles(payload: list[Any], interval: CandleInterval) -> list[Candle]:
    """``/v1/candles/...`` asked with ``interval``."""
    unit_wanted = interval.minutes
    draft = _CandleDraft
    result = []
    for m in payload:
        op = m["opening_price"]
        hp = m["high_price"]
        lp = m["low_price"]
        tp = m["trade_price"]
        volume = m["candle_acc_trade_volume"]
        price = m["candle_acc_trade_price"]
        tms = m["timestamp"]
        if bool in (op.__class__, hp.__class__, lp.__class__, tp.__class__, volume.__class__,
                    price.__class__, tms.__class__):  # fmt: skip
            raise TypeError("a bool is not a number")
        get = m.get
        unit = get("unit")
        if unit is not None and (unit.__class__ is not int or unit != unit_wanted):
            raise ValueError("unit")
        start = _from_iso(_text(m["candle_date_time_utc"]) + "+00:00")
        if start.tzinfo is not UTC:  # "2026-01-01+00:00" parses, as a naive midnight
            raise ValueError("candle_date_time_utc")
        candle = _new(draft)
        candle.market = _text(m["market"])
        candle.interval = interval
        candle.start = start
        candle.opening_price = op * 1.0
        candle.high_price = hp * 1.0
        candle.low_price = lp * 1.0
        candle.trade_price = tp * 1.0
        candle.candle_acc_trade_volume = volume * 1.0
        candle.candle_acc_trade_price = price * 1.0
        candle.last_trade_time = _from_timestamp(tms / 1000, UTC)
        # Absent from minute candles: read only when present.
        value = get("prev_closing_price")
        candle.prev_closing_price = value if value is None else _number(value)
        value = get("change_price")
        candle.change_price = value if value is None else _number(value)
        value = get("change_rate")
        candle.change_rate = value if value is None else _number(value)
        value = get("converted_trade_price")
        candle.converted_trade_price = value if value is None else _number(value)
        value = get("first_day_of_period")
        candle.first_day_of_period = value if value is None else _from_isodate(value)
        value = get("stream_type")
        candle.stream_type = value if value is None else _STREAM_TYPES[value]
        candle.__class__ = Candle
        result.append(candle)
    return result


def trades(payload: list[Any]) -> list[Trade]:
    """``/v1/trades/ticks`` (signed ``change_price``; ``change`` from its sign unless sent)."""
    draft = _TradeDraft
    result = []
    for m in payload:
        tp = m["trade_price"]
        tv = m["trade_volume"]
        pcp = m["prev_closing_price"]
        cp = m["change_price"]
        tms = m["timestamp"]
        if bool in (tp.__class__, tv.__class__, pcp.__class__, cp.__class__, tms.__class__):
            raise TypeError("a bool is not a number")
        sequential_id = m["sequential_id"]
        if sequential_id.__class__ is not int:
            raise TypeError("sequential_id")
        get = m.get
        signed = cp * 1.0
        change = get("change")
        if change is None:
            change = Change.RISE if signed > 0 else Change.FALL if signed < 0 else Change.EVEN
        else:
            change = _CHANGES[change]
        absolute = abs(signed)
        trade = _new(draft)
        trade.market = _text(m["market"])
        trade.sequential_id = sequential_id
        trade.timestamp = _from_timestamp(tms / 1000, UTC)
        trade.trade_price = tp * 1.0
        trade.trade_volume = tv * 1.0
        trade.ask_bid = _SIDES[m["ask_bid"]]
        trade.prev_closing_price = pcp * 1.0
        trade.change_price = absolute
        trade.signed_change_price = absolute * _SIGNS[change]
        trade.change = change
        # Sent since 2024 by Upbit, not by the simulator: read only when present.
        value = get("best_ask_price")
        trade.best_ask_price = value if value is None else _number(value)
        value = get("best_ask_size")
        trade.best_ask_size = value if value is None else _number(value)
        value = get("best_bid_price")
        trade.best_bid_price = value if value is None else _number(value)
        value = get("best_bid_size")
        trade.best_bid_size = value if value is None else _number(value)
        value = get("stream_type")
        trade.stream_type = value if value is None else _STREAM_TYPES[value]
        trade.__class__ = Trade
        result.append(trade)
    return result


def _levels(units: Any) -> tuple[OrderbookLevel, ...]:
    """The book's levels from decoded JSON (3,000 of them in a 100-market answer)."""
    if units.__class__ is not list:
        raise TypeError("orderbook_units")
    model = OrderbookLevel
    levels: list[OrderbookLevel] = []
    append = levels.append
    for u in units:
        ask_price = u["ask_price"]
        ask_size = u["ask_size"]
        bid_price = u["bid_price"]
        bid_size = u["bid_size"]
        if (
            ask_price.__class__ is bool
            or ask_size.__class__ is bool
            or bid_price.__class__ is bool
            or bid_size.__class__ is bool
        ):
            raise TypeError("a bool is not a number")
        append(model(ask_price * 1.0, ask_size * 1.0, bid_price * 1.0, bid_size * 1.0))
    return tuple(levels)


def orderbooks(payload: list[Any]) -> list[Orderbook]:
    """``/v1/orderbook`` decoded; ``level`` absent or null is 0."""
    draft = _OrderbookDraft
    result = []
    for m in payload:
        tms = m["timestamp"]
        total_ask = m["total_ask_size"]
        total_bid = m["total_bid_size"]
        if bool in (tms.__class__, total_ask.__class__, total_bid.__class__):
            raise TypeError("a bool is not a number")
        get = m.get
        book = _new(draft)
        book.market = _text(m["market"])
        book.timestamp = _from_timestamp(tms / 1000, UTC)
        book.total_ask_size = total_ask * 1.0
        book.total_bid_size = total_bid * 1.0
        book.levels = _levels(m["orderbook_units"])
        value = get("level")
        book.level = 0.0 if value is None else _number(value)
        value = get("stream_type")
        book.stream_type = value if value is None else _STREAM_TYPES[value]
        book.__class__ = Orderbook
        result.append(book)
    return result


class _RawBook(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    """One book of a ``/v1/orderbook`` body as msgspec decodes it (the JSON types Upbit sends)."""

    market: str
    timestamp: int
    total_ask_size: float
    total_bid_size: float
    orderbook_units: tuple[OrderbookLevel, ...]
    level: float | None = None
    stream_type: str | None = None


_BOOKS = msgspec.json.Decoder(list[_RawBook])


def orderbooks_json(body: bytes) -> list[Orderbook]:
    """``/v1/orderbook`` from its raw JSON body; anything unexpected raises one of ``DRIFT``.

    msgspec checks what ``orderbooks`` checks (a JSON int or float and never a bool for
    every number, stored as ``float``; a string market; an array of objects with the four
    level fields), and the books are built as there.
    """
    draft = _OrderbookDraft
    stream_types = _STREAM_TYPES
    result = []
    for raw in _BOOKS.decode(body):
        book = _new(draft)
        book.market = raw.market
        book.timestamp = _from_timestamp(raw.timestamp / 1000, UTC)
        book.total_ask_size = raw.total_ask_size
        book.total_bid_size = raw.total_bid_size
        book.levels = raw.orderbook_units
        level = raw.level
        book.level = 0.0 if level is None else level
        stream_type = raw.stream_type
        book.stream_type = stream_type if stream_type is None else stream_types[stream_type]
        book.__class__ = Orderbook
        result.append(book)
    return result


def markets(payload: list[Any]) -> list[Market]:
    """``/v1/market/all``; ``warning``/``cautions`` only if Upbit sent them."""
    result = []
    for m in payload:
        warning: bool | None = None
        cautions: frozenset[str] | None = None
        event = m.get("market_event")
        if event is not None:
            warning = event.get("warning")
            if warning is not None and warning.__class__ is not bool:
                raise TypeError("market_event.warning")
            caution = event.get("caution")
            if caution is not None:
                flags = caution.items()
                if any(flag.__class__ is not bool for _, flag in flags):
                    raise TypeError("market_event.caution")
                cautions = frozenset(name for name, flag in flags if flag)
        else:
            old = m.get("market_warning")
            if old is not None:
                warning = _MARKET_WARNINGS[old]
        market = _MarketDraft(
            _text(m["market"]), _text(m["korean_name"]), _text(m["english_name"]), warning, cautions
        )
        market.__class__ = Market
        result.append(market)
    return result


def _decimal(value: Any) -> Decimal:
    if value.__class__ is not str:
        raise TypeError("a decimal from a number goes the strict way")
    result = Decimal(value)
    if not result.is_finite():
        raise ValueError("not finite")
    return result


def instruments(payload: list[Any]) -> list[OrderbookInstrument]:
    """``/v1/orderbook/instruments``; tick sizes and levels as exact ``Decimal``s."""
    result = []
    for m in payload:
        levels = m.get("supported_levels")
        if levels is not None and levels.__class__ is not list:
            raise TypeError("supported_levels")
        instrument = _InstrumentDraft(
            _text(m["market"]),
            _text(m["quote_currency"]),
            _decimal(m["tick_size"]),
            () if levels is None else tuple([_decimal(level) for level in levels]),
        )
        instrument.__class__ = OrderbookInstrument
        result.append(instrument)
    return result
