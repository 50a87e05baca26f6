"""The rules of a shared subscription's source switch, on a small host (a
:class:`~lifeline.feed.host.SubscriptionHost` whose two sources the test feeds by hand, whose
own REST answers what the test says and whose catch-up jobs run when the test says), on a
fake clock: the trades missed before the new source's first one are backfilled and the
held ones follow; more than the backfill reaches, or a failed one, is a counted and logged
gap; the previous source delivers until the new one caught up; a trade older than the last
delivered is dropped; snapshots never go back in exchange time; switching back before the
catch-up needs no backfill; a raising callback is counted and logged once per burst; a
close from its own callback defers the sources' closing; the overlap ends."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from actors.messages import Source
from lifeline.answer import Answer
from lifeline.errors import MarketDataUnavailable
from lifeline.feed.host import SharedSubscription, SubscriptionHost
from lifeline.levels import Level
from lifeline.subscriptions import StreamKind, Subscription, Update
from quotation.models import Change, Side, Ticker, Trade
from tests.fakes import ManualClock

pytestmark = pytest.mark.timeout(10)

BTC = "KRW-BTC"
T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
OVERLAP = 10.0


def trade(n: int, *, at: float | None = None) -> Trade:
    """Trade ``n`` (``sequential_id`` n), ``n`` seconds after T0 unless ``at`` says."""
    stamp = T0 + timedelta(seconds=n if at is None else at)
    return Trade(BTC, n, stamp, 1.0, 1.0, Side.BID, 1.0, 0.0, 0.0, Change.EVEN)


def ticker(seconds: float) -> Ticker:
    stamp = T0 + timedelta(seconds=seconds)
    return Ticker(
        market=BTC, trade_price=seconds, opening_price=1.0, high_price=1.0, low_price=1.0,
        prev_closing_price=1.0, change=Change.EVEN, change_price=0.0, change_rate=0.0,
        signed_change_price=0.0, signed_change_rate=0.0, trade_volume=1.0,
        acc_trade_price=1.0, acc_trade_price_24h=1.0, acc_trade_volume=1.0,
        acc_trade_volume_24h=1.0, highest_52_week_price=1.0, highest_52_week_date=None,
        lowest_52_week_price=1.0, lowest_52_week_date=None, trade_time=stamp, timestamp=stamp)


class Fed(Subscription):
    """One of the host's two sources: the test hands it updates, as its dispatcher would."""

    def __init__(self, name: str, kind: str, markets: tuple[str, ...],
                 callback: Callable[[Update[Any]], object]) -> None:
        super().__init__(StreamKind.of(kind), markets, callback)
        self.name = name

    def send(self, item: Any) -> None:
        self._callback(Update(item, f"{self.name}/src", Level.NORMAL, 0.0))  # type: ignore[arg-type]

    def close(self) -> None:
        self._closed = True


class Host:
    """A :class:`SubscriptionHost`: ``local`` says where it serves from; ``rest`` is what its
    own ``get_trades`` returns (newest first) or raises; catch-up jobs wait for :meth:`run`."""

    def __init__(self) -> None:
        self._clock = ManualClock()
        self.local = False
        self.feed: Fed | None = None
        self.own: Fed | None = None
        self.rest: list[Trade] | Exception = []
        self.asked = 0
        self.jobs: list[Callable[[], None]] = []

    @property
    def clock(self) -> ManualClock:
        return self._clock

    @property
    def overlap(self) -> float:
        return OVERLAP

    def serving_locally(self) -> bool:
        return self.local

    def feed_subscribe(self, kind: str, markets: tuple[str, ...],
                       callback: Callable[[Update[Any]], object]) -> Subscription:
        self.feed = Fed("shared", kind, markets, callback)
        return self.feed

    def local_subscribe(self, kind: str, markets: tuple[str, ...],
                        callback: Callable[[Update[Any]], object]) -> Subscription:
        self.own = Fed("own", kind, markets, callback)
        return self.own

    def own_trades(self, market: str) -> Answer[list[Trade]]:
        self.asked += 1
        if isinstance(self.rest, Exception):
            raise self.rest
        return Answer(list(self.rest), Source.SMART_ROUTER_REST, Level.NORMAL, 0.0)

    def later(self, job: Callable[[], None]) -> None:
        self.jobs.append(job)

    def run(self) -> None:
        for _ in range(100):
            if not self.jobs:
                return
            self.jobs.pop(0)()

    def forget(self, sub: SharedSubscription) -> None:
        pass


