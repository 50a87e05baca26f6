"""Client overhead: a ticker call through RestClient vs a bare requests.Session().get.

Run: ``.venv/bin/python benchmarks/bench_rest.py [--calls N] [--quick] [--goal NAME=VALUE ...]``
(``--quick``: 200 calls per side after 30 warm-up, a smoke test).

Starts its own simulator in a child process (so the server does not share this
process's GIL), with its rate limit raised to 1,000,000 req/s so that neither
side is throttled: the point is the client's own cost. The client still runs its
whole path — validation, the rate limiter (acquire, release, Remaining-Req
parsing and correction, with ``per_second`` raised to match), error mapping,
JSON decoding and parsing into ``Ticker`` models — so that cost is included.
The bare side is ``session.get(url, timeout=...)`` on a kept-alive session,
which reads the body but does not decode it. Calls alternate between the two
sides so drift in the machine's load hits both alike.

Goal (the verdict, printed last; exit status 1 on a miss, see ``_goals``):
``rest_median_ratio`` <= 1.15, the client's median call over the bare side's. The p99
ratio is printed but not held to a goal: it swings 0.9-1.75 with the machine's load.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import requests
from _goals import AT_MOST, Goal, Verdict, add_goal_arguments, goal_overrides

from quotation.rest.client import RestClient, RestConfig
from quotation.rest.ratelimit import RateLimiter

RAISED_LIMIT = 1_000_000
MARKET = "KRW-BTC"
GOAL_MEDIAN_RATIO = 1.15
GOALS = (
    Goal("rest_median_ratio", AT_MOST, GOAL_MEDIAN_RATIO, "x",
         "RestClient.get_tickers / bare Session.get, median latency"),
)  # fmt: skip
CALLS, WARMUP, LIMITER_CALLS = 3000, 300, 20_000
QUICK_CALLS, QUICK_WARMUP, QUICK_LIMITER_CALLS = 200, 30, 2_000

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


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def measure(call: Callable[[], object]) -> float:
    started = time.perf_counter_ns()
    call()
    return (time.perf_counter_ns() - started) / 1000.0  # µs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, help=f"measured calls per side (default {CALLS})")
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
    limiter_calls = QUICK_LIMITER_CALLS if args.quick else LIMITER_CALLS

    root = Path(__file__).resolve().parent.parent
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
    )
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()
        if not base_url.startswith("http://127.0.0.1:"):
            print(f"simulator did not start (got {base_url!r})", file=sys.stderr)
            return verdict.finish()  # nothing measured: every goal missed
        config = RestConfig(base_url=base_url)
        limiter = RateLimiter(per_second=RAISED_LIMIT)
        client = RestClient(config, limiter=limiter)
        bare = requests.Session()
        url = f"{base_url}/ticker?markets={MARKET}"
        timeout = (config.connect_timeout, config.read_timeout)

        def through_client() -> object:
            return client.get_tickers(MARKET)

        def bare_get() -> object:
            return bare.get(url, timeout=timeout)

        def bare_get_json() -> object:
            return orjson.loads(bare.get(url, timeout=timeout).content)

        sides: dict[str, Callable[[], object]] = {
            "RestClient.get_tickers": through_client,
            "bare Session.get": bare_get,
            "bare Session.get + orjson": bare_get_json,
        }
        assert isinstance(through_client(), list)
        assert bare_get().status_code == 200  # type: ignore[attr-defined]
        for _ in range(warmup):
            for call in sides.values():
                call()
        samples: dict[str, list[float]] = {name: [] for name in sides}
        names = list(sides)
        started = time.monotonic()
        for index in range(calls):
            order = names if index % 2 == 0 else names[::-1]
            for name in order:
                samples[name].append(measure(sides[name]))
        wall = time.monotonic() - started

        limiter_cost = []
        for _ in range(limiter_calls):
            t0 = time.perf_counter_ns()
            limiter.acquire("bench").release(None, success=True)
            limiter_cost.append((time.perf_counter_ns() - t0) / 1000.0)

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

    print("bench_rest: ticker call latency, client vs bare requests (µs)")
    print(
        f"simulator: child process, seed 1, auto_trade off, rate limit RAISED to "
        f"{RAISED_LIMIT:,} req/s (limiter per_second raised to match; its cost is included)"
    )
    print(f"calls per side: {calls} (after {warmup} warm-up), wall {wall:.1f} s")
    print(f"{'side':<28}{'median':>10}{'p99':>10}{'mean':>10}")
    stats: dict[str, tuple[float, float]] = {}
    for name, values in samples.items():
        values.sort()
        median = statistics.median(values)
        p99 = percentile(values, 0.99)
        stats[name] = (median, p99)
        print(f"{name:<28}{median:>10.1f}{p99:>10.1f}{statistics.fmean(values):>10.1f}")
    limiter_cost.sort()
    print(
        f"{'limiter acquire+release':<28}{statistics.median(limiter_cost):>10.1f}"
        f"{percentile(limiter_cost, 0.99):>10.1f}"
    )
    client_median, client_p99 = stats["RestClient.get_tickers"]
    bare_median, bare_p99 = stats["bare Session.get"]
    ratio_median = client_median / bare_median
    ratio_p99 = client_p99 / bare_p99
    json_median = stats["bare Session.get + orjson"][0]
    print(f"overhead ratio client/bare: median {ratio_median:.3f}, p99 {ratio_p99:.3f}")
    print(f"overhead ratio client/(bare + orjson): median {client_median / json_median:.3f}")
    verdict.check(
        "rest_median_ratio",
        ratio_median,
        f"{client_median:.0f} / {bare_median:.0f} µs over {calls} calls per side",
    )
    return verdict.finish()


if __name__ == "__main__":
    sys.exit(main())
