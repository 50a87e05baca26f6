"""Rule: the REST fast path (``quotation._rest_fast``) builds exactly what the strict readers
build, and on drift the public parsers give the strict readers' result or their FormatError.

Proved on every recorded REST body, on simulator answers for every endpoint, many markets
and several counts, and on drifted copies of one item of each (each key removed, set to a
value of every wrong JSON type, an extra key). Order books are proved from their raw bodies
too (``parse_orderbooks_json``, msgspec): the same books, and for a body orjson rejects the
same ``orjson.JSONDecodeError``. "Exactly" means ``==`` and, field by field,
the same type and ``repr`` (so ``-0.0``, a tz-aware ``datetime`` and a ``Decimal``'s digits
count too).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
import requests

from quotation import _rest_fast
from quotation.errors import FormatError
from quotation.models import CandleInterval
from quotation.parsing import (
    _strict_candles,
    _strict_instruments,
    _strict_markets,
    _strict_orderbooks,
    _strict_tickers,
    _strict_trades,
    parse_candles,
    parse_markets,
    parse_orderbook_instruments,
    parse_orderbooks,
    parse_orderbooks_json,
    parse_tickers,
    parse_trades,
)
from tests.quotation.recordings import load_cassettes
from upbit_sim import Simulator
from upbit_sim.limits import RateLimitPolicy

pytestmark = pytest.mark.timeout(30)

_Parse = Callable[[Any], list[Any]]


@dataclasses.dataclass(frozen=True)
class Kind:
    """One REST payload kind: its public parser, the fast path alone and the strict readers."""

    public: _Parse
    fast: _Parse
    strict: _Parse


def _candles(interval: CandleInterval) -> Kind:
    return Kind(
        lambda p: parse_candles(p, interval),
        lambda p: _rest_fast.candles(p, interval),
        lambda p: _strict_candles(p, interval),
    )


TICKERS = Kind(parse_tickers, _rest_fast.tickers, _strict_tickers)
TRADES = Kind(parse_trades, _rest_fast.trades, _strict_trades)
ORDERBOOKS = Kind(parse_orderbooks, _rest_fast.orderbooks, _strict_orderbooks)
MARKETS = Kind(parse_markets, _rest_fast.markets, _strict_markets)
INSTRUMENTS = Kind(parse_orderbook_instruments, _rest_fast.instruments, _strict_instruments)
_RECORDED: dict[str, Kind] = {
    "get_tickers": TICKERS,
    "get_tickers_by_quote": TICKERS,
    "get_trades": TRADES,
    "get_orderbooks": ORDERBOOKS,
    "get_orderbook_instruments": INSTRUMENTS,
    "get_candles_seconds": _candles(CandleInterval.SECOND_1),
    "get_candles_minutes": _candles(CandleInterval.MINUTE_1),
    "get_candles_days": _candles(CandleInterval.DAY),
    "get_candles_weeks": _candles(CandleInterval.WEEK),
    "get_candles_months": _candles(CandleInterval.MONTH),
    "get_candles_years": _candles(CandleInterval.YEAR),
}


def assert_identical(got: object, expected: object, path: str = "") -> None:
    """Equal, and the same type and repr in every field, recursively."""
    assert type(got) is type(expected), path
    if dataclasses.is_dataclass(expected):
        for field in dataclasses.fields(expected):
            name = field.name
            assert_identical(getattr(got, name), getattr(expected, name), f"{path}.{name}")
    elif isinstance(expected, msgspec.Struct):
        for name in expected.__struct_fields__:
            assert_identical(getattr(got, name), getattr(expected, name), f"{path}.{name}")
    elif isinstance(expected, list | tuple):
        assert isinstance(got, list | tuple) and len(got) == len(expected), path
        for index, (one, other) in enumerate(zip(got, expected, strict=True)):
            assert_identical(one, other, f"{path}[{index}]")
    elif isinstance(expected, frozenset):
        assert got == expected, path
    else:
        assert (got, repr(got)) == (expected, repr(expected)), path


def assert_fast_equals_strict(kind: Kind, payload: list[Any]) -> None:
    """The fast path takes ``payload`` on its own and builds what the strict readers build."""
    strict = kind.strict(copy.deepcopy(payload))
    fast = kind.fast(copy.deepcopy(payload))
    assert fast == strict
    assert_identical(fast, strict)
    assert_identical(kind.public(copy.deepcopy(payload)), strict)


# --- recorded and simulated payloads ----------------------------------------------------------


@pytest.mark.recordings
@pytest.mark.parametrize("name", sorted(_RECORDED))
def test_every_recorded_rest_payload_takes_the_fast_path_and_equals_the_strict_parse(
    recordings_dir: Path, name: str
) -> None:
    cassette = load_cassettes(recordings_dir)[name]

    assert_fast_equals_strict(_RECORDED[name], cassette.body_json)


@pytest.fixture(scope="module")
def sim_body() -> Iterator[Callable[[str], bytes]]:
    """GET a simulator path (with its rate limit raised): the raw body of the answer."""
    sim = Simulator(seed=7, rate_limit=RateLimitPolicy(per_second=1_000_000))
    sim.start()
    session = requests.Session()

    def get(path: str) -> bytes:
        response = session.get(f"{sim.base_url}{path}", timeout=5)
        assert response.status_code == 200, (path, response.text)
        return response.content

    try:
        yield get
    finally:
        session.close()
        sim.stop()


@pytest.fixture(scope="module")
def sim_get(sim_body: Callable[[str], bytes]) -> Callable[[str], Any]:
    """GET a simulator path and decode the JSON answer."""
    return lambda path: json.loads(sim_body(path))


def _all_markets(get: Callable[[str], Any]) -> list[str]:
    return [item["market"] for item in get("/market/all")]


def _chunks(codes: list[str], size: int) -> Iterator[str]:
    for start in range(0, len(codes), size):
        yield ",".join(codes[start : start + size])


def test_simulated_markets_tickers_and_instruments_of_every_market_equal_the_strict_parse(
    sim_get: Callable[[str], Any],
) -> None:
    codes = _all_markets(sim_get)
    assert len(codes) >= 100
    for details in ("true", "false"):
        assert_fast_equals_strict(MARKETS, sim_get(f"/market/all?is_details={details}"))
    for chunk in _chunks(codes, 100):
        assert_fast_equals_strict(TICKERS, sim_get(f"/ticker?markets={chunk}"))
        assert_fast_equals_strict(INSTRUMENTS, sim_get(f"/orderbook/instruments?markets={chunk}"))
    for quote in ("KRW", "BTC", "USDT"):
        assert_fast_equals_strict(TICKERS, sim_get(f"/ticker/all?quote_currencies={quote}"))


@pytest.mark.parametrize("count", [1, 15, 30])
def test_simulated_orderbooks_of_every_market_and_depth_equal_the_strict_parse(
    sim_get: Callable[[str], Any], count: int
) -> None:
    codes = _all_markets(sim_get)
    for chunk in _chunks(codes, 100):
        assert_fast_equals_strict(ORDERBOOKS, sim_get(f"/orderbook?markets={chunk}&count={count}"))


def test_simulated_trades_and_candles_of_many_markets_and_counts_equal_the_strict_parse(
    sim_get: Callable[[str], Any],
) -> None:
    codes = _all_markets(sim_get)[::12]
    intervals = [interval for interval in CandleInterval if interval is not CandleInterval.SECOND_1]
    for market in codes:
        for count in (1, 100, 500):
            assert_fast_equals_strict(
                TRADES, sim_get(f"/trades/ticks?market={market}&count={count}")
            )
        for interval in intervals:
            for count in (1, 200):
                payload = sim_get(f"{interval.rest_path}?market={market}&count={count}")
                assert_fast_equals_strict(_candles(interval), payload)


# --- drift and malformed variants -------------------------------------------------------------

_WRONG_VALUES: list[object] = [None, True, False, 0, 1.5, -0.0, "x", "2026-01-01", [], {}, [1.0]]
"""One value of every JSON type (and a few look-alikes) to put where a field was."""


def _outcome(parse: _Parse, payload: object) -> tuple[object, ...]:
    """The models parsed, or the FormatError's type, payload, field and message."""
    try:
        return ("parsed", parse(payload))
    except FormatError as error:
        return ("FormatError", type(error), error.payload, error.field, str(error))


