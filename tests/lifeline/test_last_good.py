"""Last known good data never goes backwards in exchange time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from actors.messages import Reply, Source, TickerRequest
from lifeline.last_good import LastKnownGood
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
