"""From frames to canonical items: decode, normalise, de-duplicate, fill gaps, cache, hand off.

:class:`FrameIngest` is what the receive thread calls for every data frame. It
decodes with orjson (bytes or str, one object or a JSON list), normalises with
:func:`quotation.parsing.parse_ws_message` (DEFAULT and SIMPLE keys), drops
trades already seen (by ``sequential_id``), writes the
:class:`~quotation.ws_cache.StreamCache` and offers each item to the bounded
:class:`~quotation.ws_delivery.BatchDispatcher`.

* ``{"status":"UP"}`` is a keepalive answer, not data (``on_keepalive_answer``).
* An error frame raises :class:`~quotation.errors.SubscriptionError` (``code``).
* Anything malformed is counted and skipped.
* After a reconnect (:meth:`expect_gaps`), the first new trade of each market
  triggers a REST gap fill (:mod:`quotation.ws_gapfill`) *before* that trade is
  delivered, so consumers see trades in order; a hole that could not be filled is
  delivered and cached as a :class:`~quotation.models.TradeGap`. The time spent
  in REST is reported through ``on_pause`` (the socket was not read meanwhile).

Used by one thread only (the receive thread); counters are plain ints that other
threads may read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from quotation.clock import Clock
from quotation.errors import FormatError, SubscriptionError
from quotation.models import StreamType, Trade, TradeGap
from quotation.parsing import parse_ws_message
from quotation.ws_cache import StreamCache, StreamItem
from quotation.ws_dedup import TradeDeduper
from quotation.ws_delivery import BatchDispatcher
from quotation.ws_gapfill import TradeSource, fill_trade_gap

__all__ = ["FrameIngest"]

logger = logging.getLogger(__name__)


def _ignore() -> None:
    return None


class FrameIngest:
    """Turns received frames into canonical items in the cache and the delivery buffer."""

    def __init__(
        self,
        *,
        cache: StreamCache,
        dispatcher: BatchDispatcher[StreamItem],
        clock: Clock,
        trade_source: TradeSource | None = None,
        dedup_capacity: int = 20_000,
        gap_fill_page_size: int = 200,
        gap_fill_max_pages: int = 10,
        on_keepalive_answer: Callable[[], None] = _ignore,
        on_change: Callable[[], None] = _ignore,
        on_pause: Callable[[float], None] | None = None,
    ) -> None:
        self._cache = cache
        self._dispatcher = dispatcher
        self._clock = clock
        self._trade_source = trade_source
        self._dedup = TradeDeduper(dedup_capacity)
        self._page_size = gap_fill_page_size
        self._max_pages = gap_fill_max_pages
        self._on_keepalive_answer = on_keepalive_answer
        self._on_change = on_change
        self._on_pause = on_pause
        self._needs_fill: dict[str, Trade] = {}
        self.messages = 0
        """Data messages turned into canonical objects and delivered."""
        self.ignored = 0
        """``{"status":"UP"}`` and ``LIST_SUBSCRIPTIONS`` answers."""
        self.malformed = 0
        self.duplicates = 0
        self.gaps = 0
        self.gap_filled = 0
        self.last_error: str | None = None

    def expect_gaps(self, markets: Iterable[str]) -> None:
        """A reconnect happened: fill each market's hole at its first new trade."""
        self._needs_fill = {
            market: last for market in markets if (last := self._dedup.last(market)) is not None
        }

    def ingest(self, data: bytes | str, now: float) -> bool:
        """Take one frame received at ``now``; True if it carried data."""
        try:
            decoded = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._count_malformed("not JSON")
            return False
        if type(decoded) is dict:
            return self._handle(decoded, now)
        if type(decoded) is list:
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
        dedup = self._dedup
        if dedup.seen(market, trade.sequential_id):
            self.duplicates += 1
            if trade.stream_type is StreamType.SNAPSHOT:
                # The newest trade at subscribe time is one we had: nothing was missed.
                self._needs_fill.pop(market, None)
            return True
        if self._needs_fill:
            last_known = self._needs_fill.pop(market, None)
            if last_known is not None:
                self._fill_gap(last_known, trade, now)
        dedup.add(trade)
        self.messages += 1
        self._cache.put(trade, now)
        self._dispatcher.offer(trade)
        return True

    def _fill_gap(self, last_known: Trade, first_new: Trade, now: float) -> None:
        market = first_new.market
        started = self._clock.monotonic()
        result = fill_trade_gap(
            self._trade_source,
            last_known=last_known,
            first_new=first_new,
            is_known=lambda sid: self._dedup.seen(market, sid),
            page_size=self._page_size,
            max_pages=self._max_pages,
        )
        for trade in result.trades:
            if self._dedup.add(trade):
                self.gap_filled += 1
                self._cache.put(trade, now)
                self._dispatcher.offer(trade)
        if result.gap is not None:
            self._mark_gap(result.gap, now)
        if self._on_pause is not None:
            self._on_pause(self._clock.monotonic() - started)
        self._on_change()

    def _mark_gap(self, gap: TradeGap, now: float) -> None:
        self.gaps += 1
        logger.warning(
            "trade gap on %s after #%d: %s", gap.market, gap.after_sequential_id, gap.reason
        )
        self._cache.put(gap, now)
        self._dispatcher.offer(gap)