def _variants(item: dict[str, Any]) -> Iterator[tuple[str, object]]:
    """``item`` with an extra key, and with each key removed or set to each wrong value."""
    yield "extra key", {**item, "an_unknown_field": [1, {"x": True}]}
    for key in item:
        yield f"{key} removed", {name: value for name, value in item.items() if name != key}
        for value in _WRONG_VALUES:
            yield f"{key}={value!r}", {**item, key: value}


def _nested_variants(item: dict[str, Any], key: str) -> Iterator[tuple[str, object]]:
    """``item`` with variants of the first object inside ``item[key]`` (an object or array)."""
    inner = item[key]
    first = inner[0] if isinstance(inner, list) else inner
    for what, changed in _variants(first):
        yield (
            f"{key}: {what}",
            {**item, key: [changed, *inner[1:]] if isinstance(inner, list) else changed},
        )


def _assert_same_outcome_on_every_variant(kind: Kind, item: dict[str, Any], nested: str) -> None:
    variants = list(_variants(item))
    if nested:
        variants += _nested_variants(item, nested)
    payloads: list[tuple[str, object]] = [(what, [item, changed]) for what, changed in variants]
    payloads += [("not an array", item), ("item not an object", [item, "x"])]
    for what, payload in payloads:
        got = _outcome(kind.public, copy.deepcopy(payload))
        expected = _outcome(kind.strict, copy.deepcopy(payload))
        assert_identical(got, expected, what)


