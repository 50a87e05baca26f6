"""One trading host in ``feed.mode: shared``, as its own process (the three-process test).

``python -m tests.lifeline.feed.shared_host BASE_URL WS_URL REDIS_URL PREFIX TTL``: starts a
``MarketDataSystem`` on the simulator and the Redis, subscribes to KRW-BTC's trades and
prints one JSON line per event on stdout: ``{"trade": sid, "source": ...}`` for each trade
delivered, ``{"role": ..., "leader": ...}`` every 0.05 s. Stops (the system too) when its
stdin closes; bounded by 120 s.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
from typing import Any

from lifeline import MarketDataSystem
from lifeline.config import LifelineConfig
from lifeline.settings import FallbackSettings, FeedMode, FeedSettings
from lifeline.subscriptions import Update
from quotation.models import Trade
from tests.lifeline.system_support import upbit_for

__all__ = ["main"]

_OUT = threading.Lock()


def _say(**fields: Any) -> None:
    with _OUT:
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()


class _Urls:
    def __init__(self, base_url: str, ws_url: str) -> None:
        self.base_url = base_url
        self.ws_url = ws_url


def main(argv: list[str]) -> int:
    base_url, ws_url, redis_url, prefix, ttl = argv
    config = LifelineConfig(
        upbit=upbit_for(_Urls(base_url, ws_url)),  # type: ignore[arg-type]
        fallback=FallbackSettings(symbols=("KRW-BTC",), probe_interval=0.2,
                                  failure_threshold=2, recovery_interval=1.0,
                                  router_timeout=0.2, request_deadline=1.0,
                                  max_stale_age=30.0))
    config = dataclasses.replace(config, feed=FeedSettings(
        mode=FeedMode.SHARED, redis_url=redis_url, stream_prefix=prefix,
        leader_ttl=float(ttl)))
    system = MarketDataSystem.from_config(config)
    system.start()
    done = threading.Event()

    def on_trade(update: Update[Any]) -> None:
        if isinstance(update.data, Trade):
            _say(trade=update.data.sequential_id, source=str(update.source))

    def stdin_closed() -> None:
        sys.stdin.read()
        done.set()

    threading.Thread(target=stdin_closed, daemon=True).start()
    sub = system.subscribe("trade", ["KRW-BTC"], on_trade)
    try:
        for _ in range(2400):  # 120 s at most
            feed = system.status().to_dict()["feed"]
            _say(role=feed["role"], leader=feed["leader"], host=feed.get("host_id"))
            if done.wait(0.05):
                break
    finally:
        sub.close()
        system.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
