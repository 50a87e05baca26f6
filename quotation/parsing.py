"""Decoded Upbit JSON (REST answers and WebSocket messages) → the canonical model.

REST parsers take the decoded body of one endpoint (always a JSON array) and
return one model object per item, in the order given::

    parse_markets        /v1/market/all                → list[Market]
    parse_tickers        /v1/ticker, /v1/ticker/all    → list[Ticker]
    parse_candles        /v1/candles/...               → list[Candle]
    parse_trades         /v1/trades/ticks              → list[Trade]
    parse_orderbooks     /v1/orderbook                 → list[Orderbook]
    parse_orderbooks_json  /v1/orderbook, the raw body (bytes) → list[Orderbook]
    parse_orderbook_instruments  /v1/orderbook/instruments → list[OrderbookInstrument]

``parse_ws_message`` takes one WebSocket data message (``ticker``, ``trade``,
``orderbook``, ``candle.*``) with DEFAULT or SIMPLE keys.

Drift is tolerated: unknown fields are ignored, optional and deprecated fields
may be missing, and an int is accepted where Upbit usually sends a float. A
payload that is really malformed (not an array, an item that is not an object,
a required field missing, a field of the wrong JSON type — a bool is never a
number) raises ``FormatError`` naming the payload kind, index, market and field.

Upbit quirks handled here (``../shared/upbit-api.md`` §4.3):

* ``candle_date_time_utc`` has no zone suffix: it is UTC. Candle ``timestamp`` is
  the last tick in the bucket and becomes ``Candle.last_trade_time``.
* REST trades send a *signed* ``change_price``, WebSocket trades an absolute one
  plus ``change``; the model always carries both ``change_price`` (absolute) and
  ``signed_change_price``. ``change`` is taken from the payload when present,
  else from the sign.
* A trade's ``timestamp`` is when it happened: REST ``timestamp``, WebSocket
  ``trade_timestamp`` (the WebSocket ``timestamp`` is the message time), so REST
  and WebSocket copies of one trade are equal.
* WebSocket messages name the market ``code``, REST ``market``.
* Orderbook ``level`` may be missing (older payloads, non-KRW markets): 0.

Speed: the WebSocket path is on the ingest hot path. Its parsers are closures
over precomputed keys that read every field directly inside one ``try``; only
when that fails do they run the strict readers of ``quotation._fields``, which
find the culprit field for the error (or accept what the fast path was too
strict for). The fast path does not tell a JSON bool from a number (Python's
``bool`` is an ``int``); the REST parsers and the strict path do.

The REST parsers have a fast path too (``quotation._rest_fast``): one function per
payload reads the whole array with known keys and builds the models without the
frozen ``__init__``; on any drift the whole payload goes to the strict readers, so
results and ``FormatError`` are theirs (``tests/quotation/test_parsing_rest_fast.py``).
``parse_orderbooks_json`` starts one step earlier, from the body: msgspec decodes it
straight into the model's levels; on any drift the body is decoded by orjson and goes
through ``parse_orderbooks``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any, TypeAlias

import orjson

from quotation import _rest_fast
from quotation._fields import FieldReader, naive_utc, require_list
from quotation.errors import FormatError
from quotation.models import (
    Candle,
    CandleInterval,
    Change,
    Market,
    Orderbook,
    OrderbookInstrument,
    OrderbookLevel,
    Ticker,
    Trade,
)
from quotation.wire_keys import ORDERBOOK_UNIT_SIMPLE_KEYS, SIMPLE_KEYS, message_kind

__all__ = [
    "WsModel",
    "parse_candles",
    "parse_markets",
    "parse_orderbook_instruments",
    "parse_orderbooks",
    "parse_orderbooks_json",
    "parse_tickers",
    "parse_trades",
    "parse_ws_message",
]

WsModel: TypeAlias = Ticker | Trade | Orderbook | Candle
"""What a WebSocket data message becomes."""

# The enum tables are the fast path's (one copy, so the two paths read the same values).
_CHANGES = _rest_fast._CHANGES
_SIDES = _rest_fast._SIDES
_STREAM_TYPES = _rest_fast._STREAM_TYPES
_SIGNS = _rest_fast._SIGNS
_MARKET_WARNINGS = _rest_fast._MARKET_WARNINGS


# --- strict builders (REST, and the WebSocket slow path) ------------------------------------


def _build_market(r: FieldReader) -> Market:
    warning: bool | None = None
    cautions: frozenset[str] | None = None
    event = r.child("market_event")
    if event is not None:
        warning = event.boolean("warning") if event.has("warning") else None
        caution = event.child("caution")
        if caution is not None:
            cautions = frozenset(name for name, _ in caution.items() if caution.boolean(name))
    elif r.has("market_warning"):
        # Before market_event (deprecated): "NONE" | "CAUTION".
        warning = r.choice("market_warning", _MARKET_WARNINGS)
    return Market(
        market=r.text("market"),
        korean_name=r.text("korean_name"),
        english_name=r.text("english_name"),
        warning=warning,
        cautions=cautions,
    )


def _build_ticker(r: FieldReader, market_field: str) -> Ticker:
    return Ticker(
        market=r.text(market_field),
        trade_price=r.number("trade_price"),
        opening_price=r.number("opening_price"),
        high_price=r.number("high_price"),
        low_price=r.number("low_price"),
        prev_closing_price=r.number("prev_closing_price"),
        change=r.choice("change", _CHANGES),
        change_price=abs(r.number("change_price")),
        change_rate=abs(r.number("change_rate")),
        signed_change_price=r.number("signed_change_price"),
        signed_change_rate=r.number("signed_change_rate"),
        trade_volume=r.number("trade_volume"),
        acc_trade_price=r.number("acc_trade_price"),
        acc_trade_price_24h=r.number("acc_trade_price_24h"),
        acc_trade_volume=r.number("acc_trade_volume"),
        acc_trade_volume_24h=r.number("acc_trade_volume_24h"),
        highest_52_week_price=r.number("highest_52_week_price"),
        highest_52_week_date=r.optional_date("highest_52_week_date"),
        lowest_52_week_price=r.number("lowest_52_week_price"),
        lowest_52_week_date=r.optional_date("lowest_52_week_date"),
        trade_time=r.millis("trade_timestamp"),
        timestamp=r.millis("timestamp"),
        stream_type=r.optional_choice("stream_type", _STREAM_TYPES),
        ask_bid=r.optional_choice("ask_bid", _SIDES),
        acc_ask_volume=r.optional_number("acc_ask_volume"),
        acc_bid_volume=r.optional_number("acc_bid_volume"),
        market_state=r.optional_text("market_state"),
    )


def _build_candle(r: FieldReader, interval: CandleInterval, market_field: str) -> Candle:
    if r.has("unit"):
        unit = r.integer("unit")
        if unit != interval.minutes:
            raise r.error("unit", f"is {unit}, but the candles were asked as {interval.value}")
    return Candle(
        market=r.text(market_field),
        interval=interval,
        start=r.utc_datetime("candle_date_time_utc"),
        opening_price=r.number("opening_price"),
        high_price=r.number("high_price"),
        low_price=r.number("low_price"),
        trade_price=r.number("trade_price"),
        candle_acc_trade_volume=r.number("candle_acc_trade_volume"),
        candle_acc_trade_price=r.number("candle_acc_trade_price"),
        last_trade_time=r.millis("timestamp"),
        prev_closing_price=r.optional_number("prev_closing_price"),
        change_price=r.optional_number("change_price"),
        change_rate=r.optional_number("change_rate"),
        converted_trade_price=r.optional_number("converted_trade_price"),
        first_day_of_period=r.optional_date("first_day_of_period"),
        stream_type=r.optional_choice("stream_type", _STREAM_TYPES),
    )


def _build_trade(r: FieldReader, market_field: str, time_field: str) -> Trade:
    change_price = r.number("change_price")  # signed on REST, absolute on the WebSocket
    change = r.optional_choice("change", _CHANGES)
    if change is None:
        change = _change_of(change_price)
    absolute = abs(change_price)
    return Trade(
        market=r.text(market_field),
        sequential_id=r.integer("sequential_id"),
        timestamp=r.millis(time_field),
        trade_price=r.number("trade_price"),
        trade_volume=r.number("trade_volume"),
        ask_bid=r.choice("ask_bid", _SIDES),
        prev_closing_price=r.number("prev_closing_price"),
        change_price=absolute,
        signed_change_price=absolute * _SIGNS[change],
        change=change,
        best_ask_price=r.optional_number("best_ask_price"),
        best_ask_size=r.optional_number("best_ask_size"),
        best_bid_price=r.optional_number("best_bid_price"),
        best_bid_size=r.optional_number("best_bid_size"),
        stream_type=r.optional_choice("stream_type", _STREAM_TYPES),
    )


def _change_of(signed_change: float) -> Change:
    if signed_change > 0:
        return Change.RISE
    return Change.FALL if signed_change < 0 else Change.EVEN


def _build_orderbook(
    r: FieldReader, market_field: str, unit_keys: Mapping[str, str] | None
) -> Orderbook:
    levels = tuple(
        OrderbookLevel(
            ask_price=unit.number("ask_price"),
            ask_size=unit.number("ask_size"),
            bid_price=unit.number("bid_price"),
            bid_size=unit.number("bid_size"),
        )
        for unit in r.children("orderbook_units", unit_keys)
    )
    level = r.optional_number("level")
    return Orderbook(
        market=r.text(market_field),
        timestamp=r.millis("timestamp"),
        total_ask_size=r.number("total_ask_size"),
        total_bid_size=r.number("total_bid_size"),
        levels=levels,
        level=0.0 if level is None else level,
        stream_type=r.optional_choice("stream_type", _STREAM_TYPES),
    )


def _build_instrument(r: FieldReader) -> OrderbookInstrument:
    return OrderbookInstrument(
        market=r.text("market"),
        quote_currency=r.text("quote_currency"),
        tick_size=r.decimal("tick_size"),
        supported_levels=r.decimals("supported_levels"),
    )


# --- REST ---------------------------------------------------------------------------------


def _rest_items(payload: object, kind: str) -> list[FieldReader]:
    return [
        FieldReader.for_item(item, payload=kind, index=index)
        for index, item in enumerate(require_list(payload, kind))
    ]


def _strict_markets(payload: object) -> list[Market]:
    return [_build_market(r) for r in _rest_items(payload, "market")]


def _strict_tickers(payload: object) -> list[Ticker]:
    return [_build_ticker(r, "market") for r in _rest_items(payload, "ticker")]


def _strict_candles(payload: object, interval: CandleInterval) -> list[Candle]:
    return [_build_candle(r, interval, "market") for r in _rest_items(payload, "candle")]


def _strict_trades(payload: object) -> list[Trade]:
    return [_build_trade(r, "market", "timestamp") for r in _rest_items(payload, "trade")]


def _strict_orderbooks(payload: object) -> list[Orderbook]:
    return [_build_orderbook(r, "market", None) for r in _rest_items(payload, "orderbook")]


def _strict_instruments(payload: object) -> list[OrderbookInstrument]:
    return [_build_instrument(r) for r in _rest_items(payload, "orderbook_instrument")]


# Each public REST parser tries the fast path (``quotation._rest_fast``) on a JSON array
# and runs the strict readers above on the whole payload when it meets drift.


def parse_markets(payload: object) -> list[Market]:
    """``/v1/market/all``; ``warning``/``cautions`` are set only if Upbit sent them."""
    if payload.__class__ is list:
        try:
            return _rest_fast.markets(payload)
        except _rest_fast.DRIFT:
            pass
    return _strict_markets(payload)


def parse_tickers(payload: object) -> list[Ticker]:
    """``/v1/ticker`` and ``/v1/ticker/all``."""
    if payload.__class__ is list:
        try:
            return _rest_fast.tickers(payload)
        except _rest_fast.DRIFT:
            pass
    return _strict_tickers(payload)


def parse_candles(payload: object, interval: CandleInterval) -> list[Candle]:
    """``/v1/candles/...`` asked with ``interval``; newest first, as Upbit sends them."""
    if payload.__class__ is list:
        try:
            return _rest_fast.candles(payload, interval)
        except _rest_fast.DRIFT:
            pass
    return _strict_candles(payload, interval)


def parse_trades(payload: object) -> list[Trade]:
    """``/v1/trades/ticks`` (whose ``change_price`` is signed); newest first."""
    if payload.__class__ is list:
        try:
            return _rest_fast.trades(payload)
        except _rest_fast.DRIFT:
            pass
    return _strict_trades(payload)


def parse_orderbooks(payload: object) -> list[Orderbook]:
    """``/v1/orderbook``; level 0 of each book is the best bid/ask."""
    if payload.__class__ is list:
        try:
            return _rest_fast.orderbooks(payload)
        except _rest_fast.DRIFT:
            pass
    return _strict_orderbooks(payload)


def parse_orderbooks_json(body: bytes) -> list[Orderbook]:
    """``/v1/orderbook`` from its raw JSON body: what ``parse_orderbooks(orjson.loads(body))``
    gives, in about a third of the time for 100 books.

    msgspec decodes the body straight into the models' levels; on anything it does not
    take (drift, or a body that is not JSON) the body goes the orjson way, so the result,
    the ``FormatError`` and, for a body that is not JSON, the ``orjson.JSONDecodeError``
    are that way's.
    """
    try:
        return _rest_fast.orderbooks_json(body)
    except _rest_fast.DRIFT:
        pass
    return parse_orderbooks(orjson.loads(body))


def parse_orderbook_instruments(payload: object) -> list[OrderbookInstrument]:
    """``/v1/orderbook/instruments``; tick sizes and levels are exact ``Decimal``s."""
    if payload.__class__ is list:
        try:
            return _rest_fast.instruments(payload)
        except _rest_fast.DRIFT:
            pass
    return _strict_instruments(payload)


# --- WebSocket: strict path -----------------------------------------------------------------


def _parse_ws_strict(message: Mapping[str, Any]) -> WsModel:
    """Parse one message with every check; the fast path's fallback and its reference."""
    simple = "ty" in message
    type_key = "ty" if simple else "type"
    message_type: object = message.get(type_key)
    if not isinstance(message_type, str) or (kind := message_kind(message_type)) is None:
        raise FormatError(
            f"WebSocket message: field 'type' must be ticker, trade, orderbook or candle.*, "
            f"got {message_type!r}",
            payload="websocket",
            field="type",
        )
    keys = SIMPLE_KEYS[kind] if simple else None
    r = FieldReader.for_item(
        message, payload=kind, source="WebSocket", market_field="code", keys=keys
    )
    if kind == "ticker":
        return _build_ticker(r, "code")
    if kind == "trade":
        return _build_trade(r, "code", "trade_timestamp")
    if kind == "orderbook":
        return _build_orderbook(r, "code", ORDERBOOK_UNIT_SIMPLE_KEYS if simple else None)
    try:
        interval = CandleInterval.from_ws_type(message_type)
    except ValueError:
        raise r.error("type", f"is not a known candle type: {message_type!r}") from None
    return _build_candle(r, interval, "code")


