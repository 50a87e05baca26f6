"""The synthetic trading host of a drill: threads reading through the facade, every call
recorded (outcome, source, level, latency), and one realtime subscription.

Each of ``threads`` threads cycles through ticker (every market at once), order book, trades
and candle reads (one market at a time, in turn), waiting ``pause`` seconds between two calls
(``Event.wait``: the simulator and the probes, in the same process, get their turn). A call
that raises is recorded with its exception's type name; its level is the system's level when
it began. :meth:`HostLoad.stop` joins every thread with a bound and reports the calls still
running then (hung: none may outlive ``request_deadline``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lifeline.answer import Answer
from lifeline.drill.scenario import LoadSpec
from lifeline.subscriptions import Subscription, Update
from lifeline.system import MarketDataSystem
from quotation.clock import Clock, SystemClock

__all__ = ["KINDS", "Call", "HostLoad", "read"]

Read = Callable[[MarketDataSystem, tuple[str, ...], str], Answer[Any]]
KINDS: dict[str, Read] = {
    "ticker": lambda s, markets, market: s.get_ticker(list(markets)),
    "orderbook": lambda s, markets, market: s.get_orderbook([market]),
    "trades": lambda s, markets, market: s.get_trades(market, count=5),
    "candles": lambda s, markets, market: s.get_candles(market, "1m", count=5),
}
"""The host's reads, by kind."""


@dataclass(frozen=True, slots=True)
class Call:
    """One host read: ``outcome`` is ``answer`` or the type name of what it raised."""

    kind: str
    started: float
    ended: float
    outcome: str
    level: int
    source: str | None = None
    stale: bool = False

    @property
    def elapsed(self) -> float:
        return self.ended - self.started

    @property
    def failed(self) -> bool:
        return self.outcome != "answer"


def read(system: MarketDataSystem, kind: str, markets: tuple[str, ...], market: str,
         clock: Clock) -> Call:
    """Make one read and record it (never raises for a failed read)."""
    level = int(system.level)
    began = clock.monotonic()
    try:
        answer = KINDS[kind](system, markets, market)
    except Exception as exc:  # noqa: BLE001 (every outcome is recorded, typed by name)
        return Call(kind, began, clock.monotonic(), type(exc).__name__, level)
    return Call(kind, began, clock.monotonic(), "answer", int(answer.level),
                answer.source.value, answer.stale)


class HostLoad:
    """The load of one drill (module docstring): ``start()``, ``take()`` the calls finished
    since the last take, ``stop()``."""

    def __init__(self, system: MarketDataSystem, spec: LoadSpec, *,
                 clock: Clock | None = None) -> None:
        self._system = system
        self._spec = spec
        self._clock: Clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._done: list[Call] = []
        self._running: dict[int, tuple[str, float, int]] = {}
        self._stop = threading.Event()
        self._updates = 0
        self._subscription: Subscription | None = None
        kinds = list(KINDS)
        self._threads = [
            threading.Thread(target=self._run, args=(i, kinds[i % 4:] + kinds[:i % 4]),
                             name=f"drill-load-{i}", daemon=True)
            for i in range(spec.threads)]

    def start(self) -> HostLoad:
        if self._spec.subscribe is not None:
            self._subscription = self._system.subscribe(
                self._spec.subscribe, list(self._spec.markets), self._on_update)
        for thread in self._threads:
            thread.start()
        return self

    def _on_update(self, update: Update[Any]) -> None:
        with self._lock:
            self._updates += 1

    @property
    def updates(self) -> int:
        """Realtime updates received so far."""
        with self._lock:
            return self._updates

    def _run(self, index: int, kinds: list[str]) -> None:
        markets = self._spec.markets
        turn = index
        while not self._stop.is_set():
            kind = kinds[turn % len(kinds)]
            market = markets[(turn // len(kinds)) % len(markets)]
            with self._lock:
                self._running[index] = (kind, self._clock.monotonic(), int(self._system.level))
            call = read(self._system, kind, markets, market, self._clock)
            with self._lock:
                del self._running[index]
                self._done.append(call)
            turn += 1
            self._stop.wait(self._spec.pause)

    def take(self) -> list[Call]:
        """The calls finished since the last take, in the order they finished."""
        with self._lock:
            done, self._done = self._done, []
        return done

    def stop(self, timeout: float) -> list[Call]:
        """Stop and join every thread within ``timeout`` real seconds in all; the calls still
        running then, recorded as ``hung`` (ended: now)."""
        self._stop.set()
        if self._subscription is not None:
            self._subscription.close()
        end = self._clock.monotonic() + timeout
        for thread in self._threads:
            if thread.ident is not None:
                thread.join(max(0.0, end - self._clock.monotonic()))
        now = self._clock.monotonic()
        with self._lock:
            return [Call(kind, began, now, "hung", level)
                    for kind, began, level in self._running.values()]
