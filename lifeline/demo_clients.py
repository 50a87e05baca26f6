"""``lifeline demo --clients``: the clients-only rehearsal (the demo before the supervised system).

It starts the local Upbit-compatible simulator in-process, points the real REST
and WebSocket clients at it (the same code that talks to Upbit), shows data
from every endpoint and the realtime stream, then rehearses one fault after
another and prints what the clients did: which typed error, how fast, and
whether the realtime stream came back without losing a trade. Bounded: about
ten seconds, never more than ``_DEADLINE`` seconds.
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
import time
from collections.abc import Callable
from typing import TextIO

from lifeline.config import LifelineConfig
from quotation.errors import QuotationError
from quotation.models import CandleInterval
from quotation.rest.client import RestClient, RestConfig
from quotation.rest.ratelimit import RateLimiter
from quotation.websocket.client import WebSocketClient
from quotation.websocket.subscription import DataType, Subscription, WsFormat
from upbit_sim import Simulator

__all__ = ["run_clients_demo"]

_MARKETS = ("KRW-BTC", "KRW-ETH", "KRW-XRP")
_DEADLINE = 90.0


@dataclasses.dataclass(slots=True)
class _Row:
    step: str
    outcome: str
    seconds: float
    ok: bool


def run_clients_demo(config: LifelineConfig | None = None, *, out: TextIO | None = None
                     ) -> int:
    """Run the clients-only rehearsal; returns 0 when every step behaved as a trading host expects.

    ``config`` (default: the built-in defaults) gives the simulator's host, port and
    seed (``simulator:``) and the clients' settings (``upbit:``, pointed at the
    simulator); ``out`` defaults to standard output.
    """
    config = config if config is not None else LifelineConfig()
    stream = out if out is not None else sys.stdout
    rows: list[_Row] = []
    started = time.monotonic()

    def say(text: str) -> None:
        print(text, file=stream, flush=True)

    def step(name: str, action: Callable[[], tuple[str, bool]]) -> None:
        if time.monotonic() - started > _DEADLINE:
            rows.append(_Row(name, "skipped: demo deadline reached", 0.0, False))
            return
        t0 = time.monotonic()
        try:
            outcome, ok = action()
        except QuotationError as exc:
            outcome, ok = f"unexpected {type(exc).__name__}: {exc}", False
        rows.append(_Row(name, outcome, time.monotonic() - t0, ok))
        say(f"  {'ok ' if ok else 'BAD'} {name}: {outcome}")

    settings = config.simulator
    with Simulator(seed=settings.seed, host=settings.host, port=settings.port) as sim:
        say(f"simulator: {sim.base_url} and {sim.ws_url} (seed {sim.seed})")
        limiter = config.upbit.rate_limit.build()
        rest_config = dataclasses.replace(config.upbit.rest, base_url=sim.base_url)
        ws_config = dataclasses.replace(  # the file's liveness, backoff, capacities
            config.upbit.websocket,
            url=sim.ws_url,
            format=WsFormat.SIMPLE,
            subscriptions=(
                Subscription(DataType.TICKER, _MARKETS),
                Subscription(DataType.TRADE, _MARKETS),
                Subscription(DataType.ORDERBOOK, _MARKETS, depth=15),
            ),
        )
        with RestClient(rest_config, limiter=limiter) as rest:
            say("\nREST, through the shared rate limiter:")
            _rest_steps(rest, step)
            say("\nWebSocket, realtime into the cache (SIMPLE format):")
            with WebSocketClient(ws_config, trade_source=rest) as ws:
                _websocket_steps(ws, step)
                say("\nFaults rehearsed against the simulator:")
                _fault_steps(sim, rest, rest_config, limiter=limiter, ws=ws, step=step)
                status = ws.status()
        say(f"\nWebSocket client: {status.connects} connects, {status.recoveries} recoveries, "
            f"{status.messages} messages, {status.duplicates} duplicates dropped, "
            f"{status.gap_filled} trades filled from REST, {status.gaps} unfilled gaps, "
            f"{status.malformed} malformed frames skipped")

    say("\nsummary")
    width = max(len(r.step) for r in rows)
    for row in rows:
        say(f"  {'ok ' if row.ok else 'BAD'}  {row.step:<{width}}  {row.seconds * 1000:8.1f} ms  "
            f"{row.outcome}")
    bad = [r for r in rows if not r.ok]
    say(f"\n{len(rows) - len(bad)} of {len(rows)} steps as expected "
        f"in {time.monotonic() - started:.1f} s")
    return 1 if bad else 0


_Step = Callable[[str, Callable[[], tuple[str, bool]]], None]


def _rest_steps(rest: RestClient, step: _Step) -> None:
    def markets() -> tuple[str, bool]:
        found = rest.get_markets(is_details=True)
        quotes = sorted({m.quote_currency for m in found})
        return f"{len(found)} markets ({', '.join(quotes)})", len(found) > 0

    def tickers() -> tuple[str, bool]:
        found = rest.get_tickers(list(_MARKETS))
        text = ", ".join(f"{t.market} {t.trade_price:,.0f} ({t.signed_change_rate:+.2%})"
                         for t in found)
        return text, len(found) == len(_MARKETS)

    def candles() -> tuple[str, bool]:
        found = rest.get_candles("KRW-BTC", CandleInterval.DAY, count=250)
        ordered = all(a.start < b.start for a, b in itertools.pairwise(found))
        return (f"{len(found)} day candles (paged past 200), oldest "
                f"{found[0].start:%Y-%m-%d}, newest {found[-1].start:%Y-%m-%d} UTC, "
                f"{'in order' if ordered else 'OUT OF ORDER'}"), ordered and len(found) > 200

    def trades() -> tuple[str, bool]:
        found = rest.get_trades("KRW-BTC", count=50)
        return f"{len(found)} recent trades, last {found[0].trade_price:,.0f}", len(found) == 50

    def orderbook() -> tuple[str, bool]:
        book = rest.get_orderbooks(["KRW-BTC"], count=15)[0]
        return (f"{len(book.levels)} levels, best bid {book.best_bid:,.0f} / "
                f"ask {book.best_ask:,.0f}"), len(book.levels) == 15

    def bad_input() -> tuple[str, bool]:
        try:
            rest.get_tickers(["krw-btc"])
        except QuotationError as exc:
            name = type(exc).__name__
            return f"{name} naming {getattr(exc, 'parameter', None)!r}, no request sent", (
                name == "InvalidRequest")
        return "accepted a lower-case market code", False

    for name, action in [("market list", markets), ("tickers", tickers),
                         ("candles", candles), ("trades", trades),
                         ("orderbook", orderbook), ("invalid market code", bad_input)]:
        step(name, action)


def _websocket_steps(ws: WebSocketClient, step: _Step) -> None:
    def live() -> tuple[str, bool]:
        ok = ws.wait_live(timeout=10.0)
        return ("snapshot then realtime received" if ok else "no data within 10 s"), ok

    def realtime() -> tuple[str, bool]:
        first = ws.status().messages
        ws.wait_until(lambda s: s.messages >= first + 20, timeout=10.0)
        now = ws.clock.monotonic()
        parts = []
        for market in _MARKETS:
            entry = ws.cache.ticker(market)
            if entry is not None:
                parts.append(f"{market} {entry.value.trade_price:,.0f} "
                             f"(age {entry.age(now) * 1000:.0f} ms)")
        return "; ".join(parts), len(parts) == len(_MARKETS)

    step("WebSocket connects and subscribes", live)
    step("realtime tickers with their age", realtime)


def _fault_steps(sim: Simulator, rest: RestClient, rest_config: RestConfig, *,
                 limiter: RateLimiter, ws: WebSocketClient, step: _Step) -> None:
    def expect(error: str, call: Callable[[], object]) -> tuple[str, bool]:
        try:
            call()
        except QuotationError as exc:
            return f"{type(exc).__name__}: {exc}", type(exc).__name__ == error
        return "the call succeeded", False

    def server_error() -> tuple[str, bool]:
        sim.faults.fail_next(1, status=503)
        return expect("ServerError", lambda: rest.get_tickers(["KRW-BTC"]))

    def storm() -> tuple[str, bool]:
        sim.faults.storm_429(2)
        try:
            rest.get_tickers(["KRW-BTC"])
        except QuotationError as exc:
            return f"{type(exc).__name__} (group paused with backoff)", (
                type(exc).__name__ == "RateLimited")
        return "paused the ticker group, retried once after the pause, answered", True

    def black_hole() -> tuple[str, bool]:
        sim.faults.black_hole()
        short = RestClient(dataclasses.replace(rest_config, read_timeout=1.0),
                           limiter=limiter)
        try:
            return expect("TransportError", lambda: short.get_tickers(["KRW-BTC"]))
        finally:
            short.close()
            sim.faults.black_hole(False)

    def malformed() -> tuple[str, bool]:
        sim.faults.malformed_json(1, truncated=True)
        return expect("FormatError", lambda: rest.get_orderbooks(["KRW-BTC"]))

    def banned() -> tuple[str, bool]:
        sim.faults.ban_418(2.0)
        outcome = expect("Banned", lambda: rest.get_tickers(["KRW-BTC"]))
        sim.faults.reset()
        return outcome

    def ws_drop() -> tuple[str, bool]:
        before = ws.status().recoveries
        sim.ws.close_all()
        ok = ws.wait_until(lambda s: s.recoveries > before, timeout=15.0)
        status = ws.status()
        return (f"socket closed by the server, reconnected and resubscribed; fresh data "
                f"again ({status.gap_filled} missed trades filled from REST)"
                if ok else "no recovery within 15 s"), ok

    def no_trade_lost() -> tuple[str, bool]:
        market = _MARKETS[0]
        ws.flush(timeout=5.0)
        seen = [c.value.sequential_id for c in ws.cache.trades(market)]
        if not seen:
            return "no trades cached", False
        first = min(seen)
        log = [t.sequential_id for t in sim.engine.trades(market)]
        expected = [s for s in log if s >= first and s <= max(seen)]
        same = sorted(seen) == sorted(expected) and len(seen) == len(set(seen))
        return (f"{len(seen)} {market} trades in the cache equal the exchange's own log "
                "(none lost, none duplicated)" if same else
                f"cache has {len(seen)} trades, exchange log {len(expected)}"), same

    for name, action in [("HTTP 503", server_error), ("429 storm", storm),
                         ("black hole (read timeout 1 s)", black_hole),
                         ("truncated JSON", malformed), ("418 ban", banned),
                         ("WebSocket closed by the server", ws_drop),
                         ("trade stream across the reconnect", no_trade_lost)]:
        step(name, action)