# --- WebSocket: fast path -------------------------------------------------------------------
#
# Each factory binds the keys of one message kind in one format (DEFAULT or SIMPLE) into
# local variables of a closure, so a message costs one dict lookup per field. ``x + 0.0``
# turns an int into a float (and raises TypeError for a string or null) without a call.
# ``_guarded`` runs the closure inside one ``try``: anything unexpected raises there and
# the strict path takes over.

_FAST_ERRORS = (KeyError, TypeError, ValueError, AttributeError, OverflowError, OSError)
_from_timestamp = datetime.fromtimestamp
_from_isodate = date.fromisoformat

_FastParser: TypeAlias = Callable[[Mapping[str, Any]], WsModel]


def _bind(keys: Mapping[str, str], *names: str) -> tuple[str, ...]:
    """The keys that carry the DEFAULT-named fields ``names`` in this format."""
    return tuple(keys[name] for name in names)


def _guarded(
    keys: Mapping[str, str],
    build: Callable[[Mapping[str, Any], str], WsModel],
    fallback: _FastParser,
) -> _FastParser:
    """A fast parser: ``build(message, market)`` where the market (``code``) is a string.

    A market that is not a string, and any of ``_FAST_ERRORS`` that ``build``
    trips over, send the message to ``fallback`` (which names the culprit field).
    """
    code = keys["code"]

    def parse(m: Mapping[str, Any]) -> WsModel:
        try:
            market = m[code]
            if market.__class__ is not str:
                return fallback(m)
            return build(m, market)
        except _FAST_ERRORS:
            return fallback(m)

    return parse


