"""Facade benchmark: what the exit strategy costs a trading host, and how fast it moves.

Against the simulator on 127.0.0.1 (in a child process, so that its event loop and trade
generator do not share this process's GIL), a ``MarketDataSystem`` built in this script on
shortened timings (:func:`bench_config`: ``probe_interval`` 0.5 s, ``failure_threshold`` 3,
``recovery_interval`` 2 s, ``recovery_successes`` 3, ``router_timeout`` 0.2 s,
``request_deadline`` 1.5 s). The rate limit is raised out of the way on both sides (the
limiter's ``per_second`` and the simulator's policy, whose ``Remaining-Req`` header the
limiter would otherwise adopt): every REST call of the fallback and of the direct client
would else wait for a slot of Upbit's 10/s, about 1 s for every tenth call.

Goals (the verdict, printed last; exit status 1 on a miss, see ``_goals``):

* ``cache_hit_vs_ask`` <= 0.5x: the median ``get_ticker(["KRW-BTC"])`` answered from the
  router's published snapshot (``source == "smart_router/websocket"``, in the caller's
  thread) over the median round trip of one bare pykka ``ask`` to an actor that answers at
  once. Only cache hits are timed; how many calls hit is printed.
* ``fallback_vs_rest`` <= 1.2x: the STEADY STATE of a router that raises on every request:
  the median ``get_ticker(["KRW-ETH"])`` while the router raises at its ``request`` point
  and the facade's router circuit breaker (:mod:`lifeline.breaker`) is open after the
  burst's first ``TRIP_AFTER`` failures (answered by ``rest_fallback`` at level 0/1, the
  router not asked; the call made in the caller's thread on the fallback's lane,
  ``actors.rest_fallback.RestLane``, when it is free), over the median of the same call on
  a bare ``RestClient`` with the
  same ``upbit.rest`` config, the two interleaved call by call (a shared machine's load falls
  on both). Also printed, as a figure without a goal so nothing is hidden: the cost of the
  first ``TRIP_AFTER`` failing requests of each burst (breaker closed, the full
  ``router_timeout`` hedge: the router's failed ask, then the REST fallback's). Sampled in
  bursts shorter than one probe interval, a good probe between them: the router's probes
  hit the same fault point, and ``failure_threshold`` failed probes would take the system to
  Level 2 (another path); before each burst the breaker is closed by a good router request
  on ``CLOSER``.
* ``hang_answer_s`` <= ``router_timeout`` + 1.2 x the direct REST median (the goal is set from
  the measured REST median unless overridden): the MEDIAN of several ``get_candles`` calls
  (never answered from a cache: the hung router's queued requests make a ticker market hot)
  made while the router hangs at ``request`` (one hang per call, cleared after it, and the
  breaker closed again before the next: each sample is the full hedge). Like with like: a
  median against the median direct call, as ``bench_rest`` compares medians; the slowest
  hang answer is printed as a figure without a goal. Each comes after ``IDLE`` seconds of
  quiet, and so does each direct REST call it is compared with: a call after a pause costs
  more than one in a tight loop, on both sides.
* ``death_to_level2_intervals`` <= ``failure_threshold`` + 1: from injecting a router crash at
  ``request`` (the router dies at the next probe or request) to the host's
  ``on_level_change`` callback seeing Level 2, in probe intervals.
* ``cleared_to_level0_s`` <= ``recovery_interval`` x (``recovery_successes`` + 1) +
  ``probe_interval`` (the issue's recovery bound, from the config): from ``clear_all()``
  (after the crash loop took the system to Level 2) to the callback seeing Level 0.

Run: ``.venv/bin/python benchmarks/bench_facade.py [--quick] [--goal NAME=VALUE ...]``
(``--quick``: fewer samples, one death/recovery cycle all the same; a smoke test).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pykka
from _goals import AT_MOST, Goal, Verdict, add_goal_arguments, goal_overrides

from actors.messages import Source
from lifeline import Level, LevelChange, LifelineConfig, MarketDataSystem
from lifeline.breaker import TRIP_AFTER, BreakerState
from lifeline.config import RateLimitSettings, UpbitSettings
from lifeline.settings import FallbackSettings, FaultSettings
from quotation.backoff import Backoff, Jitter
from quotation.rest import RestClient, RestConfig
from quotation.websocket import WebSocketConfig

CACHED, FALLBACK, CLOSER = "KRW-BTC", "KRW-ETH", "KRW-XRP"
"""The market made hot (answered from the snapshot), one never asked of a live router, and
the one whose candles a good router request closes the breaker with (nothing else asks it)."""
PROBE_INTERVAL, FAILURE_THRESHOLD = 0.5, 3
RECOVERY_INTERVAL, RECOVERY_SUCCESSES = 2.0, 3
ROUTER_TIMEOUT, REQUEST_DEADLINE = 0.2, 1.5
RAISED_LIMIT = 1_000_000
WAIT = 30.0
IDLE = 0.3
"""Real seconds of quiet before each hang sample and before its direct REST twin: a REST
call after a pause is slower than one in a tight loop, on both sides."""
"""Real seconds any wait in this script gives up after (then the goal is not measured)."""

GOAL_CACHE_RATIO = 0.5
GOAL_FALLBACK_RATIO = 1.2
RECOVERY_BOUND = RECOVERY_INTERVAL * (RECOVERY_SUCCESSES + 1) + PROBE_INTERVAL
GOALS = (
    Goal("cache_hit_vs_ask", AT_MOST, GOAL_CACHE_RATIO, "x",
         "facade cache-hit get_ticker / one bare pykka ask, medians"),
    Goal("fallback_vs_rest", AT_MOST, GOAL_FALLBACK_RATIO, "x",
         "router raises on every request (breaker open) -> rest_fallback answer / direct "
         "RestClient call, medians"),
    Goal("hang_answer_s", AT_MOST, float("nan"), "s",
         "router hangs -> median answer; goal router_timeout + 1.2 x direct REST median"),
    Goal("death_to_level2_intervals", AT_MOST, FAILURE_THRESHOLD + 1, "",
         "router crash injected -> Level 2 seen by the host, in probe intervals"),
    Goal("cleared_to_level0_s", AT_MOST, RECOVERY_BOUND, "s",
         "clear_all() -> Level 0 seen by the host; recovery_interval x "
         "(recovery_successes + 1) + probe_interval"),
)  # fmt: skip

FULL = {"asks": 20_000, "hits": 20_000, "rest": 400, "bursts": 8, "hangs": 24}
QUICK = {"asks": 2_000, "hits": 2_000, "rest": 40, "bursts": 1, "hangs": 2}

_SERVER = f"""
import sys
from upbit_sim import Simulator
from upbit_sim.limits import RateLimitPolicy
sim = Simulator(seed=1, rate_limit=RateLimitPolicy(per_second={RAISED_LIMIT}))
sim.start()
print(sim.base_url, sim.ws_url, flush=True)
sys.stdin.read()
sim.stop()
"""


def bench_config(base_url: str, ws_url: str) -> LifelineConfig:
    """Shortened timings (module docstring); faults enabled, the limiter out of the way."""
    return LifelineConfig(
        upbit=UpbitSettings(
            rest=RestConfig(base_url=base_url),
            rate_limit=RateLimitSettings(per_second=RAISED_LIMIT),
            websocket=WebSocketConfig(url=ws_url, connect_timeout=2.0, backoff=Backoff(
                initial=0.05, multiplier=2.0, cap=0.2, jitter=Jitter.NONE)),
        ),
        fallback=FallbackSettings(
            probe_interval=PROBE_INTERVAL, failure_threshold=FAILURE_THRESHOLD,
            recovery_interval=RECOVERY_INTERVAL, recovery_successes=RECOVERY_SUCCESSES,
            router_timeout=ROUTER_TIMEOUT, request_deadline=REQUEST_DEADLINE),
        faults=FaultSettings(enabled=True),
    )


class Echo(pykka.ThreadingActor):
    """The bare pykka round trip: answers every message at once."""

    def on_receive(self, message: Any) -> Any:
        return message


class Levels:
    """The host's view of level changes: each with the real time the callback saw it."""

    def __init__(self, system: MarketDataSystem) -> None:
        self._system = system
        self.seen: list[tuple[float, LevelChange]] = []
        self._changed = threading.Condition()
        system.on_level_change(self._on_change)

    def _on_change(self, change: LevelChange) -> None:
        with self._changed:
            self.seen.append((time.monotonic(), change))
            self._changed.notify_all()

    def wait_for(self, level: Level, after: float, timeout: float = WAIT) -> float | None:
        """When (monotonic) a change to ``level`` was seen at or after ``after``; None if
        none within ``timeout``."""
        def seen() -> float | None:
            return next((at for at, c in self.seen if at >= after and c.new is level), None)

        with self._changed:
            self._changed.wait_for(lambda: seen() is not None, timeout)
            return seen()

    def settle(self, level: Level, timeout: float = WAIT) -> bool:
        """Wait until the system is at ``level`` (for the next phase)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._system.level is level, timeout)


def timed_us(call: Callable[[], object]) -> tuple[object, float]:
    started = time.perf_counter_ns()
    result = call()
    return result, (time.perf_counter_ns() - started) / 1000.0


def median_ask_us(count: int) -> float:
    ref = Echo.start()
    try:
        for _ in range(200):
            ref.ask("ping", timeout=5)
        return statistics.median(timed_us(lambda: ref.ask("ping", timeout=5))[1]
                                 for _ in range(count))
    finally:
        ref.stop()


def median_rest_us(client: RestClient, count: int) -> float:
    for _ in range(20):
        client.get_tickers([FALLBACK])
    return statistics.median(timed_us(lambda: client.get_tickers([FALLBACK]))[1]
                             for _ in range(count))


def cache_hits_us(system: MarketDataSystem, count: int) -> tuple[list[float], int]:
    """(µs of each call answered from the snapshot, calls made); waits for the market to be hot."""
    until = time.monotonic() + WAIT
    while time.monotonic() < until:  # the router subscribes a market asked for often
        if system.get_ticker([CACHED]).source is Source.SMART_ROUTER_WEBSOCKET:
            break
        time.sleep(0.05)
    hits: list[float] = []
    calls = 0
    while len(hits) < count and calls < 3 * count:
        answer, took = timed_us(lambda: system.get_ticker([CACHED]))
        calls += 1
        if getattr(answer, "source", None) is Source.SMART_ROUTER_WEBSOCKET:
            hits.append(took)
    return hits, calls


def close_breaker(system: MarketDataSystem) -> bool:
    """Whether the router breaker is closed with no failures in a row, made so (a good router
    request on ``CLOSER`` once it lets one through: closed with failures, or half-open)."""
    until = time.monotonic() + WAIT
    while time.monotonic() < until:
        view = system.status().router_breaker
        if view is None:
            return False
        if view.state is BreakerState.CLOSED and view.failures == 0:
            return True
        if view.state is BreakerState.OPEN:
            time.sleep(0.02)
        else:
            system.get_candles(CLOSER, "1m", count=1)
    return False


class Fallback:
    """µs of the calls answered by rest_fallback at level <= 1 while the router raises, each
    with the direct REST call made just before it (interleaved, so both sides see the same
    load on a shared machine): ``hedged`` the first ``TRIP_AFTER`` of each burst (breaker
    closed), ``steady`` the rest (breaker open); what answered otherwise; how each burst
    left the breaker."""

    def __init__(self) -> None:
        self.hedged: list[float] = []
        self.hedged_direct: list[float] = []
        self.steady: list[float] = []
        self.steady_direct: list[float] = []
        self.other: list[str] = []
        self.breaker_after: list[str] = []


def fallback_us(system: MarketDataSystem, client: RestClient, levels: Levels, bursts: int
                ) -> Fallback:
    """Bursts of calls while the router raises on every request (:class:`Fallback`)."""
    out = Fallback()
    for _ in range(bursts):
        if not levels.settle(Level.NORMAL) or not close_breaker(system):
            break
        injection = system.faults.inject("smart_router", "raise", point="request")
        until = time.monotonic() + 0.8 * PROBE_INTERVAL  # at most one failed probe per burst
        index = 0
        while time.monotonic() < until:
            direct = timed_us(lambda: client.get_tickers([FALLBACK]))[1]
            answer, took = timed_us(lambda: system.get_ticker([FALLBACK]))
            if (getattr(answer, "source", None) is Source.REST_FALLBACK
                    and getattr(answer, "level", Level.FALLBACK) <= Level.DEGRADED):
                hedged = index < TRIP_AFTER
                (out.hedged if hedged else out.steady).append(took)
                (out.hedged_direct if hedged else out.steady_direct).append(direct)
            else:
                out.other.append(_said(answer))
            index += 1
        injection.clear()
        view = system.status().router_breaker
        out.breaker_after.append("?" if view is None else f"{view.state}/{view.failures}")
        time.sleep(1.5 * PROBE_INTERVAL)  # a good probe resets the failures in a row
    return out


def _said(answer: object) -> str:
    return f"{getattr(answer, 'source', '?')} at level {int(getattr(answer, 'level', -1))}"


def hang_s(system: MarketDataSystem, client: RestClient, levels: Levels, hangs: int
           ) -> tuple[list[float], list[float], list[str]]:
    """(seconds of each call made while the router hangs at request, seconds of a direct
    REST call after the same idle time, what answered otherwise)."""
    samples: list[float] = []
    direct: list[float] = []
    other: list[str] = []
    for _ in range(hangs):
        if not levels.settle(Level.NORMAL) or not close_breaker(system):
            break
        time.sleep(IDLE)
        direct.append(timed_us(lambda: client.get_candles(FALLBACK, "1m", count=1))[1] / 1e6)
        time.sleep(IDLE)
        injection = system.faults.inject("smart_router", "hang", point="request", count=1)
        answer, took = timed_us(lambda: system.get_candles(FALLBACK, "1m", count=1))
        injection.clear()
        if getattr(answer, "source", None) is Source.REST_FALLBACK:
            samples.append(took / 1e6)
        else:
            other.append(_said(answer))
    return samples, direct, other


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"fewer samples ({QUICK}), a smoke test")
    add_goal_arguments(parser)
    args = parser.parse_args()
    overrides = goal_overrides(parser, args, GOALS)
    n = QUICK if args.quick else FULL
    logging.basicConfig(level=logging.CRITICAL)  # injected crashes log ERROR reports

    root = Path(__file__).resolve().parent.parent
    server = subprocess.Popen([sys.executable, "-c", _SERVER], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=root)
    figures: dict[str, tuple[float, str]] = {}
    hang_rest_s = float("nan")
    try:
        assert server.stdout is not None
        urls = server.stdout.readline().split()
        if len(urls) != 2 or not urls[0].startswith("http://127.0.0.1:"):
            print(f"simulator did not start (got {urls!r})", file=sys.stderr)
            return Verdict("bench_facade", GOALS, overrides).finish()
        config = bench_config(*urls)
        ask_us = median_ask_us(n["asks"])
        print(f"bare pykka ask round trip: median {ask_us:.1f} µs over {n['asks']:,}")
        client = RestClient(config.upbit.rest, limiter=config.upbit.rate_limit.build())
        rest_us = median_rest_us(client, n["rest"])
        print(f"direct RestClient.get_tickers([{FALLBACK}]) in a loop: median {rest_us:.0f} µs "
              f"over {n['rest']} (before the system started)")

        system = MarketDataSystem.from_config(config)
        started = time.monotonic()
        system.start()
        print(f"system started in {time.monotonic() - started:.2f} s at level "
              f"{int(system.level)}")
        levels = Levels(system)
        try:
            fb = fallback_us(system, client, levels, n["bursts"])
            if fb.hedged:
                first_us = statistics.median(fb.hedged)
                first_rest_us = statistics.median(fb.hedged_direct)
                print(f"router raises, breaker closed (the first {TRIP_AFTER} calls of each "
                      f"burst, the full hedge; a figure, no goal): median {first_us:.0f} µs, "
                      f"max {max(fb.hedged):.0f} µs over {len(fb.hedged)} calls; direct REST "
                      f"interleaved: median {first_rest_us:.0f} µs; ratio "
                      f"{first_us / first_rest_us:.3f}x")
            if fb.steady:
                fb_us, rest_us = statistics.median(fb.steady), statistics.median(fb.steady_direct)
                print(f"router raises, breaker open (steady state) -> rest_fallback: median "
                      f"{fb_us:.0f} µs, p90 {statistics.quantiles(fb.steady, n=10)[-1]:.0f} µs "
                      f"over {len(fb.steady)} calls; direct REST interleaved: median "
                      f"{rest_us:.0f} µs; answered otherwise: {fb.other or 'none'}; breaker "
                      f"after each burst: {', '.join(fb.breaker_after)}")
                figures["fallback_vs_rest"] = (fb_us / rest_us,
                                               f"{fb_us:.0f} / {rest_us:.0f} µs")

            hangs, direct, other = hang_s(system, client, levels, n["hangs"])
            if hangs:
                hang_rest_s = statistics.median(direct)
                print(f"router hangs -> answer: {', '.join(f'{h:.4f}' for h in hangs)} s; "
                      f"direct REST after the same {IDLE} s idle: "
                      f"{', '.join(f'{d * 1000:.2f}' for d in direct)} ms; "
                      f"answered otherwise: {other or 'none'}")
                print(f"router hangs -> slowest answer (a figure, no goal): {max(hangs):.4f} s "
                      f"vs {ROUTER_TIMEOUT + GOAL_FALLBACK_RATIO * hang_rest_s:.4f} s")
                figures["hang_answer_s"] = (statistics.median(hangs), f"median of {len(hangs)}"
                                            f", slowest {max(hangs):.4f} s")

            levels.settle(Level.NORMAL)
            hits, calls = cache_hits_us(system, n["hits"])
            if hits:
                hit_us = statistics.median(hits)
                print(f"cache-hit get_ticker([{CACHED}]): median {hit_us:.1f} µs, p99 "
                      f"{statistics.quantiles(hits, n=100)[-1]:.1f} µs; {len(hits):,} hits "
                      f"of {calls:,} calls")
                figures["cache_hit_vs_ask"] = (hit_us / ask_us,
                                               f"{hit_us:.1f} / {ask_us:.1f} µs")

            levels.settle(Level.NORMAL)
            injected = time.monotonic()
            system.faults.inject("smart_router", "crash", point="request")
            at2 = levels.wait_for(Level.FALLBACK, injected)
            if at2 is not None:
                took = at2 - injected
                reason = next(c.reason for at, c in levels.seen
                              if at == at2 and c.new is Level.FALLBACK)
                print(f"router crash -> Level 2 in {took:.3f} s "
                      f"({took / PROBE_INTERVAL:.2f} probe intervals): {reason}")
                figures["death_to_level2_intervals"] = (
                    took / PROBE_INTERVAL, f"{took:.3f} s / {PROBE_INTERVAL} s")
                time.sleep(PROBE_INTERVAL)  # let the crash loop run a little
                cleared = time.monotonic()
                system.faults.clear_all()
                at0 = levels.wait_for(Level.NORMAL, cleared)
                if at0 is not None:
                    print(f"fault cleared -> Level 0 in {at0 - cleared:.3f} s "
                          f"(bound {RECOVERY_BOUND:g} s)")
                    figures["cleared_to_level0_s"] = (at0 - cleared, "")
            for at, change in levels.seen:
                print(f"  {at - started:8.3f} s  level {int(change.old)} -> {int(change.new)}: "
                      f"{change.reason}")
        finally:
            system.stop()
            client.close()
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=10)

    hang_goal = ROUTER_TIMEOUT + GOAL_FALLBACK_RATIO * hang_rest_s  # this machine's REST
    goals = [replace(goal, target=hang_goal) if goal.name == "hang_answer_s" else goal
             for goal in GOALS]
    verdict = Verdict("bench_facade", goals, overrides)
    for name, (measured, detail) in figures.items():
        verdict.check(name, measured, detail)
    return verdict.finish()


if __name__ == "__main__":
    raise SystemExit(main())
