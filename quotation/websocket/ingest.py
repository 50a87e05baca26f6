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
from quotation.websocket.gapfill import unfilled_gap
from quotation.websocket.gapworker import FillOutcome, FillRequest, GapFillWorker

__all__ = ["FrameIngest"]

logger = logging.getLogger(__name__)


def _ignore() -> None:
    return None


def _ignore_flag(pending: bool) -> None:
    return None


_HeldEntry = tuple[Trade | TradeGap, float] | FillRequest
"""A held item with its receive time, or the place where a pending fill's trades go."""


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
        self._outstanding: set[FillRequest] = set()
        self._resolved: dict[FillRequest, FillOutcome] = {}
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
        """Gap fills submitted and not merged yet."""
        return len(self._outstanding)

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
                self._start_fill(last_known, trade, now)
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

    def _start_fill(self, last_known: Trade, first_new: Trade, now: float) -> None:
        """Hand the hole below ``first_new`` to the worker; hold the market's trades meanwhile."""
        request = FillRequest(first_new.market, last_known, first_new)
        filler = self._filler
        if filler is None or not filler.submit(request):
            # Nothing to wait for: mark the hole now, in its place.
            reason = "no REST trade source configured" if filler is None else "gap-fill queue full"
            self._place(first_new.market, unfilled_gap(last_known, first_new, reason), now)
            return
        was_pending = bool(self._outstanding)
        self._outstanding.add(request)
        held = self._held.get(first_new.market)
        if held is None:
            held = self._held[first_new.market] = deque()
            self._held_counts[first_new.market] = 0
        held.append(request)
        if not was_pending:
            self._on_fills_pending(True)
        self._on_change()

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
        """Merge every finished fill (the receive thread calls this when it wakes)."""
        filler = self._filler
        if filler is None or not filler.has_done():
            return
        markets: set[str] = set()
        for outcome in filler.take_done():
            request = outcome.request
            if request in self._outstanding:  # else abandoned: its hole is already marked
                self._resolved[request] = outcome
                markets.add(request.market)
        for market in markets:
            self._release(market, now)
        self._on_change()

    def abandon_fills(self, now: float, reason: str) -> None:
        """Give up every pending fill: mark the holes, deliver what is held (on stop)."""
        self.merge_done(now)
        for market in list(self._held):
            self._release(market, now, abandon=reason)

    def _release(self, market: str, now: float, abandon: str | None = None) -> None:
        """Deliver the market's held entries in order, up to the first fill still pending.

        With ``abandon``, pending fills are not waited for: each becomes a marked hole.
        """
        held = self._held[market]
        while held:
            entry = held[0]
            if isinstance(entry, FillRequest):
                outcome = self._resolved.pop(entry, None)
                if outcome is not None:
                    self._outstanding.discard(entry)
                    self._deliver_fill(outcome, now)
                elif abandon is not None:
                    self._outstanding.discard(entry)
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
        if not self._outstanding:
            self._on_fills_pending(False)

    def _deliver_fill(self, outcome: FillOutcome, now: float) -> None:
        """The hole (if any, it is the oldest part), then the recovered trades, oldest first."""
        self.gap_fills += 1
        self.last_gap_fill_seconds = outcome.seconds
        fill = outcome.fill
        if fill.gap is not None:
            self._mark_gap(fill.gap, now)
        for trade in fill.trades:
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