class Got:
    def __init__(self) -> None:
        self.updates: list[Update[Any]] = []

    def __call__(self, update: Update[Any]) -> None:
        self.updates.append(update)

    def sids(self) -> list[int]:
        return [u.data.sequential_id for u in self.updates]


def subscribed(kind: str = "trade") -> tuple[SharedSubscription, Host, Got]:
    host, got = Host(), Got()
    checked: SubscriptionHost = host
    sub = SharedSubscription(StreamKind.of(kind), (BTC,), got)
    sub.attach(checked)
    sub.sync()
    assert sub.source == "feed" and host.feed is not None and host.own is None
    return sub, host, got


def switch(sub: SharedSubscription, host: Host, *, local: bool) -> None:
    host.local = local
    sub.sync()


def test_the_trades_missed_before_the_new_sources_first_are_backfilled_then_the_held_go_out(
) -> None:
    sub, host, got = subscribed()
    assert host.feed is not None
    host.feed.send(trade(1))
    host.feed.send(trade(2))
    switch(sub, host, local=True)  # the feed lost: this host's own tree serves it
    assert sub.source == "local" and host.own is not None
    host.own.send(trade(6))  # its first trade: 3, 4, 5 were made meanwhile
    host.own.send(trade(7))
    assert got.sids() == [1, 2]  # held while the backfill is due
    host.rest = [trade(n) for n in (6, 5, 4, 3, 2, 1)]
    host.run()
    assert got.sids() == [1, 2, 3, 4, 5, 6, 7]
    assert [u.source for u in got.updates[2:6]] == [Source.SMART_ROUTER_REST] * 4
    assert (sub.backfilled, sub.gaps, sub.duplicates, host.asked) == (4, 0, 1, 1)  # 6 held
    host.own.send(trade(8))  # caught up: delivered at once
    assert got.sids()[-1] == 8


def test_more_missed_than_the_backfill_reaches_is_a_counted_and_logged_gap(
        caplog: pytest.LogCaptureFixture) -> None:
    sub, host, got = subscribed()
    assert host.feed is not None
    host.feed.send(trade(1))
    switch(sub, host, local=True)
    assert host.own is not None
    host.own.send(trade(9))
    host.rest = [trade(n) for n in (9, 8, 7)]  # does not reach back to 1
    with caplog.at_level(logging.WARNING, logger="lifeline.feed.host"):
        host.run()
    assert got.sids() == [1, 7, 8, 9]
    assert sub.gaps == 1
    assert "do not reach back to the last delivered (1)" in caplog.text


def test_a_backfill_failing_until_the_overlap_ends_is_a_counted_and_logged_gap_and_the_held_go(
        caplog: pytest.LogCaptureFixture) -> None:
    sub, host, got = subscribed()
    assert host.feed is not None
    host.feed.send(trade(1))
    switch(sub, host, local=True)
    assert host.own is not None
    host.own.send(trade(4))
    host.rest = MarketDataUnavailable("no trades", kind="trades", markets=(BTC,), age=None,
                                      max_stale_age=30.0)
    host.run()
    assert got.sids() == [1] and sub.gaps == 0  # asked again at a tick within the overlap
    host.clock.advance(OVERLAP)
    with caplog.at_level(logging.WARNING, logger="lifeline.feed.host"):
        sub.tick(host.clock.monotonic())
        host.run()
    assert got.sids() == [1, 4] and sub.gaps == 1 and host.asked == 2
    assert "not backfilled" in caplog.text