def _fast_ticker(keys: Mapping[str, str], fallback: _FastParser) -> _FastParser:
    tp, op, hp, lp, pcp = _bind(
        keys, "trade_price", "opening_price", "high_price", "low_price", "prev_closing_price"
    )
    c, cp, cr, scp, scr = _bind(
        keys, "change", "change_price", "change_rate", "signed_change_price", "signed_change_rate"
    )
    tv, atp, atp24, atv, atv24 = _bind(
        keys, "trade_volume", "acc_trade_price", "acc_trade_price_24h", "acc_trade_volume",
        "acc_trade_volume_24h",
    )  # fmt: skip
    h52p, h52d, l52p, l52d = _bind(
        keys, "highest_52_week_price", "highest_52_week_date", "lowest_52_week_price",
        "lowest_52_week_date",
    )  # fmt: skip
    ttms, tms, st, ab, aav, abv, ms = _bind(
        keys, "trade_timestamp", "timestamp", "stream_type", "ask_bid", "acc_ask_volume",
        "acc_bid_volume", "market_state",
    )  # fmt: skip

    def build(m: Mapping[str, Any], market: str) -> WsModel:
        get = m.get
        h52 = get(h52d)
        l52 = get(l52d)
        stream = get(st)
        side = get(ab)
        ask_volume = get(aav)
        bid_volume = get(abv)
        state = get(ms)
        if state is not None and state.__class__ is not str:
            return fallback(m)
        return Ticker(
            market=market,
            trade_price=m[tp] + 0.0,
            opening_price=m[op] + 0.0,
            high_price=m[hp] + 0.0,
            low_price=m[lp] + 0.0,
            prev_closing_price=m[pcp] + 0.0,
            change=_CHANGES[m[c]],
            change_price=abs(m[cp] + 0.0),
            change_rate=abs(m[cr] + 0.0),
            signed_change_price=m[scp] + 0.0,
            signed_change_rate=m[scr] + 0.0,
            trade_volume=m[tv] + 0.0,
            acc_trade_price=m[atp] + 0.0,
            acc_trade_price_24h=m[atp24] + 0.0,
            acc_trade_volume=m[atv] + 0.0,
            acc_trade_volume_24h=m[atv24] + 0.0,
            highest_52_week_price=m[h52p] + 0.0,
            highest_52_week_date=None if h52 is None else _from_isodate(h52),
            lowest_52_week_price=m[l52p] + 0.0,
            lowest_52_week_date=None if l52 is None else _from_isodate(l52),
            trade_time=_from_timestamp(m[ttms] / 1000, UTC),
            timestamp=_from_timestamp(m[tms] / 1000, UTC),
            stream_type=None if stream is None else _STREAM_TYPES[stream],
            ask_bid=None if side is None else _SIDES[side],
            acc_ask_volume=None if ask_volume is None else ask_volume + 0.0,
            acc_bid_volume=None if bid_volume is None else bid_volume + 0.0,
            market_state=state,
        )

    return _guarded(keys, build, fallback)


