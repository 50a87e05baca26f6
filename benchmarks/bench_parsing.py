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
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from quotation.parsing import parse_ws_message
from quotation.wire_keys import to_simple_keys

# The documented messages live with the parsing tests; the repo root makes ``tests`` importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.quotation.examples import WS_ORDERBOOK, WS_TICKER, WS_TRADE, changed

ORDERBOOK = changed(  # the documented book, 15 levels deep like the recorded frames
    WS_ORDERBOOK,
    orderbook_units=[
        {"ask_price": 103493000.0 + 1000 * i, "bid_price": 103460000.0 - 1000 * i,
         "ask_size": 0.04910155 + i, "bid_size": 0.004 + i}
        for i in range(15)
    ],
    stream_type="REALTIME",
)  # fmt: skip
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
        ("trade", WS_TRADE),
        ("orderbook (15 levels)", ORDERBOOK),
        ("ticker", WS_TICKER),
        ("candle.1m", CANDLE),
    ):
        measure(f"SIMPLE {name}", to_simple_keys(message))
        measure(f"DEFAULT {name}", message)


if __name__ == "__main__":
    main()
