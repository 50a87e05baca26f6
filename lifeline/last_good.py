"""The last known good data: every good answer is remembered, to serve (marked stale) at Level 3.

Snapshots (tickers, order books) are kept per kind and market, so any set of remembered
markets can be answered (stamped, like any snapshot answer, by its OLDEST item). Series are
kept per kind, market, interval and ``to``: the newest answer, cut to the ``count``
asked (trades newest first, candles oldest first), stamped as it was when answered. Nothing
is re-stamped: an answer from here carries the exchange time of the data, so its age is true.

A snapshot already kept (the very same item, as when the same fresh cache entry answers
again and again) is not stored again: :meth:`LastKnownGood.keep` checks identity without the
lock, so a cache hit costs one dict lookup per market here.

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

__all__ = ["KIND_NAMES", "LastKnownGood", "kind_of"]


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

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshots: dict[tuple[str, str], MarketData] = {}
        self._series: dict[tuple[object, ...], Reply] = {}

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
                self._series[key] = reply  # the newest, even if shorter

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
