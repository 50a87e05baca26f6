"""Last known good data never goes backwards in exchange time, and its series are bounded."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from actors.messages import CandlesRequest, Reply, Source, TickerRequest, TradesRequest
from lifeline.last_good import MAX_PAGES_PER_SERIES, MAX_SERIES, LastKnownGood
from quotation.models import Candle, CandleInterval
from tests.lifeline.test_hot_path import NOON, ticker

pytestmark = pytest.mark.timeout(30)


def test_an_older_snapshot_served_later_does_not_replace_a_newer_one_kept() -> None:
    kept = LastKnownGood()
    new, old = ticker("A-X", NOON + timedelta(seconds=5)), ticker("A-X", NOON)
    kept.keep("ticker", (new,))
    kept.keep("ticker", (old,))  # e.g. an old WebSocket cache entry served after a REST answer
    kept.remember(TickerRequest(("A-X",)), Reply.of([old], Source.REST_FALLBACK))
    assert kept.recall(TickerRequest(("A-X",))) == Reply(
        (new,), Source.LAST_KNOWN_GOOD, new.timestamp.timestamp())


def test_a_snapshot_as_new_as_the_one_kept_replaces_it() -> None:
    kept = LastKnownGood()
    first, same_time = ticker("A-X", NOON, 100.0), ticker("A-X", NOON, 101.0)
    kept.keep("ticker", (first,))
    kept.keep("ticker", (same_time,))
    recalled = kept.recall(TickerRequest(("A-X",)))
    assert recalled is not None and recalled.data == (same_time,)


def _candles(market: str, interval: CandleInterval, to: datetime | None,
             count: int = 2) -> tuple[CandlesRequest, Reply]:
    end = to if to is not None else NOON
    data = [Candle(market, interval, end - timedelta(minutes=count - n), 1.0, 1.0, 1.0, 1.0,
                   1.0, 1.0, end - timedelta(minutes=count - n) + timedelta(seconds=30))
            for n in range(count)]
    return CandlesRequest(market, interval, count, to), Reply.of(data, Source.REST_FALLBACK)


def test_candle_pages_are_bounded_per_market_and_interval_oldest_written_evicted_first() -> None:
    """Fails before: every page (one per ``to``) was kept for ever."""
    kept = LastKnownGood()
    live_request, live = _candles("A-X", CandleInterval.MINUTE_1, None)
    kept.remember(live_request, live)  # the live page: written first, evicted last
    pages = [_candles("A-X", CandleInterval.MINUTE_1, NOON - timedelta(hours=n + 1))
             for n in range(MAX_PAGES_PER_SERIES + 5)]
    for request, reply in pages:
        kept.remember(request, reply)
    other_request, other = _candles("A-X", CandleInterval.MINUTE_5, None)
    kept.remember(other_request, other)  # another interval: a bound of its own
    assert MAX_PAGES_PER_SERIES == 16
    recalled = [kept.recall(request) is not None for request, _ in pages]
    assert recalled == [False] * 6 + [True] * (MAX_PAGES_PER_SERIES - 1)  # 15 + the live one
    assert kept.recall(live_request) is not None
    assert kept.recall(other_request) is not None
    assert kept.series_kept == MAX_PAGES_PER_SERIES + 1
    assert kept.evicted == 6
    assert len([name for name in kept.ages(NOON.timestamp()) if "candles/A-X/1m" in name]) \
        == MAX_PAGES_PER_SERIES


def test_series_are_bounded_in_all_and_a_page_written_again_is_the_newest() -> None:
    kept = LastKnownGood(max_pages=4, max_series=6)
    first_request, first = _candles("A-0", CandleInterval.MINUTE_1, None)
    kept.remember(first_request, first)
    for n in range(1, 6):
        kept.remember(*_candles(f"A-{n}", CandleInterval.MINUTE_1, None))
    kept.remember(first_request, first)  # written again: now the newest of the six
    kept.remember(TradesRequest("A-9", 1), Reply.of([], Source.REST_FALLBACK))  # empty: none
    kept.remember(*_candles("A-6", CandleInterval.MINUTE_1, None))  # 7th: evicts A-1's
    assert kept.series_kept == MAX_KEPT_SMALL
    assert kept.recall(first_request) is not None
    assert kept.recall(_candles("A-1", CandleInterval.MINUTE_1, None)[0]) is None
    assert kept.recall(_candles("A-2", CandleInterval.MINUTE_1, None)[0]) is not None
    assert kept.evicted == 1
    assert MAX_SERIES == 512


MAX_KEPT_SMALL = 6


def test_impossible_bounds_are_refused_naming_them() -> None:
    with pytest.raises(ValueError, match="max_pages"):
        LastKnownGood(max_pages=1)
    with pytest.raises(ValueError, match="max_series"):
        LastKnownGood(max_series=0)