def _fast_trade(keys: Mapping[str, str], fallback: _FastParser) -> _FastParser:
    sid, ttms, tp, tv, ab, pcp, c, cp = _bind(
        keys, "sequential_id", "trade_timestamp", "trade_price", "trade_volume",
        "ask_bid", "prev_closing_price", "change", "change_price",
    )  # fmt: skip
    bap, bas, bbp, bbs, st = _bind(
        keys, "best_ask_price", "best_ask_size", "best_bid_price", "best_bid_size", "stream_type"
    )

    def build(m: Mapping[str, Any], market: str) -> WsModel:
        sequential_id = m[sid]
        if sequential_id.__class__ is not int:
            return fallback(m)
        change = _CHANGES[m[c]]
        absolute = abs(m[cp] + 0.0)
        get = m.get
        ask_price = get(bap)
        ask_size = get(bas)
        bid_price = get(bbp)
        bid_size = get(bbs)
        stream = get(st)
        return Trade(
            market=market,
            sequential_id=sequential_id,
            timestamp=_from_timestamp(m[ttms] / 1000, UTC),
            trade_price=m[tp] + 0.0,
            trade_volume=m[tv] + 0.0,
            ask_bid=_SIDES[m[ab]],
            prev_closing_price=m[pcp] + 0.0,
            change_price=absolute,
            signed_change_price=absolute * _SIGNS[change],
            change=change,
            best_ask_price=None if ask_price is None else ask_price + 0.0,
            best_ask_size=None if ask_size is None else ask_size + 0.0,
            best_bid_price=None if bid_price is None else bid_price + 0.0,
            best_bid_size=None if bid_size is None else bid_size + 0.0,
            stream_type=None if stream is None else _STREAM_TYPES[stream],
        )

    return _guarded(keys, build, fallback)