def test_a_failed_backfill_is_asked_again_at_the_next_tick_within_the_overlap() -> None:
    """The own tree refusing at the switch (Level 3 for a moment: trades refused at once) is
    no loss while the overlap lasts: the next tick asks again; nothing is a gap."""
    sub, host, got = subscribed()
    assert host.feed is not None
    host.feed.send(trade(1))
    host.feed.send(trade(2))
    switch(sub, host, local=True)
    assert host.own is not None
    host.own.send(trade(6))
    host.rest = MarketDataUnavailable("no trades", kind="trades", markets=(BTC,), age=None,
                                      max_stale_age=30.0)
    host.run()
    assert got.sids() == [1, 2] and sub.gaps == 0  # still held
    host.own.send(trade(7))  # held too: one backfill at a time
    host.run()
    assert host.asked == 1
    host.rest = [trade(n) for n in (7, 6, 5, 4, 3, 2, 1)]
    host.clock.advance(0.2)
    sub.tick(host.clock.monotonic())  # the next tick: asked again
    host.run()
    assert got.sids() == [1, 2, 3, 4, 5, 6, 7]
    assert (sub.backfilled, sub.gaps, host.asked) == (5, 0, 2)


def test_an_answer_not_reaching_the_first_held_trade_is_not_taken_as_the_backfill(
        caplog: pytest.LogCaptureFixture) -> None:
    """The own tree's last known good (stale) trades end before the new source's first one:
    taken, the trades between them would be lost without a gap. Asked again until the
    overlap ends, then a counted and logged gap."""
    sub, host, got = subscribed()
    assert host.feed is not None
    host.feed.send(trade(1))
    host.feed.send(trade(2))
    switch(sub, host, local=True)
    assert host.own is not None
    host.own.send(trade(6))
    host.rest = [trade(n) for n in (3, 2, 1)]  # kept from before: 4 and 5 not in it
    host.run()
    assert got.sids() == [1, 2] and sub.gaps == 0
    host.clock.advance(OVERLAP / 2)
    sub.tick(host.clock.monotonic())
    host.run()
    assert got.sids() == [1, 2] and host.asked == 2
    host.clock.advance(OVERLAP / 2)  # the overlap's end: the last attempt
    with caplog.at_level(logging.WARNING, logger="lifeline.feed.host"):
        sub.tick(host.clock.monotonic())
        host.run()
    assert got.sids() == [1, 2, 3, 6] and sub.gaps == 1 and host.asked == 3
    assert "do not reach the first held (6)" in caplog.text


def test_the_previous_source_delivers_until_the_new_one_caught_up_then_only_the_new_one(
) -> None:
    sub, host, got = subscribed()
    assert host.feed is not None
    host.feed.send(trade(1))
    switch(sub, host, local=True)  # this host leads: the feed still carries its trades
    assert host.own is not None
    host.feed.send(trade(2))  # the overlap: still delivered
    host.own.send(trade(3))
    host.feed.send(trade(3))
    host.rest = [trade(n) for n in (3, 2, 1)]
    host.run()
    assert got.sids() == [1, 2, 3] and sub.backfilled == 0
    host.feed.send(trade(4))  # caught up: the feed is no longer taken
    assert got.sids() == [1, 2, 3]
    host.own.send(trade(4))
    assert got.sids() == [1, 2, 3, 4]


def test_a_trade_older_than_the_last_delivered_is_delivered_and_counted() -> None:
    # Upbit's arrival order is not its trade order: in the recorded session a quarter of a
    # busy market's trades came after a later one; dropping them lost them
    sub, host, got = subscribed()
    assert host.feed is not None
    host.feed.send(trade(5))
    host.feed.send(trade(6, at=4.0))  # new, but traded before 5
    host.feed.send(trade(5))
    assert got.sids() == [5, 6]
    assert (sub.out_of_order, sub.duplicates) == (1, 1)


