"""Supervisor benchmark: restart latency, and RSS / threads after 10,000 restarts.

Restart latency is measured from the crash (a ``tell`` that makes the child raise) to the
replacement answering an ``ask`` sent right behind the crash through the child's stable
handle -- that ask waits in the dead instance's inbox, is moved to the replacement, and is
answered by it. Goals: median <= 2 ms, RSS growth <= 5 MB, threads back to baseline.

Run: ``.venv/bin/python benchmarks/bench_supervisor.py [--restarts N]``
"""

from __future__ import annotations

import argparse
import gc
import logging
import statistics
import threading
import time
from typing import Any

import psutil
import pykka

from supervisors import ChildSpec, SupervisorFlags, SupervisorHandle

GOAL_MEDIAN_MS = 2.0
GOAL_RSS_MB = 5.0
WARMUP = 200


class Crashy(pykka.ThreadingActor):
    """A plain pykka actor: ``"crash"`` raises, ``"ping"`` answers."""

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("crash on purpose")
        return "pong"


def _rss_mb(process: psutil.Process) -> float:
    gc.collect()
    return float(process.memory_info().rss) / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restarts", type=int, default=10_000)
    args = parser.parse_args()
    restarts: int = args.restarts
    # A script may configure logging: every crash is an ERROR report we do not want printed.
    logging.basicConfig(level=logging.CRITICAL)

    process = psutil.Process()
    threads_before = set(threading.enumerate())
    rss_start = _rss_mb(process)
    sup = SupervisorHandle.start(
        SupervisorFlags(intensity=restarts + WARMUP + 1, period=5.0),
        [ChildSpec(id="crashy", start=Crashy)],
        name="bench",
    )
    handle = sup.child("crashy")
    handle.ask("ping", timeout=5)
    for _ in range(WARMUP):
        handle.tell("crash")
        handle.ask("ping", timeout=5)
    rss_warm = _rss_mb(process)

    latencies: list[float] = []
    started = time.perf_counter()
    for _ in range(restarts):
        t0 = time.perf_counter()
        handle.tell("crash")
        handle.ask("ping", timeout=5)
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    rss_end = _rss_mb(process)
    registered = len(pykka.ActorRegistry.get_all())

    sup.stop(timeout=10)
    for thread in set(threading.enumerate()) - threads_before:
        thread.join(timeout=5)
    threads_after = len(threading.enumerate())

    latencies.sort()
    median_ms = statistics.median(latencies) * 1000
    p99_ms = latencies[int(len(latencies) * 0.99) - 1] * 1000
    growth = rss_end - rss_warm
    growth_total = rss_end - rss_start
    print(f"restarts: {restarts} (+{WARMUP} warm-up) in {elapsed:.2f} s "
          f"({restarts / elapsed:,.0f} restarts/s)")
    print(f"restart latency (crash -> replacement answering): median {median_ms:.3f} ms, "
          f"p99 {p99_ms:.3f} ms, max {latencies[-1] * 1000:.3f} ms")
    print(f"  median vs goal {GOAL_MEDIAN_MS} ms: {median_ms / GOAL_MEDIAN_MS:.2f}x of budget")
    print(f"RSS: {rss_start:.1f} MB at start, {rss_warm:.1f} MB after warm-up, "
          f"{rss_end:.1f} MB after {restarts} restarts")
    print(f"  growth over the {restarts} restarts: {growth:+.2f} MB "
          f"({growth / GOAL_RSS_MB:.2f}x of the {GOAL_RSS_MB} MB budget); "
          f"from start incl. warm-up: {growth_total:+.2f} MB")
    print(f"actors registered after the restarts: {registered} (supervisor + 1 child)")
    print(f"threads: {len(threads_before)} before, {threads_after} after stop "
          f"({'back to baseline' if threads_after == len(threads_before) else 'NOT at baseline'})")
    ok = median_ms <= GOAL_MEDIAN_MS and growth <= GOAL_RSS_MB and (
        threads_after == len(threads_before))
    print("goals:", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