def _fast_orderbook(
    keys: Mapping[str, str], unit_keys: Mapping[str, str], fallback: _FastParser
) -> _FastParser:
    tms, tas, tbs, obu, lv, st = _bind(
        keys, "timestamp", "total_ask_size", "total_bid_size", "orderbook_units",
        "level", "stream_type",
    )  # fmt: skip
    ap, a_s, bp, b_s = _bind(unit_keys, "ask_price", "ask_size", "bid_price", "bid_size")
    level_type = OrderbookLevel  # a msgspec Struct: its C constructor is the fast way

    def build(m: Mapping[str, Any], market: str) -> WsModel:
        levels = tuple(
            [level_type(u[ap] + 0.0, u[a_s] + 0.0, u[bp] + 0.0, u[b_s] + 0.0) for u in m[obu]]
        )
        get = m.get
        level = get(lv)
        stream = get(st)
        return Orderbook(
            market=market,
            timestamp=_from_timestamp(m[tms] / 1000, UTC),
            total_ask_size=m[tas] + 0.0,
            total_bid_size=m[tbs] + 0.0,
            levels=levels,
            level=0.0 if level is None else level + 0.0,
            stream_type=None if stream is None else _STREAM_TYPES[stream],
        )

    return _guarded(keys, build, fallback)


