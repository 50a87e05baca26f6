"""Delivery to consumers: batched, bounded, counted drops, a failing consumer isolated."""

from __future__ import annotations

import threading

import pytest

from quotation.websocket.delivery import BatchDispatcher

pytestmark = pytest.mark.timeout(10)


def test_items_arrive_in_order_in_batches() -> None:
    dispatcher: BatchDispatcher[int] = BatchDispatcher(capacity=1000)
    got: list[int] = []
    batches: list[int] = []

    def consume(batch: tuple[int, ...]) -> None:
        batches.append(len(batch))
        got.extend(batch)

    dispatcher.add_consumer(consume)
    dispatcher.start()
    try:
        for i in range(500):
            assert dispatcher.offer(i)
        assert dispatcher.flush(5)
    finally:
        dispatcher.stop()
    assert got == list(range(500))
    assert sum(batches) == 500
    assert dispatcher.delivered == 500


def test_a_blocked_consumer_makes_new_items_drop_instead_of_queueing_without_bound() -> None:
    dispatcher: BatchDispatcher[int] = BatchDispatcher(capacity=10)
    entered = threading.Event()
    release = threading.Event()
    got: list[int] = []

    def slow(batch: tuple[int, ...]) -> None:
        entered.set()
        release.wait(5)
        got.extend(batch)

    dispatcher.add_consumer(slow)
    dispatcher.start()
    try:
        dispatcher.offer(0)
        assert entered.wait(5)  # the consumer now holds item 0 and blocks
        results = [dispatcher.offer(i) for i in range(1, 31)]
        assert results == [True] * 10 + [False] * 20
        assert dispatcher.dropped == 20
        assert dispatcher.pending() == 10
        release.set()
        assert dispatcher.flush(5)
    finally:
        release.set()
        dispatcher.stop()
    assert got == list(range(11))


def test_a_failing_consumer_does_not_stop_the_others() -> None:
    dispatcher: BatchDispatcher[int] = BatchDispatcher()
    got: list[int] = []

    def broken(batch: tuple[int, ...]) -> None:
        raise RuntimeError("consumer bug")

    dispatcher.add_consumer(broken)
    dispatcher.add_consumer(got.extend)
    dispatcher.start()
    try:
        for i in range(3):
            dispatcher.offer(i)
        assert dispatcher.flush(5)
    finally:
        dispatcher.stop()
    assert got == [0, 1, 2]
    assert dispatcher.consumer_errors >= 1


def test_nothing_is_buffered_when_nobody_consumes() -> None:
    dispatcher: BatchDispatcher[int] = BatchDispatcher(capacity=5)
    remove = dispatcher.add_consumer(lambda batch: None)
    remove()
    assert not dispatcher.offer(1)
    assert dispatcher.pending() == 0
