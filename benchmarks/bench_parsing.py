"""How long parse_ws_message takes per WebSocket message, next to decoding the same frame.

Run: .venv/bin/python benchmarks/bench_parsing.py

Prints µs/message (best of 5 runs) for SIMPLE and DEFAULT trade, 15-level
orderbook, ticker and candle messages: orjson decode alone, parse alone, and
both, plus the frames/s that decode+parse alone would allow on one core. The
ingest goal (issue 3) is ≥ 20k frames/s end to end, i.e. ≤ 50 µs per frame
for receive, decode, parse and delivery together.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import orjson

from quotation.parsing import parse_ws_message
from quotation.wire_keys import to_simple_keys

TRADE = {
    "type": "trade", "code": "KRW-BTC", "trade_price": 103460000.0, "trade_volume": 0.004,
    "ask_bid": "ASK", "prev_closing_price": 102417000.0, "change": "RISE",
    "change_price": 1043000.0, "trade_date": "2026-03-11", "trade_time": "14:40:59",
    "trade_timestamp": 1773240059095, "timestamp": 1773240059120,
    "sequential_id": 17732400590950000, "best_ask_price": 103493000,
    "best_ask_size": 0.04910155, "best_bid_price": 103460000, "best_bid_size": 0.004,
    "stream_type": "REALTIME",
}  # fmt: skip
ORDERBOOK = {
    "type": "orderbook", "code": "KRW-BTC", "timestamp": 1773240059027,
    "total_ask_size": 4.17884094, "total_bid_size": 2.29686376,
    "orderbook_units": [
        {"ask_price": 103493000.0 + 1000 * i, "bid_price": 103460000.0 - 1000 * i,
         "ask_size": 0.04910155 + i, "bid_size": 0.004 + i}
        for i in range(15)
    ],
    "level": 0, "stream_type": "REALTIME",
}  # fmt: skip
TICKER = {
    "type": "ticker", "code": "KRW-BTC", "opening_price": 102417000.0,
    "high_price": 103988000.0, "low_price": 101150000.0, "trade_price": 103493000.0,
    "prev_closing_price": 102417000.0, "change": "RISE", "change_price": 1076000.0,
    "signed_change_price": 1076000.0, "change_rate": 0.0105060683,
    "signed_change_rate": 0.0105060683, "trade_volume": 0.00094678,
    "acc_trade_volume": 1024.30599241, "acc_trade_volume_24h": 1587.73606087,
    "acc_trade_price": 104890185475.22821, "acc_trade_price_24h": 162997300132.123,
    "trade_date": "20260311", "trade_time": "144058", "trade_timestamp": 1773240058930,
    "ask_bid": "BID", "acc_ask_volume": 512.1, "acc_bid_volume": 512.2,
    "highest_52_week_price": 179869000.0, "highest_52_week_date": "2025-10-09",
    "lowest_52_week_price": 89000000.0, "lowest_52_week_date": "2026-02-06",
    "market_state": "ACTIVE", "is_trading_suspended": False, "delisting_date": None,
    "market_warning": "NONE", "timestamp": 1773240058973, "stream_type": "REALTIME",
}  # fmt: skip
CANDLE = {
    "type": "candle.1m", "code": "KRW-BTC", "candle_date_time_utc": "2026-03-11T14:40:00",
    "candle_date_time_kst": "2026-03-11T23:40:00", "opening_price": 103600000.0,
    "high_price": 103600000.0, "low_price": 103425000.0, "trade_price": 103460000.0,
    "candle_acc_trade_volume": 1.5933512, "candle_acc_trade_price": 164899503.14206,
    "timestamp": 1773240059132, "stream_type": "REALTIME",
}  # fmt: skip

RUNS = 5
BATCH = 20_000


def best_us(action: Callable[[], object]) -> float:
    """Best-of-``RUNS`` time of one ``action()`` call, in µs."""
    best = float("inf")
    for _ in range(RUNS):
        started = time.perf_counter()
        for _ in range(BATCH):
            action()
        best = min(best, (time.perf_counter() - started) / BATCH)
    return best * 1e6


def measure(name: str, message: dict[str, Any]) -> None:
    frame = json.dumps(message).encode()
    decoded = orjson.loads(frame)
    decode = best_us(lambda: orjson.loads(frame))
    parse = best_us(lambda: parse_ws_message(decoded))
    both = best_us(lambda: parse_ws_message(orjson.loads(frame)))
    print(
        f"{name:<22} {len(frame):>5} B   decode {decode:6.2f} µs   parse {parse:6.2f} µs   "
        f"decode+parse {both:6.2f} µs  ({1e6 / both:>9,.0f}/s on one core)"
    )


def main() -> None:
    print(f"parse_ws_message, best of {RUNS} × {BATCH:,} calls")
    for name, message in (
        ("trade", TRADE),
        ("orderbook (15 levels)", ORDERBOOK),
        ("ticker", TICKER),
        ("candle.1m", CANDLE),
    ):
        measure(f"SIMPLE {name}", to_simple_keys(message))
        measure(f"DEFAULT {name}", message)


if __name__ == "__main__":
    main()
