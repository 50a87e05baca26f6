"""The ``normalize``/``ws_message`` fault points for actors that already hold canonical models.

The fallbacks get canonical models from the quotation clients (REST answers and the
WebSocket stream are parsed and checked there). An injected ``corrupt`` needs a decoded
payload to spoil, so at these points a model is turned into its payload — an object of its
fields, :func:`as_payload` — only when a fault fires, and :func:`revalidate` builds the models
again from what the fault left: a spoiled payload (a dropped field, a cut list) raises
:class:`~quotation.errors.FormatError` naming the missing field, exactly as a malformed
answer from the exchange would. Without a fault nothing is copied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any, TypeVar

from actors.faults import ActorName, FaultBoard, FaultPoint
from quotation.errors import FormatError

__all__ = ["as_payload", "checked", "revalidate"]

M = TypeVar("M")


def as_payload(item: object) -> dict[str, Any]:
    """A model's fields as a decoded object (shallow: nested models stay models)."""
    return {f.name: getattr(item, f.name) for f in fields(item)}  # type: ignore[arg-type]


def revalidate(payload: object, kinds: Sequence[type[M]]) -> list[M]:
    """Models of ``kinds`` (one per item) built again from ``payload``; ``FormatError`` if
    it is not a list of one complete object per expected item."""
    if not isinstance(payload, list) or len(payload) != len(kinds):
        raise FormatError(
            f"expected {len(kinds)} items, got {type(payload).__name__}"
            + (f" of {len(payload)}" if isinstance(payload, list) else ""),
            payload="normalized", field=None)
    return [_one(raw, kind) for raw, kind in zip(payload, kinds, strict=True)]


def checked(faults: FaultBoard, actor: ActorName, point: FaultPoint, items: Sequence[M]
            ) -> list[M]:
    """``items`` after the fault at ``point`` (if one fires): spoiled ones raise FormatError.

    Raise, crash, hang, delay and memory growth act as at any fault point.
    """
    action = faults.check(actor, point)
    if action is None:
        return list(items)
    spoiled = faults.apply(action, [as_payload(item) for item in items])
    return revalidate(spoiled, [type(item) for item in items])


def _one(raw: object, kind: type[M]) -> M:
    name = kind.__name__
    if not isinstance(raw, Mapping):
        raise FormatError(f"{name}: expected an object, got {type(raw).__name__}",
                          payload=name, field=None)
    for f in fields(kind):  # type: ignore[arg-type]
        if f.name not in raw:
            raise FormatError(f"{name}: missing field {f.name!r}", payload=name, field=f.name)
    return kind(**{f.name: raw[f.name] for f in fields(kind)})  # type: ignore[arg-type]
