"""What a WebSocket connection asks Upbit for: subscriptions and the request frame.

A :class:`Subscription` is one Upbit "data type object" (``ticker``, ``trade``,
``orderbook`` or ``candle.*`` for a set of codes, with the snapshot/realtime
flags and, for orderbooks, the depth suffix ``CODE.N`` and the ``level``).
:func:`build_request` turns the *full* set into the single request frame Upbit
expects (a JSON array: ticket first, format last). Upbit replaces a connection's
subscriptions with every request, so the whole set is always sent at once.

Invalid subscriptions raise :class:`~quotation.errors.InvalidRequest` naming the
field, before anything is sent.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from quotation.errors import InvalidRequest
from quotation.models import CandleInterval

__all__ = [
    "ORDERBOOK_DEPTHS",
    "DataType",
    "Subscription",
    "WsFormat",
    "build_request",
    "new_ticket",
]

ORDERBOOK_DEPTHS: frozenset[int] = frozenset({1, 5, 15, 30})
"""Depths Upbit serves through the ``CODE.N`` suffix."""

_CODE = re.compile(r"^[A-Z0-9]+-[A-Z0-9]+$")


class WsFormat(enum.Enum):
    """The ``format`` object: full or abbreviated keys, one object or a list per frame."""

    DEFAULT = "DEFAULT"
    SIMPLE = "SIMPLE"
    JSON_LIST = "JSON_LIST"
    SIMPLE_LIST = "SIMPLE_LIST"

    @property
    def simple_keys(self) -> bool:
        """True for the abbreviated-key formats."""
        return self in (WsFormat.SIMPLE, WsFormat.SIMPLE_LIST)

    @property
    def is_list(self) -> bool:
        """True where every frame is a JSON array of messages."""
        return self in (WsFormat.JSON_LIST, WsFormat.SIMPLE_LIST)


class DataType(enum.Enum):
    """Every public data type of ``/websocket/v1``; the value is Upbit's ``type``."""

    TICKER = "ticker"
    TRADE = "trade"
    ORDERBOOK = "orderbook"
    CANDLE_1S = "candle.1s"
    CANDLE_1M = "candle.1m"
    CANDLE_3M = "candle.3m"
    CANDLE_5M = "candle.5m"
    CANDLE_10M = "candle.10m"
    CANDLE_15M = "candle.15m"
    CANDLE_30M = "candle.30m"
    CANDLE_60M = "candle.60m"
    CANDLE_240M = "candle.240m"

    @property
    def candle_interval(self) -> CandleInterval | None:
        """The candle interval of a ``candle.*`` type, else ``None``."""
        if self.value.startswith("candle."):
            return CandleInterval.from_ws_type(self.value)
        return None

    @classmethod
    def candle(cls, interval: CandleInterval) -> DataType:
        """The data type streaming ``interval``; ``InvalidRequest`` if it is not streamed."""
        ws_type = interval.ws_type
        if ws_type is None:
            raise InvalidRequest(
                f"candle interval {interval.value} is not streamed on the WebSocket",
                parameter="interval",
                value=interval,
            )
        return cls(ws_type)


@dataclass(frozen=True, slots=True)
class Subscription:
    """One data type object of the request frame.

    ``depth`` (1, 5, 15 or 30) and ``level`` only apply to ``orderbook``;
    ``None`` leaves Upbit's defaults (30 rows, level 0). At most one of
    ``is_only_snapshot`` / ``is_only_realtime`` may be set.
    """

    type: DataType
    codes: tuple[str, ...]
    is_only_snapshot: bool = False
    is_only_realtime: bool = False
    depth: int | None = None
    level: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.type, DataType):
            raise InvalidRequest(
                f"type must be a DataType, got {self.type!r}", parameter="type", value=self.type
            )
        if not isinstance(self.codes, tuple) or not self.codes:
            raise InvalidRequest(
                "codes must be a non-empty tuple of market codes",
                parameter="codes",
                value=self.codes,
            )
        for code in self.codes:
            if not isinstance(code, str) or not _CODE.match(code):
                raise InvalidRequest(
                    f"market code {code!r} is not an upper-case QUOTE-BASE code",
                    parameter="codes",
                    value=code,
                )
        if len(set(self.codes)) != len(self.codes):
            raise InvalidRequest("codes has duplicates", parameter="codes", value=self.codes)
        if self.is_only_snapshot and self.is_only_realtime:
            raise InvalidRequest(
                "is_only_snapshot and is_only_realtime exclude each other",
                parameter="is_only_realtime",
                value=True,
            )
        if self.type is not DataType.ORDERBOOK and (
            self.depth is not None or self.level is not None
        ):
            raise InvalidRequest(
                "depth and level only apply to orderbook",
                parameter="depth" if self.depth is not None else "level",
                value=self.depth if self.depth is not None else self.level,
            )
        if self.depth is not None and self.depth not in ORDERBOOK_DEPTHS:
            raise InvalidRequest(
                f"orderbook depth must be one of {sorted(ORDERBOOK_DEPTHS)}",
                parameter="depth",
                value=self.depth,
            )
        if self.level is not None and not (isinstance(self.level, int | float) and self.level >= 0):
            raise InvalidRequest(
                "orderbook level must be a number >= 0", parameter="level", value=self.level
            )

    @classmethod
    def of(
        cls,
        type: DataType,
        codes: Iterable[str],
        *,
        is_only_snapshot: bool = False,
        is_only_realtime: bool = False,
        depth: int | None = None,
        level: float | None = None,
    ) -> Subscription:
        """Build from any iterable of codes."""
        return cls(
            type,
            tuple(codes),
            is_only_snapshot=is_only_snapshot,
            is_only_realtime=is_only_realtime,
            depth=depth,
            level=level,
        )

    def to_wire(self) -> dict[str, object]:
        """The data type object as Upbit expects it."""
        codes = list(self.codes)
        if self.depth is not None:
            codes = [f"{code}.{self.depth}" for code in codes]
        obj: dict[str, object] = {"type": self.type.value, "codes": codes}
        if self.is_only_snapshot:
            obj["is_only_snapshot"] = True
        if self.is_only_realtime:
            obj["is_only_realtime"] = True
        if self.level is not None:
            obj["level"] = self.level
        return obj


def new_ticket() -> str:
    """A unique ticket (UUID4), as Upbit recommends."""
    return str(uuid.uuid4())


def build_request(
    subscriptions: Iterable[Subscription], *, ticket: str, fmt: WsFormat = WsFormat.DEFAULT
) -> str:
    """The one request frame for the whole subscription set (a JSON text).

    Raises ``InvalidRequest`` for an empty set, an empty ticket or a data type
    given twice (Upbit would keep only one of them).
    """
    subs = tuple(subscriptions)
    if not subs:
        raise InvalidRequest("at least one subscription is needed", parameter="subscriptions")
    if not ticket:
        raise InvalidRequest("ticket must not be empty", parameter="ticket", value=ticket)
    seen: set[DataType] = set()
    for sub in subs:
        if sub.type in seen:
            raise InvalidRequest(
                f"data type {sub.type.value} is subscribed twice; merge the codes",
                parameter="subscriptions",
                value=sub.type.value,
            )
        seen.add(sub.type)
    frame: list[dict[str, object]] = [{"ticket": ticket}]
    frame.extend(sub.to_wire() for sub in subs)
    frame.append({"format": fmt.value})
    return orjson.dumps(frame).decode()
