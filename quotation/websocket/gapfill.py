"""Filling the trades a reconnect missed from REST ``trades/ticks``, or marking the hole.

After a reconnect, the first new trade of a market on the socket is the upper
edge of a possible hole; the newest trade seen before the disconnect is its
lower edge. :func:`fill_trade_gap` pages backwards through REST with
``cursor`` (``trades/ticks`` returns the ``count`` trades before the cursor,
newest first) from the upper edge until it reaches trades older than the lower
edge, and returns the unseen ones oldest first. When it cannot get there (REST
failed, the page limit was hit, or the history ended), it returns what it got
and a :class:`~quotation.models.TradeGap` marking what may still be missing.

Several holes of one market may be filled by one REST fill over their whole range (the
gap-fill rate limit, ``WebSocketConfig.gap_fill_min_interval``): :func:`share_fill` cuts
that one result back into one :class:`GapFill` per hole, in the server's order, and
:func:`may_start_fill` is the rate rule itself.

The REST client is injected as a :class:`TradeSource` (``RestClient`` fits).
:func:`fill_trade_gap` blocks for as long as REST takes (the process-wide rate
limiter, a 418 ban, a slow server): it runs on the gap-fill worker thread
(:mod:`quotation.websocket.gapworker`), never on the socket's receive thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from quotation.errors import QuotationError
from quotation.models import Trade, TradeGap

__all__ = [
    "GapFill",
    "TradeSource",
    "fill_trade_gap",
    "may_start_fill",
    "share_fill",
    "unfilled_gap",
]

logger = logging.getLogger(__name__)


class TradeSource(Protocol):
    """Where missed trades come from: REST ``GET /v1/trades/ticks`` (newest first)."""

    def get_trades(
        self, market: str, *, count: int = 1, cursor: int | None = None
    ) -> list[Trade]: ...


@dataclass(frozen=True, slots=True)
class GapFill:
    """The result of one gap fill: the recovered trades (oldest first) and any hole left."""

    trades: tuple[Trade, ...]
    gap: TradeGap | None


def fill_trade_gap(
    source: TradeSource | None,
    *,
    last_known: Trade,
    first_new: Trade,
    is_known: Callable[[int], bool],
    page_size: int = 200,
    max_pages: int = 10,
    abandoned: Callable[[], bool] | None = None,
) -> GapFill:
    """Fetch the trades between ``last_known`` and ``first_new`` that ``is_known`` lacks.

    ``first_new`` itself is not returned (the caller delivers it). Never raises
    for REST trouble: that becomes the gap's ``reason``. ``abandoned`` is asked
    before every page; once it says True the fill stops and marks what is left.
    """
    scan = _Scan(last_known, first_new, is_known)
    if source is None:
        return scan.result("no REST trade source configured")
    reason = f"more than {max_pages} pages of {page_size} trades missed"
    cursor = first_new.sequential_id
    for _ in range(max_pages):
        if abandoned is not None and abandoned():
            reason = "gap fill abandoned (client stopping)"
            break
        try:
            page = source.get_trades(first_new.market, count=page_size, cursor=cursor)
        except QuotationError as exc:
            reason = f"REST trades/ticks failed: {type(exc).__name__}: {exc}"
            logger.warning("gap fill for %s stopped: %s", first_new.market, reason)
            break
        if scan.feed(page):
            return scan.result(None)
        if len(page) < page_size:
            if scan.saw_last:
                return scan.result(None)
            reason = "REST history ended before the last trade seen"
            break
        cursor = page[-1].sequential_id
    return scan.result(reason)


def unfilled_gap(last_known: Trade, first_new: Trade, reason: str) -> TradeGap:
    """The hole between ``last_known`` and ``first_new`` (both known, nothing between)."""
    return TradeGap(
        market=first_new.market,
        after=last_known.timestamp,
        before=first_new.timestamp,
        after_sequential_id=last_known.sequential_id,
        before_sequential_id=first_new.sequential_id,
        reason=reason,
    )


def may_start_fill(now: float, last_started: float | None, min_interval: float) -> bool:
    """True if a market whose last REST fill started at ``last_started`` may start one at ``now``.

    At most one fill per ``min_interval`` seconds (0: no limit); ``None``: never filled yet.
    """
    return last_started is None or now - last_started >= min_interval


def share_fill(fill: GapFill, holes: Sequence[tuple[Trade, Trade]]) -> list[GapFill]:
    """Cut one fill over several holes of a market back into one result per hole.

    ``fill`` covers the range from the first hole's last known trade to the last hole's
    first new one: its trades are every trade the server had strictly between them,
    oldest first (the trades received between the holes included), and its ``gap`` the
    oldest part it could not reach. ``holes`` are ``(last_known, first_new)`` pairs in
    order. Each hole gets the fill's trades strictly between its edges, in the fill's
    order; the part of a hole below what the fill reached is its own ``TradeGap`` (with
    the fill's reason), a hole the fill did not reach at all is a ``TradeGap`` whole.
    With one hole the result is ``[fill]``.
    """
    trades = fill.trades
    position = {trade.sequential_id: index for index, trade in enumerate(trades)}
    highest = holes[-1][1].sequential_id
    reason = fill.gap.reason if fill.gap is not None else "gap fill did not reach this hole"
    shares: list[GapFill] = []
    for last_known, first_new in holes:
        sid = first_new.sequential_id
        end = len(trades) if sid == highest else position.get(sid)
        if end is None:  # the fill stopped above this hole
            shares.append(GapFill((), unfilled_gap(last_known, first_new, reason)))
            continue
        start = position.get(last_known.sequential_id)
        if start is not None:  # the lower edge is inside what the fill reached
            shares.append(GapFill(trades[start + 1 : end], None))
        elif fill.gap is None:  # the lower edge is the range's: all of it below ``end``
            shares.append(GapFill(trades[:end], None))
        else:  # the fill reached into this hole but not down to its lower edge
            upper = trades[0] if end > 0 else first_new
            shares.append(GapFill(trades[:end], unfilled_gap(last_known, upper, reason)))
    return shares


class _Scan:
    """Collects unseen trades from newest-first pages until one is older than the last known."""

    def __init__(
        self, last_known: Trade, first_new: Trade, is_known: Callable[[int], bool]
    ) -> None:
        self.last_known = last_known
        self.first_new = first_new
        self.is_known = is_known
        self.found: dict[int, Trade] = {}
        self.saw_last = False

    def feed(self, page: list[Trade]) -> bool:
        """Take one page; True once a trade older than the last known one was seen."""
        last = self.last_known
        for trade in page:
            if trade.timestamp < last.timestamp:
                return True
            sid = trade.sequential_id
            if sid == last.sequential_id:
                self.saw_last = True
            elif sid != self.first_new.sequential_id and not self.is_known(sid):
                self.found[sid] = trade
        return False

    def result(self, reason: str | None) -> GapFill:
        # Pages are newest first; reverse before the stable sort so equal times keep order.
        trades = tuple(sorted(reversed(list(self.found.values())), key=lambda t: t.timestamp))
        if reason is None:
            return GapFill(trades, None)
        upper = trades[0] if trades else self.first_new
        return GapFill(trades, unfilled_gap(self.last_known, upper, reason))