def test_drifted_tickers_trades_and_instruments_parse_or_fail_exactly_as_the_strict_path(
    sim_get: Callable[[str], Any],
) -> None:
    trade = sim_get("/trades/ticks?market=KRW-BTC&count=1")[0]
    for item in (
        trade,
        {**trade, "change": "RISE", "best_ask_price": 1, "stream_type": "REALTIME"},
    ):
        _assert_same_outcome_on_every_variant(TRADES, item, "")
    ticker = sim_get("/ticker?markets=KRW-BTC")[0]
    for item in (
        ticker,
        {**ticker, "ask_bid": "ASK", "acc_ask_volume": 1.5, "market_state": "ACTIVE"},
    ):
        _assert_same_outcome_on_every_variant(TICKERS, item, "")
    instrument = sim_get("/orderbook/instruments?markets=KRW-BTC")[0]
    _assert_same_outcome_on_every_variant(INSTRUMENTS, instrument, "")


def test_drifted_candles_parse_or_fail_exactly_as_the_strict_path(
    sim_get: Callable[[str], Any],
) -> None:
    minute = sim_get("/candles/minutes/1?market=KRW-BTC&count=1")[0]
    _assert_same_outcome_on_every_variant(_candles(CandleInterval.MINUTE_1), minute, "")
    _assert_same_outcome_on_every_variant(_candles(CandleInterval.MINUTE_5), minute, "")
    day = sim_get("/candles/days?market=KRW-BTC&count=1")[0]
    _assert_same_outcome_on_every_variant(_candles(CandleInterval.DAY), day, "")
    for start in ("2026-11-30T21:27:00Z", "2026-11-30T21:27:00+09:00", "2026-11-30", "20261130"):
        _assert_same_outcome_on_every_variant(
            _candles(CandleInterval.MINUTE_1), {**minute, "candle_date_time_utc": start}, ""
        )


def test_drifted_orderbooks_and_their_levels_parse_or_fail_exactly_as_the_strict_path(
    sim_get: Callable[[str], Any],
) -> None:
    book = sim_get("/orderbook?markets=KRW-BTC&count=3")[0]
    _assert_same_outcome_on_every_variant(ORDERBOOKS, book, "orderbook_units")
    _assert_same_outcome_on_every_variant(ORDERBOOKS, {**book, "stream_type": "SNAPSHOT"}, "")


def test_drifted_markets_and_their_market_events_parse_or_fail_exactly_as_the_strict_path(
    sim_get: Callable[[str], Any],
) -> None:
    market = sim_get("/market/all?is_details=true")[0]
    _assert_same_outcome_on_every_variant(MARKETS, market, "market_event")
    event = market["market_event"]
    _assert_same_outcome_on_every_variant(
        MARKETS,
        {**market, "market_event": {**event, "caution": {**event["caution"], "NEW": True}}},
        "market_event",
    )
    old = {key: value for key, value in market.items() if key != "market_event"}
    for warning in ("NONE", "CAUTION", "OTHER"):
        _assert_same_outcome_on_every_variant(MARKETS, {**old, "market_warning": warning}, "")


# --- order books from the raw body (msgspec) ----------------------------------------------------


def _body_outcome(body: bytes) -> tuple[object, ...]:
    """``parse_orderbooks_json(body)``: the books, the FormatError, or orjson's error."""
    try:
        return _outcome(parse_orderbooks_json, body)
    except orjson.JSONDecodeError as error:
        return ("JSONDecodeError", str(error))


