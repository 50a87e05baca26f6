"""The last known good data: every good answer is remembered, to serve (marked stale) at Level 3.

Snapshots (tickers, order books) are kept per kind and market, so any set of remembered
markets can be answered (stamped, like any snapshot answer, by its OLDEST item). Series are
kept per kind, market, interval and ``to``: the newest answer, cut to the ``count``
asked (trades newest first, candles oldest first), stamped as it was when answered. Nothing
is re-stamped: an answer from here carries the exchange time of the data, so its age is true.

A snapshot already kept (the very same item, as when the same fresh cache entry answers
again and again) is not stored again: :meth:`LastKnownGood.keep` checks identity without the
lock, so a cache hit costs one dict lookup per market here.

Bounded: candle pages (one per distinct ``to``) are kept at most :data:`MAX_PAGES_PER_SERIES`
per market and interval, and series (candle pages and trades) at most :data:`MAX_SERIES` in
all; past either bound the entry kept longest ago (by when it was last written) is evicted —
within one market and interval the live page (``to=None``) only by the total bound, as it is
what a host reads at Level 3. Evictions are counted (:attr:`LastKnownGood.evicted`).
Snapshots need no bound of their own: one per kind and validated market.

It never goes backwards: an item (a series answer) is kept only if its exchange time is not
older than the one held, so an old cache entry served after a newer REST answer leaves the
newer one in place.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from actors.messages import (
    CandlesRequest,
    MarketData,
    OrderbookRequest,
    Reply,
    Request,
    Source,
    TickerRequest,
    TradesRequest,
    produced_at,
)
from quotation.values import check

__all__ = ["KIND_NAMES", "MAX_PAGES_PER_SERIES", "MAX_SERIES", "LastKnownGood", "kind_of"]

MAX_PAGES_PER_SERIES = 16
"""Candle pages (distinct ``to``) kept per market and interval; the oldest written is evicted
first, the live page (``to=None``) last."""
MAX_SERIES = 512
"""Series answers (candle pages and trades) kept in all; the oldest written is evicted. At
most 200 candles a page, a few hundred bytes each: tens of MiB at worst."""


KIND_NAMES: dict[type, str] = {TickerRequest: "ticker", OrderbookRequest: "orderbook",
                              TradesRequest: "trades", CandlesRequest: "candles"}
"""A request's type → its kind (:func:`kind_of` without the call, for hot paths)."""


def kind_of(request: Request) -> str:
    """The request's kind, as hosts and errors name it."""
    kind = KIND_NAMES.get(type(request))
    if kind is not None:
        return kind
    match request:
        case TickerRequest():
            return "ticker"
        case OrderbookRequest():
            return "orderbook"
        case TradesRequest():
            return "trades"
        case CandlesRequest():
            return "candles"
    raise TypeError(f"not a request: {request!r}")  # pragma: no cover