def test_snapshots_never_go_back_in_exchange_time_across_a_switch() -> None:
    sub, host, got = subscribed("ticker")
    assert host.feed is not None
    host.feed.send(ticker(10))
    switch(sub, host, local=True)
    assert host.own is not None
    host.feed.send(ticker(11))  # the previous source, until the new one's first item
    host.own.send(ticker(9))  # the new one is live (its first item is older: dropped)
    host.feed.send(ticker(12))  # no longer taken
    host.own.send(ticker(13))
    assert [u.data.trade_price for u in got.updates] == [10, 11, 13]
    assert sub.duplicates == 1 and host.asked == 0


def test_switching_back_before_the_catch_up_needs_no_backfill_and_closes_the_own_source(
) -> None:
    sub, host, got = subscribed()
    assert host.feed is not None
    host.feed.send(trade(1))
    switch(sub, host, local=True)
    own = host.own
    assert own is not None
    host.feed.send(trade(2))  # the previous source, overlapping
    own.send(trade(3))  # held; its backfill due
    switch(sub, host, local=False)  # back: the feed never stopped
    host.feed.send(trade(3))
    host.run()
    assert got.sids() == [1, 2, 3]
    assert host.asked == 0 and own.closed and sub.source == "feed"


def test_the_overlap_ends_the_previous_source_and_closes_the_own_one() -> None:
    sub, host, _ = subscribed()
    switch(sub, host, local=True)
    own = host.own
    assert own is not None
    own.send(trade(1))
    host.run()  # the own tree has caught up
    switch(sub, host, local=False)  # back to the feed; the market is quiet
    host.run()
    assert not own.closed  # still the previous source while the feed catches up
    sub.tick(host.clock.monotonic() + OVERLAP - 0.1)
    assert not own.closed
    sub.tick(host.clock.monotonic() + OVERLAP)
    assert own.closed


def test_a_raising_callback_is_counted_and_logged_once_per_burst(
        caplog: pytest.LogCaptureFixture) -> None:
    outcomes = iter([True, True, False, True])

    def flaky(update: Update[Any]) -> None:
        if next(outcomes):
            raise RuntimeError("the host's bug")

    host = Host()
    sub = SharedSubscription(StreamKind.TRADE, (BTC,), flaky)
    sub.attach(host)
    sub.sync()
    assert host.feed is not None
    with caplog.at_level(logging.ERROR, logger="lifeline.subscriptions"):
        for n in range(1, 5):
            host.feed.send(trade(n))
    assert (sub.failures, sub.delivered) == (3, 1)
    assert len([r for r in caplog.records if r.exc_info]) == 2  # two bursts


def test_close_from_its_own_callback_returns_and_the_sources_close_on_the_catchup_thread(
) -> None:
    host = Host()
    sub: SharedSubscription

    def closing(update: Update[Any]) -> None:
        sub.close()

    sub = SharedSubscription(StreamKind.TRADE, (BTC,), closing)
    sub.attach(host)
    sub.sync()
    feed = host.feed
    assert feed is not None
    feed.send(trade(1))
    deferred = [sub.closed, feed.closed]
    host.run()
    assert deferred == [True, False] and feed.closed
    feed.send(trade(2))  # its dispatcher would not send it any more: dropped all the same
    assert sub.delivered == 1


def test_close_from_another_subscriptions_callback_defers_the_sources_too() -> None:
    host = Host()
    other = SharedSubscription(StreamKind.TRADE, (BTC,), lambda update: None)
    other.attach(host)
    other.sync()
    others_feed = host.feed
    sub = SharedSubscription(StreamKind.TRADE, (BTC,), lambda update: other.close())
    sub.attach(host)
    sub.sync()
    assert host.feed is not None and others_feed is not None
    host.feed.send(trade(1))  # sub's callback closes the other one
    deferred = [other.closed, others_feed.closed]
    host.run()
    assert deferred == [True, False] and others_feed.closed and not sub.closed
