"""From frames to canonical items: decode, normalise, de-duplicate, fill gaps, cache, hand off.

:class:`FrameIngest` is what the receive thread calls for every data frame. It
decodes with orjson (bytes or str, one object or a JSON list), normalises with
:func:`quotation.parsing.parse_ws_message` (DEFAULT and SIMPLE keys), drops
trades already seen (by ``sequential_id``), writes the
:class:`~quotation.websocket.cache.StreamCache` and offers each item to the bounded
:class:`~quotation.websocket.delivery.BatchDispatcher`.

* ``{"status":"UP"}`` is a keepalive answer, not data (``on_keepalive_answer``).
* An error frame raises :class:`~quotation.errors.SubscriptionError` (``code``).
* Anything malformed is counted and skipped. A JSON list of more than
  ``max_items_per_frame`` items is rejected whole, as one malformed frame.
* After a reconnect (:meth:`expect_gaps`), the first new trade of each market
  whose realtime trades stayed subscribed starts a REST gap fill on the gap-fill
  worker (:mod:`quotation.websocket.gapworker`), never on the receive thread. While a
  market's fill is pending, its new trades are *held* (de-duplicated, but not yet
  cached or delivered); other markets and other data types flow on. When the
  fill is done, the receive thread merges it at its next wake-up: the hole's
  :class:`~quotation.models.TradeGap` if any, the recovered trades, then the held
  trades, all in trade order, into the cache and the delivery buffer. Several
  reconnects while a fill is pending queue up in order per market.
* Gap fills are rate-limited per market (``min_interval`` seconds on the receive
  thread's clock, :func:`~quotation.websocket.gapfill.may_start_fill`). A hole found
  sooner after the market's last fill started does not start one: it waits, with the
  market's trades held behind it, and later holes join it. Once the interval has passed
  (checked on every frame and wake-up) *one* fill covers the whole waiting range, from
  the first hole's last known trade to the last hole's first new one, and
  :func:`~quotation.websocket.gapfill.share_fill` cuts its result back into each hole's
  place among the held trades. What the fill cannot reach (its page limit) is marked.
* Holding is bounded (``hold_capacity`` trades per market). When the bound is
  hit, every fill still pending for that market is *abandoned*: its whole hole
  is marked with a ``TradeGap`` (counted in ``gaps`` and ``gap_fills_abandoned``),
  the held trades are delivered, and the late REST answer is ignored. Order and
  de-duplication hold either way; only completeness is given up, and marked.
* A gap's lower edge (the market's *anchor*) is the newest trade received on
  the socket while the market's realtime trades were subscribed
  (:meth:`track_trades`). A market that leaves the subscription loses its anchor
  and any gap expected for it; one that joins (again) starts fresh from its first
  trade. So what traded while a market was unsubscribed is never reported or
  fetched as a hole. Trade ids stay remembered across (un)subscriptions: a
  trade already delivered is never delivered again.

Used by one thread only (the receive thread), which is the only writer of the
de-duplicator, the cache and the delivery buffer; counters are plain ints that
other threads may read.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from quotation.errors import FormatError, SubscriptionError
from quotation.models import StreamType, Trade, TradeGap
from quotation.parsing import parse_ws_message
from quotation.websocket.cache import StreamCache, StreamItem
from quotation.websocket.dedup import TradeDeduper
from quotation.websocket.delivery import BatchDispatcher
from quotation.websocket.gapfill import GapFill, may_start_fill, share_fill, unfilled_gap
from quotation.websocket.gapworker import FillRequest, GapFillWorker

__all__ = ["FrameIngest"]

logger = logging.getLogger(__name__)


def _ignore() -> None:
    return None


def _ignore_flag(pending: bool) -> None:
    return None


_HeldEntry = tuple[Trade | TradeGap, float] | FillRequest
"""A held item with its receive time, or a hole: the place where a fill's trades go."""