def _orjson_outcome(body: bytes) -> tuple[object, ...]:
    """The reference: the body decoded by orjson, then the strict readers."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        return ("JSONDecodeError", str(error))
    return _outcome(_strict_orderbooks, payload)


@pytest.mark.recordings
def test_the_recorded_orderbook_body_is_decoded_by_msgspec_alone_into_the_strict_parse(
    recordings_dir: Path,
) -> None:
    body = load_cassettes(recordings_dir)["get_orderbooks"].body_text.encode()

    assert_identical(_rest_fast.orderbooks_json(body), _strict_orderbooks(orjson.loads(body)))


@pytest.mark.parametrize("count", [1, 15, 30])
def test_simulated_orderbook_bodies_of_every_market_and_depth_are_decoded_by_msgspec_alone(
    sim_body: Callable[[str], bytes], sim_get: Callable[[str], Any], count: int
) -> None:
    for chunk in _chunks(_all_markets(sim_get), 100):
        body = sim_body(f"/orderbook?markets={chunk}&count={count}")
        expected = _strict_orderbooks(orjson.loads(body))

        assert_identical(_rest_fast.orderbooks_json(body), expected)
        assert_identical(parse_orderbooks_json(body), expected)


def test_an_aggregated_orderbook_body_keeps_its_level(
    sim_body: Callable[[str], bytes], sim_get: Callable[[str], Any]
) -> None:
    levels = sim_get("/orderbook/instruments?markets=KRW-BTC")[0]["supported_levels"]
    body = sim_body(f"/orderbook?markets=KRW-BTC&level={levels[-1]}")
    books = _rest_fast.orderbooks_json(body)

    assert books[0].level == float(levels[-1]) > 0
    assert_identical(books, _strict_orderbooks(orjson.loads(body)))


def test_drifted_orderbook_bodies_parse_or_fail_exactly_as_the_strict_path(
    sim_get: Callable[[str], Any],
) -> None:
    book = sim_get("/orderbook?markets=KRW-BTC&count=3")[0]
    variants = [
        *_variants(book),
        *_nested_variants(book, "orderbook_units"),
        *_variants({**book, "stream_type": "SNAPSHOT", "level": 0}),
    ]
    payloads: list[tuple[str, object]] = [(what, [book, changed]) for what, changed in variants]
    payloads += [("not an array", book), ("item not an object", [book, "x"]), ("empty", [])]
    for what, payload in payloads:
        body = orjson.dumps(payload)
        assert_identical(_body_outcome(body), _orjson_outcome(body), what)


def test_a_key_the_structs_do_not_know_sends_the_body_the_orjson_way_with_the_same_books(
    sim_body: Callable[[str], bytes],
) -> None:
    body = sim_body("/orderbook?markets=KRW-BTC,KRW-ETH&count=2")
    for drifted in (
        body.replace(b'"market":', b'"new":[1,{"x":true}],"market":', 1),
        body.replace(b'"ask_price":', b'"ask_count":3,"ask_price":', 1),
    ):
        with pytest.raises(msgspec.ValidationError, match="unknown field"):
            _rest_fast.orderbooks_json(drifted)
        assert_identical(parse_orderbooks_json(drifted), _strict_orderbooks(orjson.loads(drifted)))


_BAD_JSON_VALUES = [
    b"1e400", b"-1E400", b"123456789e999999999", b"NaN", b"Infinity", b"01", b"1.", b"tru",
    b'"\xff"', b'"\xed\xa0\x80"', b'"\\ud800"', b'"a\x01b"', b'"\\q"',
    b"[" * 2000 + b"]" * 2000, b"[1,]", b"",
]  # fmt: skip
"""JSON values orjson rejects (msgspec skips some of them unchecked when it skips a key)."""


def test_order_book_bodies_that_orjson_rejects_fail_with_its_error_wherever_the_fault_is(
    sim_body: Callable[[str], bytes],
) -> None:
    body = sim_body("/orderbook?markets=KRW-BTC&count=2")
    bodies = [b"", b" ", body + b" x", b"\xef\xbb\xbf" + body, body[:-1], b" " + body + b"\n"]
    for value in _BAD_JSON_VALUES:
        bodies += [
            body.replace(b'"market":', b'"new":' + value + b',"market":', 1),
            body.replace(b'"ask_price":', b'"new":' + value + b',"ask_price":', 1),
            body.replace(b'"KRW-BTC"', value, 1),
            body.replace(b'"timestamp":', b'"timestamp":' + value + b',"was":', 1),
            body.replace(b'"bid_size":', b'"bid_size":' + value + b',"was":', 1),
        ]
    outcomes = [_orjson_outcome(one) for one in bodies]
    assert sum(outcome[0] == "JSONDecodeError" for outcome in outcomes) >= len(bodies) - 1
    for one, expected in zip(bodies, outcomes, strict=True):
        assert_identical(_body_outcome(one), expected, repr(one[:120]))
