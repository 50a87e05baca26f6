"""REST at wire speed: each endpoint through RestClient vs bare Session.get + orjson.loads.

Run: ``.venv/bin/python benchmarks/bench_rest.py [--calls N] [--warmup N] [--quick]
[--goal NAME=VALUE ...]`` (``--quick``: 40 calls per side and endpoint after 10 warm-up,
a smoke test).

Starts its own simulator in a child process (so the server does not share this
process's GIL), with its rate limit raised to 1,000,000 req/s so that neither side is
throttled: the point is the client's own cost. Per endpoint — a 1-market ticker, 200
one-minute candles, 100 trades, a 1-market order book (30 levels, Upbit's default
depth) and a 100-market order book — the client runs its whole path (validation, the
rate limiter in full with ``per_second`` raised to match, the deadline and body-size
reads, error mapping, JSON decoding, parsing into the model; ``get_candles`` also
re-orders oldest first), and the bare side is ``orjson.loads(session.get(url).content)``
on a kept-alive session and the same URL (``Session.get`` reads the environment's proxy
settings again on every call, about 90 µs; the client read them once, when it was built).
Calls alternate between the two sides (and their order flips every call) so drift in the
machine's load hits both alike.

Beside each ratio: the parse alone (``quotation.parsing``) on a body captured from that
endpoint, median µs over many runs.

Goals (the verdict, printed last; exit status 1 on a miss, see ``_goals``):
``<endpoint>_ratio`` <= 1.15 for each endpoint (client median / bare median);
``candles200_parse_us`` <= 600 (a popular multi-exchange library parses 200 candles in
1.9 ms on this machine) and ``orderbook30_parse_us`` <= 25 (it takes 52 µs for one book).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import requests
from _goals import AT_MOST, Goal, Verdict, add_goal_arguments, goal_overrides

from quotation.models import CandleInterval
from quotation.parsing import parse_candles, parse_orderbooks, parse_tickers, parse_trades
from quotation.rest.client import RestClient, RestConfig
from quotation.rest.ratelimit import RateLimiter

RAISED_LIMIT = 1_000_000
MARKET = "KRW-BTC"
GOAL_RATIO = 1.15
GOAL_CANDLES_PARSE_US = 600.0
GOAL_BOOK_PARSE_US = 25.0
ENDPOINTS = ("ticker", "candles200", "trades100", "orderbook1", "orderbook100")
GOALS = (
    *(Goal(f"{name}_ratio", AT_MOST, GOAL_RATIO, "x",
           f"{name}: RestClient / bare Session.get + orjson.loads, median")
      for name in ENDPOINTS),
    Goal("candles200_parse_us", AT_MOST, GOAL_CANDLES_PARSE_US, "us",
         "parse_candles, 200 one-minute candles, median"),
    Goal("orderbook30_parse_us", AT_MOST, GOAL_BOOK_PARSE_US, "us",
         "parse_orderbooks, one 30-level book, median"),
)  # fmt: skip
CALLS, WARMUP = 600, 60
QUICK_CALLS, QUICK_WARMUP = 40, 10
PARSE_BUDGET_S, QUICK_PARSE_BUDGET_S = 1.0, 0.1

_SERVER = f"""
import sys
from upbit_sim import Simulator
from upbit_sim.limits import RateLimitPolicy
sim = Simulator(seed=1, auto_trade=False, rate_limit=RateLimitPolicy(per_second={RAISED_LIMIT}))
sim.start()
print(sim.base_url, flush=True)
sys.stdin.read()
sim.stop()
"""


@dataclass(frozen=True)
class Endpoint:
    """One workload: the client call, the same request bare, and the parser of its body."""

    name: str
    client_call: Callable[[], list[Any]]
    path: str
    parse: Callable[[Any], list[Any]]
    items: int


def measure(call: Callable[[], object]) -> float:
    started = time.perf_counter_ns()
    call()
    return (time.perf_counter_ns() - started) / 1000.0  # µs


def parse_median_us(parse: Callable[[Any], object], payload: Any, budget_s: float) -> float:
    """Median µs of ``parse(payload)``, run for about ``budget_s`` (at least 20 times)."""
    samples: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(samples) < 20 or time.perf_counter() < deadline:
        samples.append(measure(lambda: parse(payload)))
    return statistics.median(samples)


def endpoints(client: RestClient, markets: list[str]) -> list[Endpoint]:
    book_markets = markets[:100]
    return [
        Endpoint("ticker", lambda: client.get_tickers(MARKET),
                 f"/ticker?markets={MARKET}", parse_tickers, 1),
        Endpoint("candles200", lambda: client.get_candles(MARKET, "1m", count=200),
                 f"/candles/minutes/1?market={MARKET}&count=200",
                 lambda p: parse_candles(p, CandleInterval.MINUTE_1), 200),
        Endpoint("trades100", lambda: client.get_trades(MARKET, count=100),
                 f"/trades/ticks?market={MARKET}&count=100", parse_trades, 100),
        Endpoint("orderbook1", lambda: client.get_orderbooks(MARKET),
                 f"/orderbook?markets={MARKET}", parse_orderbooks, 1),
        Endpoint("orderbook100", lambda: client.get_orderbooks(book_markets),
                 f"/orderbook?markets={','.join(book_markets)}", parse_orderbooks, 100),
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--calls", type=int, help=f"measured calls per side and endpoint (default {CALLS})"
    )
    parser.add_argument("--warmup", type=int, help=f"warm-up calls per side (default {WARMUP})")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_CALLS} calls per side after {QUICK_WARMUP} warm-up (a smoke test)",
    )
    add_goal_arguments(parser)
    args = parser.parse_args()
    verdict = Verdict("bench_rest", GOALS, goal_overrides(parser, args, GOALS))
    calls: int = args.calls or (QUICK_CALLS if args.quick else CALLS)
    warmup: int = (
        args.warmup if args.warmup is not None else (QUICK_WARMUP if args.quick else WARMUP)
    )
    parse_budget = QUICK_PARSE_BUDGET_S if args.quick else PARSE_BUDGET_S

    root = Path(__file__).resolve().parent.parent
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
    )
    rows: list[tuple[Endpoint, float, float, float]] = []
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()
        if not base_url.startswith("http://127.0.0.1:"):
            print(f"simulator did not start (got {base_url!r})", file=sys.stderr)
            return verdict.finish()  # nothing measured: every goal missed
        config = RestConfig(base_url=base_url)
        client = RestClient(config, limiter=RateLimiter(per_second=RAISED_LIMIT))
        bare = requests.Session()
        timeout = (config.connect_timeout, config.read_timeout)
        markets = [market.market for market in client.get_markets()]
        started = time.monotonic()
        for endpoint in endpoints(client, markets):
            url = base_url + endpoint.path

            def bare_call(url: str = url) -> object:
                return orjson.loads(bare.get(url, timeout=timeout).content)

            payload = bare_call()
            parsed = endpoint.parse(payload)
            assert len(parsed) == len(endpoint.client_call()) == endpoint.items, endpoint.name
            if endpoint.name == "orderbook1":
                assert len(parsed[0].levels) == 30, "the simulator's default depth is 30"
            sides: dict[str, Callable[[], object]] = {
                "client": endpoint.client_call,
                "bare": bare_call,
            }
            for _ in range(warmup):
                for call in sides.values():
                    call()
            samples: dict[str, list[float]] = {"client": [], "bare": []}
            for index in range(calls):
                for name in ("client", "bare") if index % 2 == 0 else ("bare", "client"):
                    samples[name].append(measure(sides[name]))
            parse_us = parse_median_us(endpoint.parse, payload, parse_budget)
            rows.append(
                (
                    endpoint,
                    statistics.median(samples["client"]),
                    statistics.median(samples["bare"]),
                    parse_us,
                )
            )
        wall = time.monotonic() - started
        client.close()
        bare.close()
    finally:
        if server.stdin is not None:
            server.stdin.close()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)

    print("bench_rest: median call through RestClient vs bare Session.get + orjson.loads (µs)")
    print(
        f"simulator: child process, seed 1, auto_trade off, rate limit RAISED to "
        f"{RAISED_LIMIT:,} req/s (limiter per_second raised to match; its cost is included)"
    )
    print(f"calls per side and endpoint: {calls} (after {warmup} warm-up), wall {wall:.1f} s")
    print(f"{'endpoint':<14}{'client':>10}{'bare':>10}{'ratio':>8}{'parse':>10}{'parse/item':>12}")
    for endpoint, client_us, bare_us, parse_us in rows:
        per_item = parse_us / endpoint.items
        print(
            f"{endpoint.name:<14}{client_us:>10.0f}{bare_us:>10.0f}{client_us / bare_us:>8.3f}"
            f"{parse_us:>10.1f}{per_item:>12.2f}"
        )
        verdict.check(
            f"{endpoint.name}_ratio",
            client_us / bare_us,
            f"{client_us:.0f} / {bare_us:.0f} µs, parse {parse_us:.1f} µs",
        )
        if endpoint.name == "candles200":
            verdict.check("candles200_parse_us", parse_us, "200 one-minute candles")
        if endpoint.name == "orderbook1":
            verdict.check("orderbook30_parse_us", parse_us, "one book of 30 levels")
    return verdict.finish()


if __name__ == "__main__":
    sys.exit(main())
