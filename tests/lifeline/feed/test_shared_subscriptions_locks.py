"""A shared subscription's locks against its sources' real dispatchers
(:class:`lifeline.subscriptions.Dispatcher`, each with its thread): closing a source waits
for the callback in progress on that source's dispatcher (``Dispatcher.remove`` takes its
delivery lock), so the subscription must never close a source while it holds the lock its
``sync`` takes. Else: the catch-up thread retires a subscription's own-tree source (after a
switch back to the feed) and waits for the own tree's dispatcher, whose thread is in another
subscription's callback (still in its overlap); that callback reads, the read finds Redis
gone, and the host switches every subscription (``SharedHost._set_lost`` → ``sync``): it
waits for the lock the catch-up thread holds. Both wait for ever: that dispatcher delivers
nothing again, the catch-up thread is dead, and ``stop()`` hangs on the callback in progress.

The small host here (a :class:`~lifeline.feed.host.SubscriptionHost`) opens its sources on
two real dispatchers; its catch-up jobs run on a thread of the test. No wait is unbounded: a
callback that would hang gives up after ``WAIT`` and says so."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from actors.messages import Source
from lifeline.answer import Answer
from lifeline.feed.host import SharedSubscription, SubscriptionHost
from lifeline.levels import Level
from lifeline.subscriptions import Dispatcher, StreamKind, Subscription, Update
from quotation.models import Change, Ticker, Trade
from tests.fakes import ManualClock

pytestmark = pytest.mark.timeout(30)

BTC, ETH = "KRW-BTC", "KRW-ETH"
T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
WAIT = 5.0
"""Real seconds a wait lasts before the test fails (a bound, never expected to elapse)."""


def ticker(market: str, seconds: float) -> Ticker:
    stamp = T0 + timedelta(seconds=seconds)
    return Ticker(
        market=market, trade_price=seconds, opening_price=1.0, high_price=1.0, low_price=1.0,
        prev_closing_price=1.0, change=Change.EVEN, change_price=0.0, change_rate=0.0,
        signed_change_price=0.0, signed_change_rate=0.0, trade_volume=1.0,
        acc_trade_price=1.0, acc_trade_price_24h=1.0, acc_trade_volume=1.0,
        acc_trade_volume_24h=1.0, highest_52_week_price=1.0, highest_52_week_date=None,
        lowest_52_week_price=1.0, lowest_52_week_date=None, trade_time=stamp, timestamp=stamp)


class Closing(Subscription):
    """A dispatcher's subscription that says when its closing begins (then closes it)."""

    def __init__(self, inner: Subscription, began: threading.Event) -> None:
        super().__init__(inner.kind, inner.markets, lambda update: None)
        self._inner = inner
        self._began = began

    def close(self) -> None:
        self._began.set()
        self._inner.close()
        self._closed = True


class Host:
    """Sources on two real dispatchers (the feed's, the own tree's); ``lose()`` is what
    ``SharedHost._set_lost`` does to its subscriptions; catch-up jobs wait in ``jobs``."""

    def __init__(self) -> None:
        self._clock = ManualClock()
        self.local = True
        self.feed = Dispatcher(self._clock, lambda: Level.NORMAL, name="test-feed-dispatcher")
        self.own = Dispatcher(self._clock, lambda: Level.NORMAL, name="test-own-dispatcher")
        self.own_closing = threading.Event()
        self.jobs: list[Callable[[], None]] = []
        self.subs: list[SharedSubscription] = []

    @property
    def clock(self) -> ManualClock:
        return self._clock

    @property
    def overlap(self) -> float:
        return 10.0

    def serving_locally(self) -> bool:
        return self.local

    def feed_subscribe(self, kind: str, markets: tuple[str, ...],
                       callback: Callable[[Update[Any]], object]) -> Subscription:
        return self.feed.add(StreamKind.of(kind), markets, callback)

    def local_subscribe(self, kind: str, markets: tuple[str, ...],
                        callback: Callable[[Update[Any]], object]) -> Subscription:
        return Closing(self.own.add(StreamKind.of(kind), markets, callback), self.own_closing)

    def own_trades(self, market: str) -> Answer[list[Trade]]:
        return Answer([], Source.SMART_ROUTER_REST, Level.NORMAL, 0.0)

    def later(self, job: Callable[[], None]) -> None:
        self.jobs.append(job)

    def forget(self, sub: SharedSubscription) -> None:
        pass

    def lose(self) -> None:
        self.local = True
        for sub in self.subs:
            sub.sync()

    def add(self, sub: SharedSubscription) -> None:
        checked: SubscriptionHost = self
        sub.attach(checked)
        self.subs.append(sub)
        sub.sync()


def test_a_read_finding_the_feed_lost_in_a_callback_while_the_catchup_retires_a_source(
        ) -> None:
    host = Host()
    host.feed.start()
    host.own.start()
    switched = threading.Event()
    outcome: list[str] = []

    def reads_and_finds_the_feed_lost(update: Update[Any]) -> None:
        # the own tree's ETH ticker, on its dispatcher's thread: wait until the catch-up
        # thread closes BTC's own source, then the read finds Redis gone (the host's switch)
        if not host.own_closing.wait(WAIT):
            outcome.append("the catch-up thread never closed the own source")
            return

        def lose() -> None:
            host.lose()
            switched.set()

        thread = threading.Thread(target=lose, name="test-lose", daemon=True)
        thread.start()
        if not switched.wait(WAIT):
            outcome.append("the switch waited for the lock the retiring thread holds")

    btc = SharedSubscription(StreamKind.TICKER, (BTC,), lambda update: None)
    eth = SharedSubscription(StreamKind.TICKER, (ETH,), reads_and_finds_the_feed_lost)
    catchup: threading.Thread | None = None
    try:
        host.add(btc)
        host.add(eth)
        assert btc.source == eth.source == "local"
        host.local = False  # Redis back: both switch to the feed, BTC catches up at once
        for sub in host.subs:
            sub.sync()
        host.jobs.clear()
        host.feed.offer([ticker(BTC, 1.0)], Source.SMART_ROUTER_REST)
        assert _until(lambda: bool(host.jobs)), "BTC's own source was never to be retired"
        retire = host.jobs.pop(0)

        host.own.offer([ticker(ETH, 1.0)], Source.SMART_ROUTER_REST)  # ETH: still the own's
        catchup = threading.Thread(target=retire, name="test-catchup", daemon=True)
        catchup.start()
        catchup.join(3 * WAIT)
        assert not catchup.is_alive(), "the catch-up thread is stuck closing a source"
        assert outcome == [], outcome
        assert switched.wait(WAIT)
        assert btc.source == eth.source == "local"
    finally:
        for sub in host.subs:
            sub.close()
            sub.release()
        host.feed.stop(WAIT)
        host.own.stop(WAIT)
        if catchup is not None:
            catchup.join(WAIT)


def _until(predicate: Callable[[], bool]) -> bool:
    done = threading.Event()
    for _ in range(int(WAIT / 0.01)):
        if predicate():
            return True
        done.wait(0.01)
    return predicate()
