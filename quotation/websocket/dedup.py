"""Trade de-duplication by ``sequential_id``, in bounded memory.

Upbit's ``sequential_id`` is unique per market but not ordered, so duplicates
(a reconnect's snapshot, a REST gap fill overlapping the stream) are found by
membership, not by comparison. :class:`TradeDeduper` remembers the last
``capacity`` ids per market (oldest forgotten first). Where a gap fill after a
reconnect starts (the newest trade per market) is the ingest's business
(:class:`~quotation.websocket.ingest.FrameIngest`), not this module's.

Used from one thread only (the receive thread); not locked.
"""

from __future__ import annotations

from collections import deque

from quotation.models import Trade
from quotation.values import check

__all__ = ["TradeDeduper"]


class TradeDeduper:
    """Remembers recent trade ids per market; :meth:`add` says whether a trade is new."""

    __slots__ = ("_capacity", "_ids", "_order")

    def __init__(self, capacity: int = 20_000) -> None:
        check("capacity", capacity, at_least=1, integer=True)
        self._capacity = capacity
        self._ids: dict[str, set[int]] = {}
        self._order: dict[str, deque[int]] = {}

    def seen(self, market: str, sequential_id: int) -> bool:
        """True if this trade id was already accepted (and is still remembered)."""
        ids = self._ids.get(market)
        return ids is not None and sequential_id in ids

    def add(self, trade: Trade) -> bool:
        """Accept ``trade`` if new (True); False for a duplicate."""
        market = trade.market
        ids = self._ids.get(market)
        if ids is None:
            ids = self._ids[market] = set()
            self._order[market] = deque()
        sid = trade.sequential_id
        if sid in ids:
            return False
        ids.add(sid)
        order = self._order[market]
        order.append(sid)
        if len(order) > self._capacity:
            ids.discard(order.popleft())
        return True

    def __len__(self) -> int:
        return sum(len(ids) for ids in self._ids.values())
