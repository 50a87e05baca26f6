"""WebSocket ingest throughput: bare websocket-client + json.loads vs our client into its cache.

Starts the simulator in a child process (so its event loop does not share this
process's GIL), subscribes, asks for a burst of N frames (``sim.ws.burst``, as
fast as the socket drains) and measures frames per second from the first to
the last frame received:

  (a)  bare ``websocket-client``: ``create_connection`` + ``recv()`` + ``json.loads`` loop
  (b)  ``WebSocketClient``: orjson + ``parse_ws_message`` + dedup + ``StreamCache``
  (b0) as (b) on plain ``websocket.WebSocket`` (no read-ahead), for comparison
  (c)  as (b) plus one batch consumer (the hand-off a pykka actor would get)

Two workloads: DEFAULT-format trades (one market), and a SIMPLE-format mix of
ticker, trade and orderbook (15 rows). Bounded: every wait has a deadline.

Every workload always runs: (a), (b), (b0) and (c) once each, then more rounds of (a)
and (b) while the workload's share of the time budget (110 s in all) allows, up to 3;
(a) and (b) are the medians of the rounds run, and the output says how many that was.
A slow machine gets fewer rounds, never none. A workload that fails is reported, its
goals count as missed, and the others still run.

Goals per workload (the verdict, printed last; exit status 1 on a miss, see ``_goals``):
``<workload>_ratio`` >= 0.8, (b) / (a); ``<workload>_frames_per_s`` >= 20,000 for (b),
the ingest goal of issue 3. Workloads: ``trade_default``, ``mix_simple``.

Run: ``.venv/bin/python benchmarks/bench_websocket.py [frames_per_run] [--rounds N]
[--budget S] [--quick] [--goal NAME=VALUE ...]`` (``--quick``: 5,000 frames, 1 round,
a smoke test).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection

import requests
import websocket
from _goals import AT_LEAST, Goal, Verdict, add_goal_arguments, goal_overrides

from quotation.websocket.client import (
    ConnectionState,
    WebSocketClient,
    WebSocketConfig,
    WebSocketLike,
)
from quotation.websocket.subscription import DataType, Subscription, WsFormat, build_request

MARKET = "KRW-BTC"
FRAMES, ROUNDS = 150_000, 3
QUICK_FRAMES, QUICK_ROUNDS = 5_000, 1
DEADLINE = 60.0
BUDGET = 110.0  # seconds for the whole run: rounds beyond the first are dropped to keep it
GOAL_RATIO = 0.8
GOAL_FRAMES_PER_S = 20_000

WORKLOADS: dict[str, tuple[WsFormat, tuple[Subscription, ...]]] = {
    "trade_default": (
        WsFormat.DEFAULT,
        (Subscription(DataType.TRADE, (MARKET,), is_only_realtime=True),),
    ),
    "mix_simple": (
        WsFormat.SIMPLE,
        (
            Subscription(DataType.TICKER, (MARKET,), is_only_realtime=True),
            Subscription(DataType.TRADE, (MARKET,), is_only_realtime=True),
            Subscription(DataType.ORDERBOOK, (MARKET,), is_only_realtime=True, depth=15),
        ),
    ),
}


LABELS = {"trade_default": "trade/DEFAULT", "mix_simple": "ticker+trade+orderbook15/SIMPLE"}
GOALS = tuple(
    goal
    for name, label in LABELS.items()
    for goal in (
        Goal(f"{name}_ratio", AT_LEAST, GOAL_RATIO, "x", f"{label}: (b) ours / (a) bare"),
        Goal(f"{name}_frames_per_s", AT_LEAST, GOAL_FRAMES_PER_S, "/s", f"{label}: (b) ours"),
    )
)


def _serve(conn: Connection) -> None:
    from upbit_sim import Simulator  # noqa: PLC0415 - child process only

    with Simulator(seed=1, auto_trade=False, rate_limit=None) as sim:
        conn.send(sim.port)
        conn.recv()  # any message: stop


class Bench:
    def __init__(self, port: int, frames: int) -> None:
        self.frames = frames
        self.ws_url = f"ws://127.0.0.1:{port}/websocket/v1"
        self.control = f"http://127.0.0.1:{port}/_sim/ws"

    def wait_subscribed(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if requests.get(f"{self.control}/status", timeout=5).json()["subscribed"] == 1:
                return
            time.sleep(0.01)
        raise RuntimeError("subscription did not reach the simulator")

    def burst(self, count: int) -> None:
        answer = requests.post(f"{self.control}/burst", params={"count": count}, timeout=5)
        if answer.json().get("sessions") != 1:
            raise RuntimeError(f"burst did not start: {answer.text}")

    def bare(self, fmt: WsFormat, subs: tuple[Subscription, ...]) -> float:
        conn = websocket.create_connection(self.ws_url, timeout=DEADLINE, suppress_origin=True)
        try:
            conn.send(build_request(subs, ticket="bench", fmt=fmt))
            self.wait_subscribed()
            self.burst(self.frames)
            json.loads(conn.recv())
            start = time.perf_counter()
            for _ in range(self.frames - 1):
                json.loads(conn.recv())
            elapsed = time.perf_counter() - start
        finally:
            conn.close(timeout=0)
        return (self.frames - 1) / elapsed

    def ours(
        self,
        fmt: WsFormat,
        subs: tuple[Subscription, ...],
        *,
        plain_transport: bool = False,
        consumer: bool = False,
    ) -> float:
        config = WebSocketConfig(subscriptions=subs, url=self.ws_url, format=fmt)
        connector: Callable[[str, float], WebSocketLike] | None = None
        if plain_transport:

            def connector(url: str, timeout: float) -> WebSocketLike:
                conn: WebSocketLike = websocket.create_connection(
                    url, timeout=timeout, suppress_origin=True, skip_utf8_validation=True
                )
                return conn

        client = WebSocketClient(config, connector=connector)
        delivered = [0]
        lock = threading.Lock()
        if consumer:

            def count(batch: tuple[object, ...]) -> None:
                with lock:
                    delivered[0] += len(batch)

            client.add_consumer(count)
        client.start()
        try:
            if not client.wait_until(lambda s: s.state is ConnectionState.SUBSCRIBED, 10):
                raise RuntimeError(f"client did not subscribe: {client.status()}")
            self.wait_subscribed()
            self.burst(self.frames)
            if not client.wait_until(lambda s: s.frames >= self.frames, DEADLINE):
                raise RuntimeError(f"burst incomplete: {client.status()}")
            status = client.status()
            if status.malformed or status.messages != self.frames:
                raise RuntimeError(f"unexpected counts: {status}")
            cache = client.cache
            last = max(at for sub in subs if (at := cache.updated_at(sub.type, MARKET)) is not None)
            first = status.live_at
            assert first is not None
            if consumer and not client.flush(DEADLINE):
                raise RuntimeError("consumer did not get everything")
        finally:
            client.stop()
        if consumer and delivered[0] != self.frames:
            raise RuntimeError(f"consumer got {delivered[0]} of {self.frames}")
        return (self.frames - 1) / (last - first)


def run_workload(bench: Bench, name: str, rounds: int, deadline: float, verdict: Verdict) -> None:
    """One workload: every side once, then more rounds of (a) and (b) until ``deadline``."""
    fmt, subs = WORKLOADS[name]
    began = time.monotonic()
    bare = [bench.bare(fmt, subs)]
    ours = [bench.ours(fmt, subs)]
    one_round = time.monotonic() - began  # what one more round of (a) and (b) will take
    b0 = bench.ours(fmt, subs, plain_transport=True)
    c = bench.ours(fmt, subs, consumer=True)
    while len(bare) < rounds and time.monotonic() + one_round <= deadline:
        bare.append(bench.bare(fmt, subs))
        ours.append(bench.ours(fmt, subs))
    a = statistics.median(bare)
    b = statistics.median(ours)
    ran = f"median of {len(bare)} of {rounds} rounds"
    if len(bare) < rounds:
        ran += " (the time budget cut the rest)"
    print(
        f"{LABELS[name]}: {ran}; (b0) and (c) once"
        f"\n  (a)  bare websocket-client + json.loads:     {a:>9,.0f} frames/s"
        f"\n  (b)  ours: canonical objects into the cache: {b:>9,.0f} frames/s"
        f"  ({b / a:.2f} x a)"
        f"\n  (b0) ours, plain websocket-client transport: {b0:>9,.0f} frames/s"
        f"  ({b0 / a:.2f} x a)"
        f"\n  (c)  ours + one batch consumer:              {c:>9,.0f} frames/s"
        f"  ({c / a:.2f} x a)",
        flush=True,
    )
    figures = f"{b:,.0f} / {a:,.0f} frames/s, {ran}"
    verdict.check(f"{name}_ratio", b / a, figures)
    verdict.check(f"{name}_frames_per_s", b, ran)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("frames", type=int, nargs="?", help=f"frames per run (default {FRAMES:,})")
    parser.add_argument("--rounds", type=int, help=f"rounds of (a) and (b) at most ({ROUNDS})")
    parser.add_argument(
        "--budget", type=float, default=BUDGET, help=f"seconds in all (default {BUDGET:.0f})"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_FRAMES:,} frames, {QUICK_ROUNDS} round (a smoke test)",
    )
    add_goal_arguments(parser)
    args = parser.parse_args()
    verdict = Verdict("bench_websocket", GOALS, goal_overrides(parser, args, GOALS))
    frames: int = args.frames or (QUICK_FRAMES if args.quick else FRAMES)
    rounds: int = args.rounds or (QUICK_ROUNDS if args.quick else ROUNDS)
    if frames < 2 or rounds < 1:
        parser.error("frames_per_run must be at least 2 and --rounds at least 1")

    started = time.monotonic()
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_serve, args=(child,), daemon=True)
    server.start()
    try:
        if not parent.poll(30):
            print("simulator did not start", file=sys.stderr)
            return verdict.finish()  # nothing measured: every goal missed
        bench = Bench(parent.recv(), frames)
        print(
            f"frames per run: {frames:,}; rounds: up to {rounds} within {args.budget:g} s; "
            "simulator in a child process",
            flush=True,
        )
        for index, name in enumerate(WORKLOADS):
            share = (args.budget - (time.monotonic() - started)) / (len(WORKLOADS) - index)
            try:
                run_workload(bench, name, rounds, time.monotonic() + share, verdict)
            except Exception:
                print(f"{LABELS[name]}: FAILED, its goals count as missed", flush=True)
                traceback.print_exc()
    finally:
        parent.send("stop")
        server.join(15)
        if server.is_alive():
            server.terminate()
    print(f"total {time.monotonic() - started:.1f} s")
    return verdict.finish()


if __name__ == "__main__":
    sys.exit(main())