class FrameIngest:
    """Turns received frames into canonical items in the cache and the delivery buffer."""

    def __init__(
        self,
        *,
        cache: StreamCache,
        dispatcher: BatchDispatcher[StreamItem],
        gap_filler: GapFillWorker | None = None,
        dedup_capacity: int = 20_000,
        hold_capacity: int = 5_000,
        min_fill_interval: float = 0.0,
        max_items_per_frame: int = 5_000,
        on_keepalive_answer: Callable[[], None] = _ignore,
        on_change: Callable[[], None] = _ignore,
        on_fills_pending: Callable[[bool], None] = _ignore_flag,
    ) -> None:
        self._cache = cache
        self._dispatcher = dispatcher
        self._filler = gap_filler
        self._dedup = TradeDeduper(dedup_capacity)
        self._hold_capacity = hold_capacity
        self._min_fill_interval = min_fill_interval
        self._max_items = max_items_per_frame
        self._on_keepalive_answer = on_keepalive_answer
        self._on_change = on_change
        self._on_fills_pending = on_fills_pending
        self._needs_fill: dict[str, Trade] = {}
        self._tracked: frozenset[str] = frozenset()
        """Markets whose realtime trades are subscribed (their holes are filled)."""
        self._anchors: dict[str, Trade] = {}
        """Per tracked market: the newest trade received on the socket since it was tracked."""
        self._held: dict[str, deque[_HeldEntry]] = {}
        """Per market with a fill pending: held trades and fill placeholders, in order."""
        self._held_counts: dict[str, int] = {}
        self._waiting: dict[str, list[FillRequest]] = {}
        """Per market: holes found within ``min_fill_interval`` of its last fill, in order."""
        self._fill_started: dict[str, float] = {}
        """Per market: when its last REST fill was submitted (receive thread's clock)."""
        self._outstanding: dict[FillRequest, tuple[FillRequest, ...]] = {}
        """Fills submitted to the worker (one range each) and the holes they cover."""
        self._fill_of: dict[FillRequest, FillRequest] = {}
        """Each hole in an outstanding fill, and that fill."""
        self._shares: dict[FillRequest, GapFill] = {}
        """Holes whose part of a fill is known, waiting for their turn in the held order."""
        self.messages = 0
        """Data messages turned into canonical objects and delivered."""
        self.ignored = 0
        """``{"status":"UP"}`` and ``LIST_SUBSCRIPTIONS`` answers."""
        self.malformed = 0
        self.duplicates = 0
        self.gaps = 0
        self.gap_filled = 0
        self.gap_fills = 0
        """Gap fills merged (whether or not they left a hole)."""
        self.gap_fills_abandoned = 0
        """Gap fills given up because the market's hold buffer filled up (or the client stopped)."""
        self.held_trades = 0
        """Trades currently held behind a pending gap fill."""
        self.last_gap_fill_seconds: float | None = None
        """How long the last merged gap fill spent in REST."""
        self.last_error: str | None = None

    @property
    def gap_fills_pending(self) -> int:
        """Gap fills submitted and not merged yet, and ranges waiting for their interval."""
        return len(self._outstanding) + len(self._waiting)

    def track_trades(self, markets: Iterable[str]) -> None:
        """The markets whose realtime trades are subscribed from now on.

        A market that left forgets its anchor and any gap expected for it (what it
        misses while unsubscribed is not a hole); one that joined starts fresh (its
        anchor is its first trade received from now on). Markets in both keep theirs.
        """
        tracked = frozenset(markets)
        for market in tracked ^ self._tracked:
            self._anchors.pop(market, None)
            self._needs_fill.pop(market, None)
        self._tracked = tracked

    def expect_gaps(self) -> None:
        """A reconnect happened: fill each market's hole at its first new trade.

        Only markets with an anchor (tracked and seen since) can have a hole; the
        markets the reconnect's request drops are forgotten when it is sent
        (:meth:`track_trades`).
        """
        self._needs_fill = dict(self._anchors)

    def ingest(self, data: bytes | str, now: float) -> bool:
        """Take one frame received at ``now``; True if it carried data."""
        if self._held:
            self.merge_done(now)
        try:
            decoded = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._count_malformed("not JSON")
            return False
        if type(decoded) is dict:
            return self._handle(decoded, now)
        if type(decoded) is list:
            if len(decoded) > self._max_items:
                self._count_malformed(
                    f"JSON list of {len(decoded)} items, over {self._max_items} per frame"
                )
                return False
            got = False
            for message in decoded:
                if type(message) is dict:
                    got = self._handle(message, now) or got
                else:
                    self._count_malformed("list item is not an object")
            return got
        self._count_malformed("not an object or list")
        return False

    def _handle(self, message: dict[str, Any], now: float) -> bool:
        try:
            item = parse_ws_message(message)
        except FormatError as exc:
            return self._handle_other(message, exc)
        if type(item) is Trade:
            return self._handle_trade(item, now)
        self.messages += 1
        self._cache.put(item, now)
        self._dispatcher.offer(item)
        return True

    def _handle_other(self, message: dict[str, Any], exc: FormatError) -> bool:
        if "status" in message:
            # {"status":"UP"}: the answer to a text PING.
            self.ignored += 1
            self._on_keepalive_answer()
            return False
        error = message.get("error")
        if isinstance(error, dict):
            code = str(error.get("name", "UNKNOWN"))
            raise SubscriptionError(str(error.get("message", "")), code=code)
        if "method" in message or "mthd" in message:
            self.ignored += 1  # a LIST_SUBSCRIPTIONS answer
            return False
        self._count_malformed(f"{exc.payload}.{exc.field}: {exc}")
        return False

    def _count_malformed(self, why: str) -> None:
        self.malformed += 1
        self.last_error = f"malformed frame: {why}"
        logger.debug("skipped a malformed WebSocket frame: %s", why)
        self._on_change()

    def _handle_trade(self, trade: Trade, now: float) -> bool:
        market = trade.market
        if market in self._tracked:
            anchor = self._anchors.get(market)
            if anchor is None or trade.timestamp >= anchor.timestamp:
                self._anchors[market] = trade
        if not self._dedup.add(trade):
            self.duplicates += 1
            if trade.stream_type is StreamType.SNAPSHOT:
                # The newest trade at subscribe time is one we had: nothing was missed.
                self._needs_fill.pop(market, None)
            return True
        if self._needs_fill:
            last_known = self._needs_fill.pop(market, None)
            if last_known is not None:
                self._open_hole(last_known, trade, now)
        self.messages += 1
        if self._held:
            held = self._held.get(market)
            if held is not None:
                self._hold(held, trade, now)
                return True
        self._cache.put(trade, now)
        self._dispatcher.offer(trade)
        return True

    # -- gap fills ---------------------------------------------------------------------------

    def _open_hole(self, last_known: Trade, first_new: Trade, now: float) -> None:
        """A hole below ``first_new``: hold the market's trades, fill it now or when allowed."""
        market = first_new.market
        if self._filler is None:
            # Nothing to wait for: mark the hole now, in its place.
            reason = "no REST trade source configured"
            self._place(market, unfilled_gap(last_known, first_new, reason), now)
            return
        was_pending = self.gap_fills_pending > 0
        hole = FillRequest(market, last_known, first_new)
        held = self._held.get(market)
        if held is None:
            held = self._held[market] = deque()
            self._held_counts[market] = 0
        held.append(hole)
        self._waiting.setdefault(market, []).append(hole)
        self._start_due(market, now)
        if not was_pending and self.gap_fills_pending > 0:
            self._on_fills_pending(True)
        self._on_change()

    def _start_due(self, market: str, now: float) -> None:
        """Submit the market's waiting range as one fill if its interval has passed."""
        if not may_start_fill(now, self._fill_started.get(market), self._min_fill_interval):
            return
        holes = tuple(self._waiting.pop(market))
        fill = FillRequest(market, holes[0].last_known, holes[-1].first_new)
        filler = self._filler
        if filler is not None and filler.submit(fill):
            self._fill_started[market] = now
            self._outstanding[fill] = holes
            for hole in holes:
                self._fill_of[hole] = fill
            return
        for hole in holes:  # the worker's queue is full: mark each hole in its place
            gap = unfilled_gap(hole.last_known, hole.first_new, "gap-fill queue full")
            self._shares[hole] = GapFill((), gap)
        self._release(market, now)

    def _place(self, market: str, item: Trade | TradeGap, now: float) -> None:
        """Deliver ``item`` now, or behind what the market holds."""
        held = self._held.get(market)
        if held is not None:
            held.append((item, now))
        elif isinstance(item, TradeGap):
            self._mark_gap(item, now)
        else:
            self._cache.put(item, now)
            self._dispatcher.offer(item)

    def _hold(self, held: deque[_HeldEntry], trade: Trade, now: float) -> None:
        market = trade.market
        count = self._held_counts[market]
        if count >= self._hold_capacity:
            self._release(market, now, abandon=f"gap fill still running after {count} trades held")
            self._cache.put(trade, now)
            self._dispatcher.offer(trade)
            return
        held.append((trade, now))
        self._held_counts[market] = count + 1
        self.held_trades += 1

    def merge_done(self, now: float) -> None:
        """Start the waiting fills now due, merge every finished one (on every wake-up)."""
        if self._waiting:
            for market in list(self._waiting):
                self._start_due(market, now)
        self._merge_finished(now)

    def _merge_finished(self, now: float) -> None:
        filler = self._filler
        if filler is None or not filler.has_done():
            return
        markets: set[str] = set()
        for outcome in filler.take_done():
            holes = self._outstanding.pop(outcome.request, None)
            if holes is None:  # abandoned: its holes are already marked
                continue
            self.gap_fills += 1
            self.last_gap_fill_seconds = outcome.seconds
            shares = share_fill(outcome.fill, [(h.last_known, h.first_new) for h in holes])
            for hole, share in zip(holes, shares, strict=True):
                del self._fill_of[hole]
                self._shares[hole] = share
            markets.add(outcome.request.market)
        for market in markets:
            self._release(market, now)
        if not self.gap_fills_pending:
            self._on_fills_pending(False)
        self._on_change()

    def abandon_fills(self, now: float, reason: str) -> None:
        """Give up every pending fill: mark the holes, deliver what is held (on stop)."""
        self._merge_finished(now)
        for market in list(self._held):
            self._release(market, now, abandon=reason)

    def _release(self, market: str, now: float, abandon: str | None = None) -> None:
        """Deliver the market's held entries in order, up to the first hole still unfilled.

        With ``abandon``, unfilled holes are not waited for: each becomes a marked hole,
        and the fills they wait for (submitted or not) are given up and counted.
        """
        held = self._held[market]
        if abandon is not None and self._waiting.pop(market, None) is not None:
            self.gap_fills_abandoned += 1
        while held:
            entry = held[0]
            if isinstance(entry, FillRequest):
                share = self._shares.pop(entry, None)
                if share is not None:
                    self._deliver_share(share, now)
                elif abandon is not None:
                    fill = self._fill_of.pop(entry, None)
                    if fill is not None and self._outstanding.pop(fill, None) is not None:
                        self.gap_fills_abandoned += 1
                    self._mark_gap(unfilled_gap(entry.last_known, entry.first_new, abandon), now)
                else:
                    return
            else:
                item, received_at = entry
                if isinstance(item, TradeGap):
                    self._mark_gap(item, received_at)
                else:
                    self.held_trades -= 1
                    self._cache.put(item, received_at)
                    self._dispatcher.offer(item)
            held.popleft()
        del self._held[market]
        del self._held_counts[market]
        if not self.gap_fills_pending:
            self._on_fills_pending(False)

    def _deliver_share(self, share: GapFill, now: float) -> None:
        """A hole's part of a fill: its gap (if any, the oldest part), then its trades."""
        if share.gap is not None:
            self._mark_gap(share.gap, now)
        for trade in share.trades:
            if self._dedup.add(trade):
                self.gap_filled += 1
                self._cache.put(trade, now)
                self._dispatcher.offer(trade)

    def _mark_gap(self, gap: TradeGap, now: float) -> None:
        self.gaps += 1
        logger.warning(
            "trade gap on %s after #%d: %s", gap.market, gap.after_sequential_id, gap.reason
        )
        self._cache.put(gap, now)
        self._dispatcher.offer(gap)
