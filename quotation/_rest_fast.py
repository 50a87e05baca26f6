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

The models are frozen slotted dataclasses whose ``__init__`` sets each field through
``object.__setattr__``; most of a strict parse goes there. ``_draft(model)`` is a
mutable twin with the same slots whose plain ``__init__`` stores the fields; assigning
``__class__`` then makes it the model (CPython allows that between classes of identical
slot layout), an object equal in type and every field to one built by the model's own
``__init__``, for a quarter of the cost. A model that gains a ``__post_init__`` or a
layout the twin cannot match fails at import, not silently.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from operator import itemgetter
from typing import Any

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

__all__ = ["DRIFT", "candles", "instruments", "markets", "orderbooks", "tickers", "trades"]

DRIFT = (KeyError, TypeError, ValueError, AttributeError, OverflowError, OSError, InvalidOperation)
"""What the fast path raises on a payload it does not handle: run the strict path then."""

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


_TickerDraft = _draft(Ticker)
_CandleDraft = _draft(Candle)
_TradeDraft = _draft(Trade)
_LevelDraft = _draft(OrderbookLevel)
_OrderbookDraft = _draft(Orderbook)
_MarketDraft = _draft(Market)
_InstrumentDraft = _draft(OrderbookInstrument)


def _optional_number(value: Any) -> float | None:
    if value is None:
        return None
    if value.__class__ is bool:
        raise TypeError("a bool is not a number")
    return value * 1.0  # type: ignore[no-any-return]


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


_candle_numbers = itemgetter(
    "opening_price", "high_price", "low_price", "trade_price", "candle_acc_trade_volume",
    "candle_acc_trade_price", "timestamp",
)  # fmt: skip


def candles(payload: list[Any], interval: CandleInterval) -> list[Candle]:
    """``/v1/candles/...`` asked with ``interval``."""
    unit_wanted = interval.minutes
    result = []
    for m in payload:
        values = _candle_numbers(m)
        _check_numbers(values)
        op, hp, lp, tp, volume, price, tms = values
        get = m.get
        unit = get("unit")
        if unit is not None and (unit.__class__ is not int or unit != unit_wanted):
            raise ValueError("unit")
        start = _from_iso(_text(m["candle_date_time_utc"]) + "+00:00")
        if start.tzinfo is not UTC:  # "2026-01-01+00:00" parses, as a naive midnight
            raise ValueError("candle_date_time_utc")
        candle = _CandleDraft(
            _text(m["market"]), interval, start,
            op * 1.0, hp * 1.0, lp * 1.0, tp * 1.0, volume * 1.0, price * 1.0,
            _from_timestamp(tms / 1000, UTC),
            _optional_number(get("prev_closing_price")), _optional_number(get("change_price")),
            _optional_number(get("change_rate")), _optional_number(get("converted_trade_price")),
            _optional_date(get("first_day_of_period")),
            _optional_choice(get("stream_type"), _STREAM_TYPES),
        )  # fmt: skip
        candle.__class__ = Candle
        result.append(candle)
    return result


_trade_numbers = itemgetter(
    "trade_price", "trade_volume", "prev_closing_price", "change_price", "timestamp"
)


def trades(payload: list[Any]) -> list[Trade]:
    """``/v1/trades/ticks`` (signed ``change_price``; ``change`` from its sign unless sent)."""
    result = []
    for m in payload:
        values = _trade_numbers(m)
        _check_numbers(values)
        tp, tv, pcp, cp, tms = values
        sequential_id = m["sequential_id"]
        if sequential_id.__class__ is not int:
            raise TypeError("sequential_id")
        get = m.get
        signed = cp * 1.0
        change = _optional_choice(get("change"), _CHANGES)
        if change is None:
            change = Change.RISE if signed > 0 else Change.FALL if signed < 0 else Change.EVEN
        absolute = abs(signed)
        trade = _TradeDraft(
            _text(m["market"]), sequential_id, _from_timestamp(tms / 1000, UTC),
            tp * 1.0, tv * 1.0, _SIDES[m["ask_bid"]], pcp * 1.0,
            absolute, absolute * _SIGNS[change], change,
            _optional_number(get("best_ask_price")), _optional_number(get("best_ask_size")),
            _optional_number(get("best_bid_price")), _optional_number(get("best_bid_size")),
            _optional_choice(get("stream_type"), _STREAM_TYPES),
        )  # fmt: skip
        trade.__class__ = Trade
        result.append(trade)
    return result


def _levels(units: Any) -> tuple[OrderbookLevel, ...]:
    if units.__class__ is not list:
        raise TypeError("orderbook_units")
    draft = _LevelDraft
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
        level = draft(ask_price * 1.0, ask_size * 1.0, bid_price * 1.0, bid_size * 1.0)
        level.__class__ = model
        append(level)
    return tuple(levels)


_book_numbers = itemgetter("timestamp", "total_ask_size", "total_bid_size")


def orderbooks(payload: list[Any]) -> list[Orderbook]:
    """``/v1/orderbook``; ``level`` absent or null is 0."""
    result = []
    for m in payload:
        values = _book_numbers(m)
        _check_numbers(values)
        tms, total_ask, total_bid = values
        get = m.get
        level = _optional_number(get("level"))
        book = _OrderbookDraft(
            _text(m["market"]), _from_timestamp(tms / 1000, UTC), total_ask * 1.0,
            total_bid * 1.0, _levels(m["orderbook_units"]), 0.0 if level is None else level,
            _optional_choice(get("stream_type"), _STREAM_TYPES),
        )  # fmt: skip
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
