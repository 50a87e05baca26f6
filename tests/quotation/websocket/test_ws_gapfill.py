"""Gap filling after a reconnect: REST pages by cursor, oldest first, or a marked hole."""

from __future__ import annotations

from datetime import timedelta

import pytest

from quotation.errors import TransportError
from quotation.models import Trade
from quotation.websocket.gapfill import GapFill, fill_trade_gap
from tests.quotation.examples import T0, example_trade

pytestmark = pytest.mark.timeout(5)


def trade(sid: int) -> Trade:
    """Trade ``sid``, ``sid`` ms after T0: ids and times rise together."""
    return example_trade(sid, T0 + timedelta(milliseconds=sid))


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


def fill(
    source: FakeTrades,
    last_known: int,
    first_new: int,
    *,
    page_size: int,
    also_known: frozenset[int] = frozenset(),
) -> GapFill:
    """Fill the gap between trades ``last_known`` and ``first_new``.

    Known are every id up to ``last_known`` and those in ``also_known``.
    """
    return fill_trade_gap(
        source,
        last_known=trade(last_known),
        first_new=trade(first_new),
        is_known=lambda sid: sid <= last_known or sid in also_known,
        page_size=page_size,
    )


def test_missed_trades_are_fetched_across_pages_oldest_first() -> None:
    source = FakeTrades(range(1, 101))
    result = fill(source, 40, 80, page_size=10)
    assert [t.sequential_id for t in result.trades] == list(range(41, 80))
    assert result.gap is None
    assert source.calls[0] == (10, 80)


def test_trades_already_seen_are_not_returned_again() -> None:
    source = FakeTrades(range(1, 101))
    result = fill(source, 40, 50, page_size=500, also_known=frozenset({45, 46, 47}))
    assert [t.sequential_id for t in result.trades] == [41, 42, 43, 44, 48, 49]


def test_a_rest_failure_marks_the_hole_that_remains() -> None:
    source = FakeTrades(range(1, 101), fail_after=1)
    result = fill(source, 40, 80, page_size=10)
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
    result = fill(source, 40, 60, page_size=100)
    assert [t.sequential_id for t in result.trades] == list(range(50, 60))
    assert result.gap is not None
    assert result.gap.before_sequential_id == 50
