"""One trading host for the shared-budget burst test, run as its own process.

``python -m tests.quotation.rest._burst_host BASE_URL MODE REDIS_URL PREFIX START_AT``:
from wall time ``START_AT`` it asks ``/ticker`` 20 times a second for 5 s (one request every
50 ms, each allowed 40 ms of limiter wait, no 429 retry) through its own ``RestClient`` on a
``RedisRateLimiter`` (``MODE`` = ``redis``) or a process limiter of its own (``local``, the
control), and prints one JSON line: answers, server 429s, 418s, local refusals, other errors.
"""

from __future__ import annotations

import json
import sys
import time

from quotation.errors import Banned, QuotationError, RateLimited
from quotation.rest import RateLimiter, RestClient, RestConfig
from quotation.rest.ratelimit_redis import RedisRateLimiter

__all__ = ["main"]

RATE = 20
SECONDS = 5.0


def main(argv: list[str]) -> int:
    base_url, mode, redis_url, prefix, start_at = argv
    limiter = (RedisRateLimiter(redis_url, prefix=prefix) if mode == "redis" else RateLimiter())
    config = RestConfig(base_url=base_url, rate_limit_retries=0, max_wait=0.04)
    counts = {"ok": 0, "http_429": 0, "http_418": 0, "refused_locally": 0, "other": 0}
    with RestClient(config, limiter=limiter) as client:
        client.get_markets()  # warm the connection (market group, not the one measured)
        time.sleep(max(0.0, float(start_at) - time.time()))
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
