"""The simulator answers every recorded Upbit request with the same keys, JSON types and headers.

For each recorded REST exchange (``../shared/upbit-recordings/*.yaml``) the same
path and query is asked of a local simulator with plain ``requests``, and the
answer is compared with Upbit's, item by item and recursively:

* every object has exactly the recorded keys (no missing, no extra);
* every value has the recorded JSON type, where ``int`` and ``float`` are told
  apart, because Upbit's serializer is not uniform and a client could depend on it:

  - timestamps, ``unit`` and ``sequential_id`` are ints; prices, volumes and rates
    are doubles written with a fraction (``103460000.0``);
  - tickers write ``change_price``, ``change_rate`` and their signed twins as the
    int ``0`` when there is no change (every zero in the recording; 21 of 244
    tickers) and as doubles otherwise, so there a zero must be an int and any
    other value a float;
  - order-book unit prices and ``level`` are written without a fraction when they
    are whole (``103493000``, ``0``; the KRW-BTC book is all whole prices) and as
    doubles otherwise, so there an int is required for a whole value and a float
    for a fractional one;
  - anywhere else the recording mixes ints and floats for one field, either is
    accepted;

* ``Remaining-Req`` has Upbit's shape ``group=<name>; min=<n>; sec=<n>`` with the
  recorded group name and ``min``, and ``Limit-By-Ip: Yes`` is sent.
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket

from tests.quotation.recordings import Cassette, load_cassettes, load_ws_log, ws_logs
from upbit_sim import Simulator

pytestmark = [pytest.mark.timeout(30), pytest.mark.recordings]

_RECORDED_NAMES = [
    "get_candles_days",
    "get_candles_minutes",
    "get_candles_months",
    "get_candles_seconds",
    "get_candles_weeks",
    "get_candles_years",
    "get_orderbook_instruments",
    "get_orderbooks",
    "get_tickers",
    "get_tickers_by_quote",
    "get_trades",
]
_TICKER_CHANGES = frozenset(
    {"[].change_price", "[].change_rate", "[].signed_change_price", "[].signed_change_rate"}
)
_ORDERBOOK_PRICES = frozenset(
    {"[].orderbook_units[].ask_price", "[].orderbook_units[].bid_price", "[].level"}
)
_NUMBER_RULES: dict[str, dict[str, Callable[[float], bool]]] = {
    # cassette → {path: "is this value written as an int?"} (see the module docstring)
    "get_tickers": dict.fromkeys(_TICKER_CHANGES, lambda value: value == 0),
    "get_tickers_by_quote": dict.fromkeys(_TICKER_CHANGES, lambda value: value == 0),
    "get_orderbooks": dict.fromkeys(_ORDERBOOK_PRICES, lambda value: value.is_integer()),
}

_REMAINING_REQ = re.compile(r"group=([a-z][a-z0-9-]*); min=(\d+); sec=(\d+)")


@pytest.fixture(scope="module")
def cassettes(recordings_dir: Path) -> dict[str, Cassette]:
    return load_cassettes(recordings_dir)


def ask(sim: Simulator, cassette: Cassette) -> requests.Response:
    """GET the recorded path and query from the simulator."""
    return requests.get(f"http://127.0.0.1:{sim.port}{cassette.path_and_query}", timeout=10)


def json_type(value: object) -> str:
    """The JSON type of a decoded value, telling ``int`` from ``float``."""
    for python_type, name in (
        (bool, "bool"),
        (int, "int"),
        (float, "float"),
        (str, "string"),
        (list, "array"),
        (dict, "object"),
        (type(None), "null"),
    ):
        if isinstance(value, python_type):
            return name
    return type(value).__name__


def recorded_shape(value: Any) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """``(types, keys)`` by path (``[].orderbook_units[].ask_price``) over every recorded item."""
    types: dict[str, set[str]] = defaultdict(set)
    keys: dict[str, set[str]] = defaultdict(set)

    def walk(node: Any, path: str) -> None:
        types[path].add(json_type(node))
        if isinstance(node, dict):
            keys[path].update(node)
            for key, child in node.items():
                walk(child, f"{path}.{key}" if path else key)
        elif isinstance(node, list):
            for child in node:
                walk(child, f"{path}[]")

    walk(value, "")
    return types, keys


def shape_differences(
    recorded: Any, answered: Any, int_when: Mapping[str, Callable[[float], bool]] | None = None
) -> list[str]:
    """Every way ``answered`` differs from ``recorded`` in keys or JSON types (empty if none).

    ``int_when`` maps a path to the rule that says when Upbit writes a number there
    as an int rather than a float.
    """
    rules = int_when or {}
    types, keys = recorded_shape(recorded)
    differences: list[str] = []

    def walk(node: Any, path: str, where: str) -> None:
        kind = json_type(node)
        expected = types.get(path)
        if expected is None:
            differences.append(f"{where}: not in the recording")
            return
        if path in rules and kind in ("int", "float"):
            wanted = "int" if rules[path](float(node)) else "float"
            if kind != wanted:
                differences.append(f"{where}: {node!r} written as {kind}, Upbit writes {wanted}")
        elif kind not in expected:
            differences.append(f"{where}: {kind} {node!r:.40}, Upbit sends {sorted(expected)}")
        if isinstance(node, dict):
            missing = keys[path] - node.keys()
            extra = node.keys() - keys[path]
            if missing:
                differences.append(f"{where}: missing keys {sorted(missing)}")
            if extra:
                differences.append(f"{where}: extra keys {sorted(extra)}")
            for key, child in node.items():
                if key in keys[path]:
                    walk(child, f"{path}.{key}" if path else key, f"{where}.{key}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, f"{path}[]", f"{where}[{index}]")

    walk(answered, "", "body")
    return differences


def test_the_recordings_cover_the_endpoints_compared_here(cassettes: dict[str, Cassette]) -> None:
    assert sorted(cassettes) == _RECORDED_NAMES


@pytest.mark.parametrize("name", _RECORDED_NAMES)
def test_simulator_answers_the_recorded_request_with_the_same_keys_and_json_types(
    sim: Simulator, cassettes: dict[str, Cassette], name: str
) -> None:
    cassette = cassettes[name]
    response = ask(sim, cassette)
    assert response.status_code == cassette.status
    media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    assert media_type == "application/json"
    body = response.json()
    assert isinstance(body, list)
    assert body, f"{cassette.path_and_query} answered an empty array"
    assert shape_differences(cassette.body_json, body, _NUMBER_RULES.get(name)) == []


@pytest.mark.parametrize("name", _RECORDED_NAMES)
def test_simulator_sends_remaining_req_in_upbits_shape_with_the_recorded_group(
    sim: Simulator, cassettes: dict[str, Cassette], name: str
) -> None:
    cassette = cassettes[name]
    recorded = _REMAINING_REQ.fullmatch(cassette.header("Remaining-Req") or "")
    assert recorded is not None, "the recording itself has no Remaining-Req"
    response = ask(sim, cassette)
    header = response.headers.get("Remaining-Req", "")
    answered = _REMAINING_REQ.fullmatch(header)
    assert answered is not None, f"Remaining-Req {header!r} is not in Upbit's shape"
    assert answered.group(1) == recorded.group(1)
    assert answered.group(2) == recorded.group(2)
    assert 0 <= int(answered.group(3)) <= 9  # one request of ten is already spent
    assert response.headers.get("Limit-By-Ip") == cassette.header("Limit-By-Ip") == "Yes"


def test_shape_comparison_reports_a_missing_key_an_extra_key_and_a_wrong_type() -> None:
    recorded = [{"market": "KRW-BTC", "timestamp": 1, "trade_price": 1.5}]
    answered = [{"market": "KRW-BTC", "timestamp": 1.0, "new": 1}]
    assert shape_differences(recorded, answered) == [
        "body[0]: missing keys ['trade_price']",
        "body[0]: extra keys ['new']",
        "body[0].timestamp: float 1.0, Upbit sends ['int']",
    ]


def test_shape_comparison_wants_whole_orderbook_prices_as_ints_and_others_as_floats() -> None:
    rules = _NUMBER_RULES["get_orderbooks"]
    recorded = [{"orderbook_units": [{"ask_price": 103493000}], "level": 0}]
    good = [{"orderbook_units": [{"ask_price": 103493000}, {"ask_price": 0.5}], "level": 0}]
    bad = [{"orderbook_units": [{"ask_price": 103493000.0}], "level": 0.5}]
    assert shape_differences(recorded, good, rules) == []
    assert shape_differences(recorded, bad, rules) == [
        "body[0].orderbook_units[0].ask_price: 103493000.0 written as float, Upbit writes int",
    ]


def test_shape_comparison_wants_zero_ticker_changes_as_ints_and_others_as_floats() -> None:
    rules = _NUMBER_RULES["get_tickers_by_quote"]
    recorded = [{"change_price": 0}, {"change_price": 15.0}]
    assert shape_differences(recorded, [{"change_price": 0}, {"change_price": 2.0}], rules) == []
    assert shape_differences(recorded, [{"change_price": 0.0}, {"change_price": 2}], rules) == [
        "body[0].change_price: 0.0 written as float, Upbit writes int",
        "body[1].change_price: 2 written as int, Upbit writes float",
    ]


def test_shape_comparison_accepts_either_number_type_where_upbit_mixes_them() -> None:
    recorded = [{"change_price": 0}, {"change_price": 15.0}]
    assert shape_differences(recorded, [{"change_price": 0}, {"change_price": 2.5}]) == []


# --- WebSocket: the recorded 2021 SIMPLE session ----------------------------------------------

_WS_ADDED_SINCE_2021 = {
    "trade": {"bap", "bas", "bbp", "bbs"},  # best bid/ask, added 2024-11-27
    "orderbook": {"lv"},  # orderbook level ("호가 모아보기"), added later
}
"""Keys the simulator may send beyond the 2021 recording: documented later additions."""
_WS_NUMBERS = frozenset({"tp", "pcp", "cp", "tv", "tas", "tbs", "ap", "bp", "as", "bs"})
"""Doubles the 2021 session writes as ``127.0`` but today's REST answers write as ``127``
when whole: for these the simulator may send either JSON number type."""


def recorded_ws_frames(recordings_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """The recorded SIMPLE frames by message type."""
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path in ws_logs(recordings_dir):
        for _, frame in load_ws_log(path).frames:
            message = json.loads(frame)
            by_type[message["ty"]].append(message)
    return by_type


def simulator_ws_frames(sim: Simulator, wanted: int) -> dict[str, list[dict[str, Any]]]:
    """Up to ``wanted`` SIMPLE trade and orderbook frames (at least the snapshots), ≤ 10 s."""
    connection = websocket.create_connection(sim.ws_url, timeout=5, suppress_origin=True)
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    try:
        connection.send(
            json.dumps(
                [
                    {"ticket": "recordings"},
                    {"type": "trade", "codes": ["KRW-BTC", "BTC-ETH"]},
                    {"type": "orderbook", "codes": ["KRW-BTC.15", "BTC-ETH.15"]},
                    {"format": "SIMPLE"},
                ]
            )
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sum(map(len, by_type.values())) < wanted:
            try:
                message = json.loads(connection.recv())
            except websocket.WebSocketTimeoutException:
                break
            if "ty" in message:
                by_type[message["ty"]].append(message)
    finally:
        connection.close()
    return by_type


def ws_differences(
    recorded: list[dict[str, Any]], answered: dict[str, Any], kind: str
) -> list[str]:
    """How one simulator frame differs in keys or JSON types from the recorded frames."""
    types, keys = recorded_shape(recorded)
    differences: list[str] = []
    missing = keys["[]"] - answered.keys()
    extra = answered.keys() - keys["[]"] - _WS_ADDED_SINCE_2021.get(kind, set())
    if missing:
        differences.append(f"{kind}: missing keys {sorted(missing)}")
    if extra:
        differences.append(f"{kind}: extra keys {sorted(extra)}")

    def check(key: str, value: Any, path: str) -> None:
        expected = types.get(path)
        kind_of = json_type(value)
        if expected is None:
            return  # a documented later addition
        if key in _WS_NUMBERS and kind_of in ("int", "float") and expected <= {"int", "float"}:
            return
        if kind_of not in expected:
            differences.append(
                f"{kind}.{path[3:]}: {kind_of} {value!r:.40}, recorded {sorted(expected)}"
            )

    for key, value in answered.items():
        check(key, value, f"[].{key}")
    for unit in answered.get("obu", []):
        for key, value in unit.items():
            check(key, value, f"[].obu[].{key}")
    return differences


@pytest.mark.timeout(30)
def test_simulator_websocket_frames_have_the_recorded_simple_keys_and_json_types(
    sim: Simulator, recordings_dir: Path
) -> None:
    recorded = recorded_ws_frames(recordings_dir)
    answered = simulator_ws_frames(sim, wanted=8)
    assert answered.keys() == {"trade", "orderbook"}
    differences = [
        difference
        for kind, frames in answered.items()
        for frame in frames
        for difference in ws_differences(recorded[kind], frame, kind)
    ]
    assert sorted(set(differences)) == []


def test_websocket_comparison_reports_missing_and_unexpected_keys_and_wrong_types() -> None:
    recorded = [{"ty": "trade", "cd": "KRW-LAMB", "tp": 127.0, "sid": 1, "tms": 1}]
    answered = {"ty": "trade", "cd": "KRW-BTC", "tp": 127, "sid": "1", "bap": 1.0, "x": 0}
    assert ws_differences(recorded, answered, "trade") == [
        "trade: missing keys ['tms']",
        "trade: extra keys ['x']",
        "trade.sid: string '1', recorded ['int']",
    ]
