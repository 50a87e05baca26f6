"""A reply says when the exchange produced what it carries: snapshots by their oldest
stamp, series as of their newest item or the moment a REST answer was given."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from actors.messages import Reply, Source, produced_at
from quotation.models import Ticker
from quotation.parsing import parse_ws_message
from tests.quotation.examples import T0, WS_TICKER, example_trade

pytestmark = pytest.mark.timeout(10)


def test_a_source_compares_equal_to_the_string_the_facade_promises() -> None:
    promised: list[str] = ["smart_router/websocket", "last_known_good"]
    assert promised == [Source.SMART_ROUTER_WEBSOCKET, Source.LAST_KNOWN_GOOD]
    assert {str(source) for source in Source} == {
        "smart_router/websocket", "smart_router/rest", "rest_fallback", "ws_fallback",
        "last_known_good",
    }


def test_snapshots_are_as_old_as_the_oldest_one() -> None:
    fresh = parse_ws_message(WS_TICKER)
    assert isinstance(fresh, Ticker)
    stale = dataclasses.replace(fresh, timestamp=fresh.timestamp - timedelta(seconds=30))
    reply = Reply.of([fresh, stale], Source.REST_FALLBACK)
    assert reply.produced_at == stale.timestamp.timestamp()
    assert reply.data == (fresh, stale)


def test_a_series_stands_as_of_its_newest_item() -> None:
    old = example_trade(1, T0)
    new = example_trade(2, T0 + timedelta(seconds=5))
    assert produced_at([new, old]) == (T0 + timedelta(seconds=5)).timestamp()


def test_a_rest_answer_for_a_series_is_stamped_when_it_was_answered() -> None:
    quiet = example_trade(1, T0)
    answered = (T0 + timedelta(hours=2)).timestamp()
    assert Reply.of([quiet], Source.SMART_ROUTER_REST, as_of=answered).produced_at == answered


def test_an_empty_reply_has_no_production_time() -> None:
    assert Reply.of([], Source.WS_FALLBACK).produced_at is None
