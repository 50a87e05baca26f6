"""The simulator's side of Upbit's WebSocket request frame: parsing, validation, the answer.

A client sends one JSON array per request: ticket object(s), data type objects
(``type``, ``codes`` with an optional ``CODE.N`` orderbook depth, ``level``,
``is_only_snapshot`` / ``is_only_realtime`` or their camelCase spellings), an
optional ``format`` object and, instead of types, the ``LIST_SUBSCRIPTIONS``
method. :func:`parse_request` turns the frame into a :class:`RequestFrame` or
raises :class:`RequestError` carrying Upbit's error name (``WRONG_FORMAT``,
``NO_TICKET``, ``NO_TYPE``, ``NO_CODES``, ``INVALID_PARAM``), which the session
sends back as an error frame. :func:`list_subscriptions_answer` is the frame
that answers ``LIST_SUBSCRIPTIONS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from quotation.websocket.subscription import ORDERBOOK_DEPTHS, DataType, WsFormat
from upbit_sim.orderbook import MAX_DEPTH

__all__ = [
    "FULL_DEPTH",
    "RequestError",
    "RequestFrame",
    "SubscriptionSpec",
    "list_subscriptions_answer",
    "parse_request",
]

FULL_DEPTH = MAX_DEPTH
"""Orderbook rows of a code without a (served) ``.N`` suffix: every row of an engine book."""


class RequestError(Exception):
    """A request frame Upbit would refuse; ``code`` is Upbit's error name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class SubscriptionSpec:
    """One subscribed data type of a connection."""

    type: DataType
    depths: dict[str, int]
    """Code → orderbook depth (30 for other types)."""
    snapshot: bool
    realtime: bool
    level: float


@dataclass(frozen=True, slots=True)
class RequestFrame:
    """One parsed request frame: its first ticket, data types, format and method."""

    ticket: str
    specs: tuple[SubscriptionSpec, ...]
    fmt: WsFormat | None
    method: str | None


def _flag(obj: dict[str, Any], snake: str, camel: str) -> bool:
    value = obj.get(snake, obj.get(camel, False))
    if not isinstance(value, bool):
        raise RequestError("INVALID_PARAM", f"{snake} must be a boolean")
    return value


def _parse_spec(obj: dict[str, Any]) -> SubscriptionSpec:
    try:
        data_type = DataType(obj["type"])
    except (ValueError, TypeError):
        raise RequestError("INVALID_PARAM", f"unknown type {obj['type']!r}") from None
    codes = obj.get("codes")
    if not codes:
        raise RequestError("NO_CODES", "codes is required")
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        raise RequestError("INVALID_PARAM", "codes must be a list of strings")
    depths: dict[str, int] = {}
    for code in codes:
        market, _, suffix = code.partition(".")
        depth = FULL_DEPTH
        if suffix:
            if data_type is not DataType.ORDERBOOK or not suffix.isdigit():
                raise RequestError("INVALID_PARAM", f"invalid code {code!r}")
            depth = int(suffix) if int(suffix) in ORDERBOOK_DEPTHS else FULL_DEPTH
        depths[market] = depth
    level = obj.get("level", 0)
    if isinstance(level, bool) or not isinstance(level, int | float) or level < 0:
        raise RequestError("INVALID_PARAM", "level must be a number >= 0")
    only_snapshot = _flag(obj, "is_only_snapshot", "isOnlySnapshot")
    only_realtime = _flag(obj, "is_only_realtime", "isOnlyRealtime")
    return SubscriptionSpec(
        type=data_type,
        depths=depths,
        snapshot=not only_realtime,
        realtime=not only_snapshot,
        level=float(level),
    )


def parse_request(text: str | bytes) -> RequestFrame:
    """The request frame ``text``, validated as Upbit does; raises :class:`RequestError`."""
    try:
        payload = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise RequestError("WRONG_FORMAT", "request is not JSON") from None
    if not isinstance(payload, list) or not all(isinstance(o, dict) for o in payload):
        raise RequestError("WRONG_FORMAT", "request must be a JSON array of objects")
    tickets = [o["ticket"] for o in payload if "ticket" in o]
    if not tickets or not all(isinstance(t, str) and t for t in tickets):
        raise RequestError("NO_TICKET", "ticket is required")
    fmt: WsFormat | None = None
    method: str | None = None
    specs: list[SubscriptionSpec] = []
    for obj in payload:
        if "format" in obj:
            try:
                fmt = WsFormat(obj["format"])
            except ValueError:
                raise RequestError("INVALID_PARAM", f"unknown format {obj['format']!r}") from None
        elif "method" in obj:
            if obj["method"] != "LIST_SUBSCRIPTIONS":
                raise RequestError("INVALID_PARAM", f"unknown method {obj['method']!r}")
            method = obj["method"]
        elif "type" in obj:
            specs.append(_parse_spec(obj))
    if method is None and not specs:
        raise RequestError("NO_TYPE", "type is required")
    return RequestFrame(tickets[0], tuple(specs), fmt, method)


def list_subscriptions_answer(
    specs: tuple[SubscriptionSpec, ...], fmt: WsFormat, ticket: str
) -> bytes:
    """The ``LIST_SUBSCRIPTIONS`` answer, in SIMPLE keys for the SIMPLE formats."""
    simple = fmt.simple_keys
    result = []
    for spec in specs:
        entry: dict[str, Any] = {
            "ty" if simple else "type": spec.type.value,
            "cds" if simple else "codes": list(spec.depths),
        }
        if spec.type is DataType.ORDERBOOK:
            entry["lv" if simple else "level"] = spec.level
        result.append(entry)
    if simple:
        body = {"mthd": "LIST_SUBSCRIPTIONS", "rslt": result, "tckt": ticket}
    else:
        body = {"method": "LIST_SUBSCRIPTIONS", "result": result, "ticket": ticket}
    return orjson.dumps(body)
