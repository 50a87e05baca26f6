"""What the feed's system tests share (``MarketDataSystem`` s on the simulator, some in
``feed.mode: shared`` on a real Redis): a trading thread on the simulator, bounded waits,
a context of started systems that stops them all (and every actor) afterwards, and a
``SharedHost``'s own side for the tests that build one directly."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pykka

from actors.messages import Source
from lifeline import MarketDataSystem
from lifeline.answer import Answer
from lifeline.config import LifelineConfig
from lifeline.levels import Level
from lifeline.subscriptions import Dispatcher, StreamKind, Subscription
from quotation.clock import SystemClock
from quotation.models import Trade
from tests.lifeline.system_support import until as poll_until
from upbit_sim import Simulator

__all__ = ["BTC", "WAIT", "OwnTree", "Trader", "polled", "started_systems", "until"]

BTC = "KRW-BTC"
WAIT = 20.0
"""Real seconds any wait lasts before the test fails (a bound, never expected to elapse)."""


def until(predicate: Callable[[], bool], timeout: float = WAIT, step: float = 0.02) -> bool:
    """``system_support.until`` with the shared-mode tests' default wait."""
    return poll_until(predicate, timeout, step)


def polled(predicate: Callable[[], bool], wait: float) -> bool:
    """``predicate`` polled every 0.02 s, ``wait / 0.02`` times at most, then once more."""
    pause = threading.Event()
    for _ in range(int(wait / 0.02)):
        if predicate():
            return True
        pause.wait(0.02)
    return predicate()


class OwnTree:
    """The host's own tree as the feed sees it: level 0, subscriptions on a dispatcher, no
    trades."""

    def __init__(self) -> None:
        self.dispatcher = Dispatcher(SystemClock(), lambda: Level.NORMAL, name="test-own")

    @property
    def level(self) -> int:
        return 0

    def subscribe(self, kind: str, markets: str | list[str] | tuple[str, ...],
                  callback: Callable[[Any], object]) -> Subscription:
        wanted = (markets,) if isinstance(markets, str) else tuple(markets)
        return self.dispatcher.add(StreamKind.of(kind), wanted, callback)

    def get_trades(self, market: str, count: int = 100) -> Answer[list[Trade]]:
        return Answer([], Source.SMART_ROUTER_REST, Level.NORMAL, 0.0)


class Trader:
    """Trades ``market`` on the simulator every 20 ms on a thread of its own."""

    def __init__(self, sim: Simulator, market: str = BTC) -> None:
        self._sim = sim
        self._market = market
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-trader", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self._sim.engine.step_market(self._market, 1)

    def __enter__(self) -> Trader:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5.0)


@contextmanager
def started_systems(config: LifelineConfig, n: int, *, wait: float = WAIT
                    ) -> Iterator[list[MarketDataSystem]]:
    """``n`` systems made from ``config``, each started; all stopped after (in reverse) and
    every actor gone (``wait`` real seconds at most)."""
    made: list[MarketDataSystem] = []
    try:
        for _ in range(n):
            system = MarketDataSystem.from_config(config)
            made.append(system)
            system.start()
        yield made
    finally:
        for system in reversed(made):
            system.stop()
        pykka.ActorRegistry.stop_all(timeout=wait)
