"""One trading host for the shared-budget burst test, run as its own process.

``python -m tests.quotation.rest._burst_host BASE_URL MODE REDIS_URL PREFIX HOSTS``: once all
``HOSTS`` hosts are ready (a barrier in Redis: each ``INCR``s ``PREFIX:burst:ready`` and waits,
at most 20 s, until it reaches ``HOSTS``; a slow start of one host cannot make the three run
one after another), it asks ``/ticker`` 20 times a second for 5 s (one request every
50 ms, each allowed 40 ms of limiter wait, no 429 retry) through its own ``RestClient`` on a
``RedisRateLimiter`` (``MODE`` = ``redis``) or a process limiter of its own (``local``, the
control), and prints one JSON line: answers, server 429s, 418s, local refusals, other errors.
"""

from __future__ import annotations

import json
import sys
import time

import redis

from quotation.errors import Banned, QuotationError, RateLimited
from quotation.rest import RateLimiter, RestClient, RestConfig
from quotation.rest.ratelimit_redis import RedisRateLimiter

__all__ = ["main"]

RATE = 20
SECONDS = 5.0
BARRIER_TIMEOUT = 20.0
BARRIER_POLL = 0.005


def _barrier(redis_url: str, key: str, hosts: int) -> bool:
    """Count this host in and wait (bounded) until ``hosts`` are; ``False`` if they never are."""
    client = redis.Redis.from_url(redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
    try:
        client.incr(key)
        client.pexpire(key, 60_000)
        for _ in range(int(BARRIER_TIMEOUT / BARRIER_POLL)):
            if int(client.get(key) or 0) >= hosts:
                return True
            time.sleep(BARRIER_POLL)
        return False
    finally:
        client.close()


def main(argv: list[str]) -> int:
    base_url, mode, redis_url, prefix, hosts = argv
    limiter = (RedisRateLimiter(redis_url, prefix=prefix) if mode == "redis" else RateLimiter())
    config = RestConfig(base_url=base_url, rate_limit_retries=0, max_wait=0.04)
    counts = {"ok": 0, "http_429": 0, "http_418": 0, "refused_locally": 0, "other": 0}
    with RestClient(config, limiter=limiter) as client:
        client.get_markets()  # warm the connection (market group, not the one measured)
        if not _barrier(redis_url, f"{prefix}:burst:ready", int(hosts)):
            print(f"the other hosts were not ready within {BARRIER_TIMEOUT} s", file=sys.stderr)
            return 1
        started = time.monotonic()
        for index in range(int(RATE * SECONDS)):
            time.sleep(max(0.0, started + index / RATE - time.monotonic()))
            try:
                client.get_tickers("KRW-BTC")
            except Banned:
                counts["http_418"] += 1
            except RateLimited as exc:
                counts["http_429" if "HTTP 429" in str(exc) else "refused_locally"] += 1
            except QuotationError:
                counts["other"] += 1
            else:
                counts["ok"] += 1
    print(json.dumps(counts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
