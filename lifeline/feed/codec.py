"""Canonical models to bytes and back, for Redis stream entries and snapshots.

One entry is a two-byte header (the kind's letter and the format version) and the model
as a MessagePack map of its fields, encoded and decoded by ``msgspec`` straight from and
into the frozen dataclasses of :mod:`quotation.models` (about 1 µs each way for a
ticker). The round trip is exact: floats are doubles, timestamps keep their microseconds
and their UTC zone (the exchange's timestamps travel, so a follower's ``age`` is still
the age since the exchange produced the data), enums travel by value, a trade keeps its
``sequential_id`` and an orderbook its levels.

======== ====== ==========================================
kind      header model
======== ====== ==========================================
ticker    ``T1`` :class:`~quotation.models.Ticker`
trade     ``X1`` :class:`~quotation.models.Trade`
orderbook ``O1`` :class:`~quotation.models.Orderbook`
candle    ``C1`` :class:`~quotation.models.Candle`
======== ====== ==========================================

A bad entry (an unknown header, malformed MessagePack, a missing field, a value of the
wrong type, a timestamp without a zone) is a :class:`~lifeline.feed.errors.CodecError`
naming the kind and the field, never another exception: a follower skips it and goes on.
Unknown extra fields are ignored, so a newer publisher may add optional fields.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final

import msgspec

from lifeline.feed.errors import CodecError
from quotation.models import Candle, Orderbook, Ticker, Trade

__all__ = ["FeedModel", "decode", "decode_as", "encode", "kind_of"]

FeedModel = Ticker | Trade | Orderbook | Candle
"""What the shared feed carries."""

_VERSION: Final = b"1"
_KINDS: Final[dict[type, tuple[str, bytes]]] = {
    Ticker: ("ticker", b"T" + _VERSION),
    Trade: ("trade", b"X" + _VERSION),
    Orderbook: ("orderbook", b"O" + _VERSION),
    Candle: ("candle", b"C" + _VERSION),
}
_DECODERS: Final[dict[bytes, tuple[str, type, msgspec.msgpack.Decoder[Any]]]] = {
    header: (kind, model, msgspec.msgpack.Decoder(model))
    for model, (kind, header) in _KINDS.items()
}
_TIMES: Final[dict[type, tuple[str, ...]]] = {
    Ticker: ("trade_time", "timestamp"),
    Trade: ("timestamp",),
    Orderbook: ("timestamp",),
    Candle: ("start", "last_trade_time"),
}
"""The datetime fields of each model: a zone-less one is refused (ages would crash)."""
_ENCODER: Final = msgspec.msgpack.Encoder()
_FIELD_AT: Final = re.compile(r"at `\$\.([A-Za-z0-9_]+)")
_FIELD_MISSING: Final = re.compile(r"field `([A-Za-z0-9_]+)`")


def kind_of(model: FeedModel) -> str:
    """``ticker``, ``trade``, ``orderbook`` or ``candle``; ``TypeError`` for anything else."""
    try:
        return _KINDS[type(model)][0]
    except KeyError:
        raise TypeError(f"not a feed model: {type(model).__name__}") from None


def encode(model: FeedModel) -> bytes:
    """The entry bytes of ``model`` (header + MessagePack); ``TypeError`` for a non-model."""
    try:
        header = _KINDS[type(model)][1]
    except KeyError:
        raise TypeError(f"not a feed model: {type(model).__name__}") from None
    return header + _ENCODER.encode(model)


def decode(data: bytes) -> FeedModel:
    """The model in ``data``; :class:`CodecError` naming the kind and field if it is bad."""
    header = bytes(data[:2])
    try:
        kind, model_type, decoder = _DECODERS[header]
    except KeyError:
        raise CodecError(
            f"unknown entry header {header!r} (expected one of "
            f"{sorted(h.decode() for h in _DECODERS)})",
            kind=None, field=None,
        ) from None
    try:
        model: FeedModel = decoder.decode(memoryview(data)[2:])
    except msgspec.ValidationError as exc:
        message = str(exc)
        found = _FIELD_AT.search(message) or _FIELD_MISSING.search(message)
        field = found.group(1) if found else None
        raise CodecError(f"bad {kind} entry: {message}", kind=kind, field=field) from None
    except msgspec.DecodeError as exc:
        raise CodecError(f"bad {kind} entry: {exc}", kind=kind, field=None) from None
    for name in _TIMES[model_type]:
        value: datetime = getattr(model, name)
        if value.tzinfo is None:
            raise CodecError(
                f"bad {kind} entry: {name} has no time zone ({value.isoformat()})",
                kind=kind, field=name,
            )
    return model


def decode_as(model_type: type[Any], data: bytes) -> Any:
    """:func:`decode`, and a :class:`CodecError` if the entry is not a ``model_type``."""
    model = decode(data)
    if type(model) is not model_type:
        raise CodecError(
            f"expected a {_KINDS[model_type][0]} entry, got a {kind_of(model)}",
            kind=kind_of(model), field=None,
        )
    return model
