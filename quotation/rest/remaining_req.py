"""Lenient reading of Upbit's ``Remaining-Req`` header.

``Remaining-Req: group=ticker; min=600; sec=9`` says which rate-limit group a
request counted against and how many requests that group has left in the
current second (``min`` is deprecated and fixed; it is read but means nothing).

The header is advice, never a reason to fail a request (pyupbit#133: a strict
regex on it broke every call). So :func:`parse_remaining_req` never raises: a
missing or unreadable header gives ``None``, odd parts are skipped, extra
spaces and case are tolerated, unknown keys are ignored, and a group name that
was never seen before is simply a new group.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

__all__ = ["RemainingReq", "parse_remaining_req"]


@dataclass(frozen=True, slots=True)
class RemainingReq:
    """What one ``Remaining-Req`` header said (``sec``/``min`` ``None`` when unreadable)."""

    group: str
    sec: int | None = None
    min: int | None = None


def _to_int(text: str) -> int | None:
    text = text.strip()
    try:
        value = int(text)
    except ValueError:
        try:
            value = int(float(text))
        except (ValueError, OverflowError):
            return None
    return value if value >= 0 else None


def parse_remaining_req(header: object) -> RemainingReq | None:
    """The group and counts in a header value, or ``None`` if it names no group.

    >>> parse_remaining_req("group=candles; min=600; sec=4")
    RemainingReq(group='candles', sec=4, min=600)
    """
    if not isinstance(header, str):
        return None
    return _parse(header)


@lru_cache(maxsize=1024)
def _parse(header: str) -> RemainingReq | None:
    # Cached: a header repeats (one group, a few ``sec`` values), its answer is frozen, and
    # reading it anew cost 2 µs of every request.
    if not header.strip():
        return None
    fields: dict[str, str] = {}
    for part in header.replace(",", ";").split(";"):
        key, sep, value = part.partition("=")
        if not sep:
            continue
        key = key.strip().lower()
        if key and key not in fields:
            fields[key] = value.strip().strip('"').strip()
    group = fields.get("group", "").lower()
    if not group:
        return None
    sec = _to_int(fields["sec"]) if "sec" in fields else None
    per_min = _to_int(fields["min"]) if "min" in fields else None
    return RemainingReq(group=group, sec=sec, min=per_min)
