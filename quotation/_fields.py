"""Strict readers for the fields of one Upbit JSON object, with errors that name the field.

A ``FieldReader`` wraps one decoded JSON object (one REST array item or one
WebSocket message) and reads typed fields from it. Every read checks the JSON
type strictly (a JSON bool is not a number, an int is a fine float) and, when the
field is missing or of the wrong type, raises ``FormatError`` whose message says
which payload (kind, array index, market if known) and which field, and whose
``payload``/``field`` attributes carry the same for callers.

Fields are always named by their DEFAULT (full) Upbit key; ``keys`` translates
them to the key actually used in the object (the SIMPLE abbreviation for
WebSocket messages in SIMPLE format).

This is the reference implementation of the checks. The WebSocket hot path in
``quotation.parsing`` skips most of them and falls back to these readers to
explain a frame it could not parse.
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from quotation.errors import FormatError

__all__ = ["FieldReader", "naive_utc", "require_list"]

_T = TypeVar("_T")
_MISSING: Any = object()
_SHORT_REPR = reprlib.Repr()
"""Shows a container in an error message: a few levels and items only, however deep or long it
is (plain ``repr`` of a hostile payload can nest past the recursion limit or run to megabytes)."""
_SHORT_REPR.maxlevel = 3
_SHORT_REPR.maxstring = 40


def require_list(payload: object, kind: str) -> list[Any]:
    """``payload`` itself if it is a JSON array, else ``FormatError`` naming ``kind``."""
    if not isinstance(payload, list):
        raise FormatError(
            f"{kind} payload must be a JSON array, got {_json_type(payload)}",
            payload=kind,
        )
    return payload


class FieldReader:
    """Reads typed fields from one JSON object; every failure is a ``FormatError``.

    ``payload`` is the payload kind (``ticker``, ``trade``, …) and ``where`` the
    context for messages (``ticker[3] (KRW-BTC)``); ``keys`` maps DEFAULT field
    names to the keys used in the object; ``prefix`` is the path of a nested
    object (``orderbook_units[3].``). Start from a payload item with ``for_item``.
    """

    __slots__ = ("_item", "_keys", "_prefix", "payload", "where")

    def __init__(
        self,
        item: object,
        *,
        payload: str,
        where: str,
        keys: Mapping[str, str] | None = None,
        prefix: str = "",
    ) -> None:
        self.payload = payload
        self.where = where
        self._keys: Mapping[str, str] = keys if keys is not None else {}
        self._prefix = prefix
        if not isinstance(item, Mapping):
            name = prefix.rstrip(".") or None
            what = f"field {name!r}" if name else "item"
            raise FormatError(
                f"{where}: {what} must be a JSON object, got {_json_type(item)}",
                payload=payload,
                field=name,
            )
        self._item: Mapping[str, Any] = item

    @classmethod
    def for_item(
        cls,
        item: object,
        *,
        payload: str,
        index: int | None = None,
        source: str = "",
        market_field: str = "market",
        keys: Mapping[str, str] | None = None,
    ) -> FieldReader:
        """A reader for one payload item; its errors name ``source``, ``index`` and the market."""
        where = f"{source} {payload}" if source else payload
        if index is not None:
            where += f"[{index}]"
        if isinstance(item, Mapping):
            market = item.get(keys.get(market_field, market_field) if keys else market_field)
            if isinstance(market, str):
                where += f" ({market})"
        return cls(item, payload=payload, where=where, keys=keys)

    # -- errors ---------------------------------------------------------------------------

    def error(self, name: str, problem: str) -> FormatError:
        """A ``FormatError`` saying that field ``name`` ``problem`` (e.g. "is missing")."""
        key = self._keys.get(name, name)
        field = self._prefix + name
        simple = f" (key {key!r})" if key != name else ""
        return FormatError(
            f"{self.where}: field {field!r}{simple} {problem}", payload=self.payload, field=field
        )

    def _raw(self, name: str, required: bool) -> Any:
        value = self._item.get(self._keys.get(name, name), _MISSING)
        if value is _MISSING or value is None:
            if required:
                raise self.error(name, "is missing" if value is _MISSING else "is null")
            return None
        return value

    def _wrong(self, name: str, expected: str, value: object) -> FormatError:
        return self.error(name, f"must be {expected}, got {_json_type(value)} {_short(value)}")

    # -- scalars --------------------------------------------------------------------------

    def text(self, name: str) -> str:
        """A required JSON string."""
        value = self._raw(name, True)
        if not isinstance(value, str):
            raise self._wrong(name, "a string", value)
        return value

    def optional_text(self, name: str) -> str | None:
        """A JSON string, or ``None`` if absent or null."""
        value = self._raw(name, False)
        if value is not None and not isinstance(value, str):
            raise self._wrong(name, "a string", value)
        return value

    def number(self, name: str) -> float:
        """A required JSON number (int or float, never a bool), as ``float``."""
        value = self._raw(name, True)
        if not _is_number(value):
            raise self._wrong(name, "a number", value)
        return float(value)

    def optional_number(self, name: str) -> float | None:
        """A JSON number as ``float``, or ``None`` if absent or null."""
        value = self._raw(name, False)
        if value is None:
            return None
        if not _is_number(value):
            raise self._wrong(name, "a number", value)
        return float(value)

    def integer(self, name: str) -> int:
        """A required JSON integer (not a float: ids must not lose precision)."""
        value = self._raw(name, True)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._wrong(name, "an integer", value)
        return value

    def boolean(self, name: str) -> bool:
        """A required JSON bool."""
        value = self._raw(name, True)
        if not isinstance(value, bool):
            raise self._wrong(name, "a bool", value)
        return value

    def millis(self, name: str) -> datetime:
        """Epoch milliseconds (a JSON number) as an aware UTC ``datetime``."""
        value = self._raw(name, True)
        if not _is_number(value):
            raise self._wrong(name, "epoch milliseconds", value)
        try:
            return datetime.fromtimestamp(value / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            raise self.error(name, f"is out of range: {value!r}") from None

    def optional_date(self, name: str) -> date | None:
        """A ``yyyy-MM-dd`` string as ``date``, or ``None`` if absent or null."""
        value = self._raw(name, False)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._wrong(name, "a 'yyyy-MM-dd' string", value)
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise self.error(name, f"is not a 'yyyy-MM-dd' date: {value!r}") from None

    def utc_datetime(self, name: str) -> datetime:
        """An ISO date-time as an aware UTC ``datetime``; no zone suffix means UTC."""
        value = self._raw(name, True)
        if not isinstance(value, str):
            raise self._wrong(name, "a 'yyyy-MM-ddTHH:mm:ss' string", value)
        try:
            return naive_utc(value)
        except ValueError:
            raise self.error(name, f"is not a 'yyyy-MM-ddTHH:mm:ss' time: {value!r}") from None

    def decimal(self, name: str) -> Decimal:
        """A number sent as a JSON string (or number) as an exact ``Decimal``."""
        return self._to_decimal(name, self._raw(name, True))

    def decimals(self, name: str) -> tuple[Decimal, ...]:
        """A JSON array of numeric strings as ``Decimal``s; absent or null is empty."""
        values = self._raw(name, False)
        if values is None:
            return ()
        if not isinstance(values, list):
            raise self._wrong(name, "an array", values)
        return tuple(self._to_decimal(f"{name}[{i}]", v) for i, v in enumerate(values))

    def _to_decimal(self, name: str, value: object) -> Decimal:
        if not isinstance(value, str) and not _is_number(value):
            raise self._wrong(name, "a numeric string", value)
        try:
            result = Decimal(str(value))
        except InvalidOperation:
            raise self.error(name, f"is not a number: {value!r}") from None
        if not result.is_finite():
            raise self.error(name, f"is not a finite number: {value!r}")
        return result

    def choice(self, name: str, table: Mapping[str, _T]) -> _T:
        """A JSON string that must be one of ``table``'s keys; returns its value."""
        value = self.text(name)
        try:
            return table[value]
        except KeyError:
            raise self.error(name, f"must be one of {sorted(table)}, got {value!r}") from None

    def optional_choice(self, name: str, table: Mapping[str, _T]) -> _T | None:
        """Like ``choice``, but ``None`` if absent or null."""
        if self._raw(name, False) is None:
            return None
        return self.choice(name, table)

    # -- nested ---------------------------------------------------------------------------

    def has(self, name: str) -> bool:
        """Whether field ``name`` is present and not null."""
        return self._raw(name, False) is not None

    def child(self, name: str, keys: Mapping[str, str] | None = None) -> FieldReader | None:
        """A reader for the JSON object in field ``name``, or ``None`` if absent or null."""
        value = self._raw(name, False)
        if value is None:
            return None
        return self._nested(value, self._prefix + name + ".", keys)

    def children(self, name: str, keys: Mapping[str, str] | None = None) -> list[FieldReader]:
        """Readers for each JSON object in the required array in field ``name``."""
        values = self._raw(name, True)
        if not isinstance(values, list):
            raise self._wrong(name, "an array", values)
        return [
            self._nested(value, f"{self._prefix}{name}[{i}].", keys)
            for i, value in enumerate(values)
        ]

    def _nested(self, value: object, prefix: str, keys: Mapping[str, str] | None) -> FieldReader:
        return FieldReader(value, payload=self.payload, where=self.where, keys=keys, prefix=prefix)

    def items(self) -> list[tuple[str, Any]]:
        """The raw key/value pairs (for open-ended objects such as ``caution``)."""
        return list(self._item.items())


def naive_utc(text: str) -> datetime:
    """Parse an ISO date-time; without a zone it is UTC (Upbit's ``candle_date_time_utc``)."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_JSON_TYPES: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (type(None), "null"),
    (bool, "bool"),
    ((int, float), "number"),
    (str, "string"),
    ((list, tuple), "array"),
    (Mapping, "object"),
)


def _json_type(value: object) -> str:
    """The JSON name of ``value``'s type, for error messages."""
    for python_type, name in _JSON_TYPES:
        if isinstance(value, python_type):
            return name
    return type(value).__name__


def _short(value: object) -> str:
    text = _SHORT_REPR.repr(value) if isinstance(value, list | tuple | dict) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
