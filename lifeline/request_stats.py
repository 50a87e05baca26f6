"""Counting the host's reads without a lock on the request path (for ``lifeline.metrics``).

Each calling thread counts into its own :class:`_Tally` (a ``threading.local``): only that
thread ever writes it, so no update is lost and no lock is taken per read. A scrape copies
every tally (``dict.copy`` / ``list`` copies are single operations under the GIL) and adds
them up. A tally of a thread that has ended is folded into the retired totals when a new
thread first counts (under a lock taken once per new thread), so the registry stays as long
as the live threads.

What is counted per read (``kind``: ticker, orderbook, candles, trades):

* answered: ``(kind, source, outcome)`` with outcome ``ok`` (live data) or ``stale`` (last
  known good), and its seconds in the histogram of ``(kind, source)``;
* raised: ``(kind, "none", "error")``, its seconds in ``(kind, "none")``, and the error's
  type name.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from dataclasses import dataclass

__all__ = ["BUCKETS", "RequestStats", "StatsSnapshot"]

BUCKETS: tuple[float, ...] = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                              0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Upper bounds (seconds) of the latency histogram: a cache hit is ~2 µs, a REST answer ms,
a hedged one ``router_timeout`` and more, the slowest ``request_deadline``; +Inf is added."""

_NO_SOURCE = "none"


class _Tally:
    __slots__ = ("counts", "errors", "latency", "thread")

    def __init__(self, thread: threading.Thread) -> None:
        self.thread = thread
        self.counts: dict[tuple[str, str, str], int] = {}
        self.errors: dict[str, int] = {}
        self.latency: dict[tuple[str, str], list[float]] = {}
        """(kind, source) → [count per bucket (len(BUCKETS) + 1, the last +Inf), sum]."""


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    """The counts at one moment (every thread's added up)."""

    requests: dict[tuple[str, str, str], int]
    """(kind, source, outcome) → reads."""
    errors: dict[str, int]
    """Error type name → reads that raised it."""
    latency: dict[tuple[str, str], tuple[list[int], float]]
    """(kind, source) → (non-cumulative count per bucket of :data:`BUCKETS` then +Inf, sum)."""


class RequestStats:
    """Per-thread counters of the host's reads (module docstring)."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._tallies: list[_Tally] = []
        self._retired = _Tally(threading.current_thread())
        self._register = threading.Lock()

    def answered(self, kind: str, source: str, stale: bool, seconds: float) -> None:
        """A read answered from ``source`` in ``seconds``."""
        tally = self._tally()
        key = (kind, source, "stale" if stale else "ok")
        counts = tally.counts
        counts[key] = counts.get(key, 0) + 1
        _observe(tally, (kind, source), seconds)

    def failed(self, kind: str, error: BaseException, seconds: float) -> None:
        """A read that raised ``error`` after ``seconds``."""
        tally = self._tally()
        key = (kind, _NO_SOURCE, "error")
        tally.counts[key] = tally.counts.get(key, 0) + 1
        name = type(error).__name__
        tally.errors[name] = tally.errors.get(name, 0) + 1
        _observe(tally, (kind, _NO_SOURCE), seconds)

    def snapshot(self) -> StatsSnapshot:
        with self._register:
            tallies = [self._retired, *self._tallies]
        requests: dict[tuple[str, str, str], int] = {}
        errors: dict[str, int] = {}
        latency: dict[tuple[str, str], tuple[list[int], float]] = {}
        for tally in tallies:
            for key, n in tally.counts.copy().items():
                requests[key] = requests.get(key, 0) + n
            for name, n in tally.errors.copy().items():
                errors[name] = errors.get(name, 0) + n
            for pair, live in tally.latency.copy().items():
                cells = list(live)  # one copy: its count and sum belong together
                buckets, total = latency.get(pair, ([0] * (len(BUCKETS) + 1), 0.0))
                latency[pair] = ([a + int(b) for a, b in zip(buckets, cells, strict=False)],
                                 total + cells[-1])
        return StatsSnapshot(requests, errors, latency)

    def _tally(self) -> _Tally:
        try:
            tally: _Tally = self._local.tally
        except AttributeError:
            tally = self._new_tally()
        return tally

    def _new_tally(self) -> _Tally:
        tally = _Tally(threading.current_thread())
        with self._register:
            alive = []
            for old in self._tallies:
                if old.thread.is_alive():
                    alive.append(old)
                else:
                    _fold(self._retired, old)
            alive.append(tally)
            self._tallies = alive
        self._local.tally = tally
        return tally


def _observe(tally: _Tally, pair: tuple[str, str], seconds: float) -> None:
    cells = tally.latency.get(pair)
    if cells is None:
        cells = tally.latency[pair] = [0.0] * (len(BUCKETS) + 2)
    cells[bisect_left(BUCKETS, seconds)] += 1
    cells[-1] += seconds


def _fold(into: _Tally, old: _Tally) -> None:
    """(Under the registry lock; ``old``'s thread has ended, so nothing writes it.)"""
    for key, n in old.counts.items():
        into.counts[key] = into.counts.get(key, 0) + n
    for name, n in old.errors.items():
        into.errors[name] = into.errors.get(name, 0) + n
    for pair, cells in old.latency.items():
        mine = into.latency.setdefault(pair, [0.0] * (len(BUCKETS) + 2))
        for index, value in enumerate(cells):
            mine[index] += value