def _fast_candle(
    keys: Mapping[str, str], interval: CandleInterval, fallback: _FastParser
) -> _FastParser:
    utc, tms, op, hp, lp, tp, catv, catp, st = _bind(
        keys, "candle_date_time_utc", "timestamp", "opening_price", "high_price",
        "low_price", "trade_price", "candle_acc_trade_volume", "candle_acc_trade_price",
        "stream_type",
    )  # fmt: skip

    def build(m: Mapping[str, Any], market: str) -> WsModel:
        stream = m.get(st)
        return Candle(
            market=market,
            interval=interval,
            start=naive_utc(m[utc]),
            opening_price=m[op] + 0.0,
            high_price=m[hp] + 0.0,
            low_price=m[lp] + 0.0,
            trade_price=m[tp] + 0.0,
            candle_acc_trade_volume=m[catv] + 0.0,
            candle_acc_trade_price=m[catp] + 0.0,
            last_trade_time=_from_timestamp(m[tms] / 1000, UTC),
            stream_type=None if stream is None else _STREAM_TYPES[stream],
        )

    return _guarded(keys, build, fallback)


def _fast_parsers(simple: bool, fallback: _FastParser = _parse_ws_strict) -> dict[str, _FastParser]:
    """Fast parsers by message type for one key format; ``fallback`` gets what they cannot parse."""

    def keys(kind: str) -> Mapping[str, str]:
        return SIMPLE_KEYS[kind] if simple else {key: key for key in SIMPLE_KEYS[kind]}

    unit_keys = (
        ORDERBOOK_UNIT_SIMPLE_KEYS if simple else {key: key for key in ORDERBOOK_UNIT_SIMPLE_KEYS}
    )
    parsers: dict[str, _FastParser] = {
        "ticker": _fast_ticker(keys("ticker"), fallback),
        "trade": _fast_trade(keys("trade"), fallback),
        "orderbook": _fast_orderbook(keys("orderbook"), unit_keys, fallback),
    }
    candle_keys = keys("candle")
    for interval in CandleInterval:
        if interval.ws_type is not None:
            parsers[interval.ws_type] = _fast_candle(candle_keys, interval, fallback)
    return parsers


_SIMPLE_PARSERS = _fast_parsers(simple=True)
_DEFAULT_PARSERS = _fast_parsers(simple=False)


def parse_ws_message(message: Mapping[str, Any]) -> WsModel:
    """One WebSocket data message (DEFAULT or SIMPLE keys) → Ticker, Trade, Orderbook or Candle.

    Raises ``FormatError``: ``payload`` is the message kind (``websocket`` when the
    type itself is missing or unknown, e.g. for ``{"status": "UP"}``), ``field``
    the DEFAULT name of the bad field.
    """
    try:
        message_type = message.get("ty")
        if message_type is None:
            parser = _DEFAULT_PARSERS[message.get("type")]  # type: ignore[index]
        else:
            parser = _SIMPLE_PARSERS[message_type]
    except AttributeError:
        raise FormatError(
            f"WebSocket message must be a JSON object, got {type(message).__name__}",
            payload="websocket",
        ) from None
    except (KeyError, TypeError):
        return _parse_ws_strict(message)  # raises FormatError naming the type
    return parser(message)
