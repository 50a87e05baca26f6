"""Gap filling after a reconnect: REST pages by cursor, oldest first, or a marked hole."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from quotation.errors import TransportError
from quotation.models import Change, Side, Trade
from quotation.ws_gapfill import fill_trade_gap

pytestmark = pytest.mark.timeout(5)

T0 = datetime(2026, 3, 11, 14, 40, tzinfo=UTC)


def trade(sid: int) -> Trade:
    return Trade(
        market="KRW-BTC",
        sequential_id=sid,
        timestamp=T0 + timedelta(milliseconds=sid),
        trade_price=100.0,
        trade_volume=1.0,
        ask_bid=Side.ASK,
        prev_closing_price=99.0,
        change_price=1.0,
        signed_change_price=1.0,
        change=Change.RISE,
    )


class FakeTrades:
    """REST trades/ticks over a fixed log: newest first, ``count`` trades before ``cursor``."""

    def __init__(self, sids: range, fail_after: int | None = None) -> None:
        self.log = [trade(s) for s in sids]
        self.calls: list[tuple[int, int | None]] = []
        self.fail_after = fail_after

    def get_trades(self, market: str, *, count: int = 1, cursor: int | None = None) -> list[Trade]:
        self.calls.append((count, cursor))
        if self.fail_after is not None and len(self.calls) > self.fail_after:
            raise TransportError("connection refused")
        older = [t for t in self.log if cursor is None or t.sequential_id < cursor]
        return older[::-1][:count]


def test_missed_trades_are_fetched_across_pages_oldest_first() -> None:
    source = FakeTrades(range(1, 101))
    result = fill_trade_gap(
        source,
        last_known=trade(40),
        first_new=trade(80),
        is_known=lambda sid: sid <= 40,
        page_size=10,
    )
    assert [t.sequential_id for t in result.trades] == list(range(41, 80))
    assert result.gap is None
    assert source.calls[0] == (10, 80)


def test_trades_already_seen_are_not_returned_again() -> None:
    source = FakeTrades(range(1, 101))
    seen = {45, 46, 47}
    result = fill_trade_gap(
        source,
        last_known=trade(40),
        first_new=trade(50),
        is_known=lambda sid: sid <= 40 or sid in seen,
        page_size=500,
    )
    assert [t.sequential_id for t in result.trades] == [41, 42, 43, 44, 48, 49]


def test_a_rest_failure_marks_the_hole_that_remains() -> None:
    source = FakeTrades(range(1, 101), fail_after=1)
    result = fill_trade_gap(
        source,
        last_known=trade(40),
        first_new=trade(80),
        is_known=lambda sid: sid <= 40,
        page_size=10,
    )
    assert [t.sequential_id for t in result.trades] == list(range(70, 80))
    gap = result.gap
    assert gap is not None
    assert (gap.after_sequential_id, gap.before_sequential_id) == (40, 70)
    assert gap.after == trade(40).timestamp and gap.before == trade(70).timestamp
    assert "TransportError" in gap.reason


def test_the_page_limit_marks_the_hole_instead_of_paging_forever() -> None:
    source = FakeTrades(range(1, 1001))
    result = fill_trade_gap(
        source,
        last_known=trade(1),
        first_new=trade(1000),
        is_known=lambda sid: sid <= 1,
        page_size=10,
        max_pages=3,
    )
    assert len(source.calls) == 3
    assert result.gap is not None
    assert result.gap.before_sequential_id == 970


def test_without_a_trade_source_the_hole_is_marked() -> None:
    result = fill_trade_gap(
        None, last_known=trade(1), first_new=trade(9), is_known=lambda sid: False
    )
    assert result.trades == ()
    assert result.gap is not None
    assert (result.gap.after_sequential_id, result.gap.before_sequential_id) == (1, 9)


def test_history_that_ends_before_the_last_known_trade_is_a_hole() -> None:
    source = FakeTrades(range(50, 101))
    result = fill_trade_gap(
        source,
        last_known=trade(40),
        first_new=trade(60),
        is_known=lambda sid: sid <= 40,
        page_size=100,
    )
    assert [t.sequential_id for t in result.trades] == list(range(50, 60))
    assert result.gap is not None
    assert result.gap.before_sequential_id == 50
