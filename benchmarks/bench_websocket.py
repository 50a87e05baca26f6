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
ticker, trade and orderbook (15 rows). Goal: (b) >= 0.8 x (a) and >= 20k frames/s.
Each figure is the median of ROUNDS runs. Bounded: every wait has a deadline.

Run: .venv/bin/python benchmarks/bench_websocket.py [frames_per_run]
"""

from __future__ import annotations

import json
import multiprocessing as mp
import statistics
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection

import requests
import websocket

from quotation.websocket.client import (
    ConnectionState,
    WebSocketClient,
    WebSocketConfig,
    WebSocketLike,
)
from quotation.websocket.subscription import DataType, Subscription, WsFormat, build_request

MARKET = "KRW-BTC"
FRAMES = int(sys.argv[1]) if len(sys.argv) > 1 else 150_000
ROUNDS = 3
DEADLINE = 60.0
BUDGET = 110.0  # seconds for the whole run; later measurements are skipped beyond it

WORKLOADS: dict[str, tuple[WsFormat, tuple[Subscription, ...]]] = {
    "trade/DEFAULT": (
        WsFormat.DEFAULT,
        (Subscription(DataType.TRADE, (MARKET,), is_only_realtime=True),),
    ),
    "ticker+trade+orderbook15/SIMPLE": (
        WsFormat.SIMPLE,
        (
            Subscription(DataType.TICKER, (MARKET,), is_only_realtime=True),
            Subscription(DataType.TRADE, (MARKET,), is_only_realtime=True),
            Subscription(DataType.ORDERBOOK, (MARKET,), is_only_realtime=True, depth=15),
        ),
    ),
}


def _serve(conn: Connection) -> None:
    from upbit_sim import Simulator  # noqa: PLC0415 - child process only

    with Simulator(seed=1, auto_trade=False, rate_limit=None) as sim:
        conn.send(sim.port)
        conn.recv()  # any message: stop


class Bench:
    def __init__(self, port: int) -> None:
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
            self.burst(FRAMES)
            json.loads(conn.recv())
            start = time.perf_counter()
            for _ in range(FRAMES - 1):
                json.loads(conn.recv())
            elapsed = time.perf_counter() - start
        finally:
            conn.close(timeout=0)
        return (FRAMES - 1) / elapsed

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
            self.burst(FRAMES)
            if not client.wait_until(lambda s: s.frames >= FRAMES, DEADLINE):
                raise RuntimeError(f"burst incomplete: {client.status()}")
            status = client.status()
            if status.malformed or status.messages != FRAMES:
                raise RuntimeError(f"unexpected counts: {status}")
            cache = client.cache
            last = max(at for sub in subs if (at := cache.updated_at(sub.type, MARKET)) is not None)
            first = status.live_at
            assert first is not None
            if consumer and not client.flush(DEADLINE):
                raise RuntimeError("consumer did not get everything")
        finally:
            client.stop()
        if consumer and delivered[0] != FRAMES:
            raise RuntimeError(f"consumer got {delivered[0]} of {FRAMES}")
        return (FRAMES - 1) / (last - first)


def main() -> None:
    started = time.monotonic()
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_serve, args=(child,), daemon=True)
    server.start()
    try:
        if not parent.poll(30):
            raise RuntimeError("simulator did not start")
        bench = Bench(parent.recv())
        print(f"frames per run: {FRAMES:,}; median of {ROUNDS} runs; simulator in a child process")
        ok = True
        for name, (fmt, subs) in WORKLOADS.items():
            bare: list[float] = []
            ours: list[float] = []
            for _ in range(ROUNDS):
                if time.monotonic() - started > BUDGET:
                    break
                bare.append(bench.bare(fmt, subs))
                ours.append(bench.ours(fmt, subs))
            a = statistics.median(bare)
            b = statistics.median(ours)
            extra = ""
            if time.monotonic() - started < BUDGET:
                b0 = bench.ours(fmt, subs, plain_transport=True)
                c = bench.ours(fmt, subs, consumer=True)
                extra = (
                    f"\n  (b0) ours, plain websocket-client transport: {b0:>9,.0f} frames/s"
                    f"  ({b0 / a:.2f} x a)"
                    f"\n  (c)  ours + one batch consumer:              {c:>9,.0f} frames/s"
                    f"  ({c / a:.2f} x a)"
                )
            goal = b >= 0.8 * a and b >= 20_000
            ok = ok and goal
            print(
                f"{name}:"
                f"\n  (a)  bare websocket-client + json.loads:     {a:>9,.0f} frames/s"
                f"\n  (b)  ours: canonical objects into the cache: {b:>9,.0f} frames/s"
                f"\n  ratio (b)/(a) = {b / a:.2f}   goal (b) >= 0.8 x (a) and >= 20k/s: "
                f"{'met' if goal else 'NOT met'}{extra}"
            )
        print(f"total {time.monotonic() - started:.1f} s; goals {'met' if ok else 'NOT met'}")
    finally:
        parent.send("stop")
        server.join(15)
        if server.is_alive():
            server.terminate()


if __name__ == "__main__":
    main()
