"""The facade's routing rules on a system whose children are stand-ins (no tree, no
simulator): the level set on the keeper's state, each child a handle answering a canned
:class:`Reply` (or raising), the wall time on a :class:`ManualClock` so exchange ages are
exact. A cached WebSocket-fallback answer is fresh only by exchange age; an old one is
served only as stale data (and never kept as last known good); Level 3 reads the WebSocket
fallback first; a breaker trial that raises does not leave the breaker stuck half-open."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pykka
import pytest

from actors.messages import Reply, Source, TickerRequest
from lifeline import Level, LifelineConfig, MarketDataSystem, MarketDataUnavailable
from lifeline.breaker import Route
from lifeline.settings import FallbackSettings
from lifeline.tree import Tree
from tests.fakes import ManualClock
from tests.lifeline.test_hot_path import ticker

pytestmark = pytest.mark.timeout(30)

BTC = "KRW-BTC"
MAX_STALE = 30.0


@dataclass
class Child:
    """A stand-in for a tree child: answers every ask with ``answer`` (a Reply, or an
    exception set on the future); ``raises`` is raised by the ask itself."""

    name: str
    answer: Reply | BaseException | None = None
    raises: BaseException | None = None
    asked: list[object] = field(default_factory=list)

    def ask_future(self, message: object, future: Any = None) -> pykka.Future[Any]:
        self.asked.append(message)
        if self.raises is not None:
            raise self.raises
        done = pykka.ThreadingFuture[Any]() if future is None else future
        if isinstance(self.answer, BaseException):
            done.set_exception((type(self.answer), self.answer, None))
        else:
            done.set(self.answer if self.answer is not None
                     else Reply.of([], Source.REST_FALLBACK))
        return cast("pykka.Future[Any]", done)

    def tell(self, message: object) -> None:
        self.asked.append(message)


@dataclass
class StandIns:
    router: Child = field(default_factory=lambda: Child("router", RuntimeError("router")))
    rest: Child = field(default_factory=lambda: Child("rest", RuntimeError("REST banned")))
    ws: Child = field(default_factory=lambda: Child("ws", RuntimeError("not cached")))


NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(wall=NOW.timestamp())


@pytest.fixture
def children() -> StandIns:
    return StandIns()


@pytest.fixture
def system(clock: ManualClock, children: StandIns) -> Iterator[MarketDataSystem]:
    config = LifelineConfig(fallback=FallbackSettings(
        router_timeout=0.2, request_deadline=1.0, max_stale_age=MAX_STALE))
    made = MarketDataSystem(config, clock=clock)
    made._tree = cast("Tree", children)
    yield made
    made._tree = None


def at_level(system: MarketDataSystem, level: Level) -> None:
    state = system._keeper._state
    system._keeper._state = replace(state, trusted=level <= Level.DEGRADED,
                                    fallbacks_out=level is Level.LAST_RESORT)
    assert system.level is level


def cached(age: float) -> Reply:
    return Reply.of([ticker(BTC, NOW - timedelta(seconds=age))], Source.WS_FALLBACK)


def test_at_level_2_an_old_websocket_cache_answer_is_stale_and_not_kept_as_last_known_good(
    system: MarketDataSystem, children: StandIns
) -> None:
    at_level(system, Level.FALLBACK)
    children.ws.answer = cached(age=20.0)  # REST fails: only this old entry is left
    answer = system.get_ticker([BTC])
    assert answer.source is Source.WS_FALLBACK
    assert answer.stale is True
    assert answer.age == pytest.approx(20.0)
    assert system._last_good.recall(TickerRequest((BTC,))) is None  # not kept


def test_at_level_2_a_websocket_cache_answer_older_than_max_stale_age_is_unavailable(
    system: MarketDataSystem, children: StandIns
) -> None:
    at_level(system, Level.FALLBACK)
    children.ws.answer = cached(age=MAX_STALE + 60.0)
    with pytest.raises(MarketDataUnavailable):
        system.get_ticker([BTC])


def test_at_level_2_a_fresh_websocket_cache_answer_is_fresh(
    system: MarketDataSystem, children: StandIns
) -> None:
    at_level(system, Level.FALLBACK)
    children.ws.answer = cached(age=0.5)
    answer = system.get_ticker([BTC])
    assert (answer.source, answer.stale, answer.level) == (Source.WS_FALLBACK, False,
                                                           Level.FALLBACK)
    assert children.rest.asked == []
    assert system._last_good.recall(TickerRequest((BTC,))) is not None


def test_at_level_3_a_fresh_websocket_cache_answer_is_served_fresh_before_last_known_good(
    system: MarketDataSystem, children: StandIns
) -> None:
    at_level(system, Level.LAST_RESORT)
    system._last_good.remember(TickerRequest((BTC,)), cached(age=10.0))
    children.ws.answer = cached(age=0.5)
    answer = system.get_ticker([BTC])
    assert (answer.source, answer.stale, answer.level) == (Source.WS_FALLBACK, False,
                                                           Level.LAST_RESORT)
    assert answer.age == pytest.approx(0.5)
    assert children.rest.asked == []  # REST is never tried at level 3


def test_at_level_3_an_old_websocket_cache_answer_is_only_stale(
    system: MarketDataSystem, children: StandIns
) -> None:
    at_level(system, Level.LAST_RESORT)
    children.ws.answer = cached(age=20.0)
    answer = system.get_ticker([BTC])
    assert (answer.source, answer.stale, answer.level) == (Source.WS_FALLBACK, True,
                                                           Level.LAST_RESORT)
    children.ws.answer = cached(age=MAX_STALE + 1.0)
    with pytest.raises(MarketDataUnavailable):
        system.get_ticker([BTC])


def test_at_level_3_without_the_websocket_cache_last_known_good_is_served_stale(
    system: MarketDataSystem, children: StandIns
) -> None:
    at_level(system, Level.LAST_RESORT)
    system._last_good.remember(TickerRequest((BTC,)), cached(age=10.0))
    answer = system.get_ticker([BTC])
    assert (answer.source, answer.stale) == (Source.LAST_KNOWN_GOOD, True)
    assert [type(m) for m in children.ws.asked] == [TickerRequest]


def test_a_breaker_trial_that_raises_leaves_the_breaker_ready_for_the_next_trial(
    system: MarketDataSystem, children: StandIns, clock: ManualClock
) -> None:
    breaker = system._breaker
    for _ in range(breaker.trip_after):
        breaker.failure(clock.monotonic())
    clock.advance(3600.0)  # past the cooldown: the next request is the one trial
    children.router.raises = KeyboardInterrupt()  # raised between route() and the verdict
    with pytest.raises(KeyboardInterrupt):
        system.get_trades(BTC, count=3)
    assert breaker.route(clock.monotonic()) is Route.TRIAL  # not stuck: a new trial goes
