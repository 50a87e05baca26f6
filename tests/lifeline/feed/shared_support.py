"""What the feed's system tests share (``MarketDataSystem`` s on the simulator, some in
``feed.mode: shared`` on a real Redis): a trading thread on the simulator, a bounded wait
and a context of started systems that stops them all (and every actor) afterwards."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pykka

from lifeline import MarketDataSystem
from lifeline.config import LifelineConfig
from tests.lifeline.system_support import until as poll_until
from upbit_sim import Simulator

__all__ = ["BTC", "WAIT", "Trader", "started_systems", "until"]

BTC = "KRW-BTC"
WAIT = 20.0
"""Real seconds any wait lasts before the test fails (a bound, never expected to elapse)."""


def until(predicate: Callable[[], bool], timeout: float = WAIT, step: float = 0.02) -> bool:
    """``system_support.until`` with the shared-mode tests' default wait."""
    return poll_until(predicate, timeout, step)


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