class LastKnownGood:
    """A small thread-safe store of the latest good data per request kind and market."""

    def __init__(self, *, max_pages: int = MAX_PAGES_PER_SERIES,
                 max_series: int = MAX_SERIES) -> None:
        check("max_pages", max_pages, at_least=2, integer=True)
        check("max_series", max_series, at_least=1, integer=True)
        self._max_pages = max_pages
        self._max_series = max_series
        self._lock = threading.Lock()
        self._snapshots: dict[tuple[str, str], MarketData] = {}
        self._series: dict[tuple[object, ...], Reply] = {}  # oldest written first
        self._pages: dict[tuple[object, ...], dict[tuple[object, ...], None]] = {}
        """(market, interval) → its candle pages' keys, oldest written first."""
        self._evicted = 0

    @property
    def evicted(self) -> int:
        """Series answers evicted by the bounds since start."""
        return self._evicted

    @property
    def series_kept(self) -> int:
        """Series answers kept now (at most :data:`MAX_SERIES`)."""
        return len(self._series)

    def remember(self, request: Request, reply: Reply) -> None:
        """Keep what a good ``reply`` to ``request`` carried."""
        if not reply.data:
            return
        if isinstance(request, TickerRequest | OrderbookRequest):
            self.keep(kind_of(request), reply.data)
            return
        key = _series_key(request)
        with self._lock:
            held = self._series.get(key)
            if (held is None or held.produced_at is None or reply.produced_at is None
                    or reply.produced_at >= held.produced_at):
                self._write(key, reply)  # the newest, even if shorter

    def _write(self, key: tuple[object, ...], reply: Reply) -> None:
        """Keep ``reply`` under ``key`` as the newest written, then evict past the bounds
        (under the lock)."""
        series = self._series
        series.pop(key, None)
        series[key] = reply
        if key[0] == "candles":
            pages = self._pages.setdefault(key[1:3], {})
            pages.pop(key, None)
            pages[key] = None
            if len(pages) > self._max_pages:
                oldest = next(page for page in pages if page[3] is not None)
                self._evict(oldest)
        while len(series) > self._max_series:
            self._evict(next(iter(series)))

    def _evict(self, key: tuple[object, ...]) -> None:
        self._series.pop(key, None)
        self._evicted += 1
        if key[0] == "candles":
            pages = self._pages.get(key[1:3])
            if pages is not None:
                pages.pop(key, None)
                if not pages:
                    del self._pages[key[1:3]]

    def keep(self, kind: str, items: Sequence[MarketData]) -> None:
        """Keep snapshot ``items`` (tickers or order books) of ``kind`` served live; an item
        already kept (the same object) is not stored again, nor one older (exchange time)
        than the item held."""
        kept = self._snapshots
        for item in items:
            key = (kind, item.market)
            if kept.get(key) is not item:  # one read under the GIL; writes take the lock
                with self._lock:
                    held = kept.get(key)
                    if held is None or _stamp(item) >= _stamp(held):
                        kept[key] = item

    def recall(self, request: Request) -> Reply | None:
        """The remembered answer to ``request`` (source ``last_known_good``), or None."""
        kind = kind_of(request)
        with self._lock:
            if isinstance(request, TickerRequest | OrderbookRequest):
                items = [self._snapshots.get((kind, market)) for market in request.markets]
                if any(item is None for item in items):
                    return None
                return Reply.of([item for item in items if item is not None],
                                Source.LAST_KNOWN_GOOD)
            kept = self._series.get(_series_key(request))
        if kept is None or len(kept.data) < request.count:
            return None
        data = (kept.data[:request.count] if isinstance(request, TradesRequest)
                else kept.data[-request.count:])
        return Reply(data, Source.LAST_KNOWN_GOOD, kept.produced_at)

    def ages(self, now: float) -> dict[str, float | None]:
        """``kind/market`` → seconds since the exchange produced what is kept (``now``: UTC
        epoch seconds)."""
        with self._lock:
            snapshots = dict(self._snapshots)
            series = dict(self._series)
        ages: dict[str, float | None] = {}
        for (kind, market), item in snapshots.items():
            stamp = Reply.of([item], Source.LAST_KNOWN_GOOD).produced_at
            ages[f"{kind}/{market}"] = None if stamp is None else max(0.0, now - stamp)
        for key, reply in series.items():
            name = "/".join(str(part) for part in key if part is not None)
            stamp = reply.produced_at
            ages[name] = None if stamp is None else max(0.0, now - stamp)
        return ages


def _stamp(item: MarketData) -> float:
    """A snapshot's exchange time (UTC epoch seconds)."""
    stamp = produced_at((item,))
    return float("-inf") if stamp is None else stamp


def _series_key(request: CandlesRequest | TradesRequest) -> tuple[object, ...]:
    if isinstance(request, TradesRequest):
        return ("trades", request.market)
    return ("candles", request.market, request.interval.value, request.to)
