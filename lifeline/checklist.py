"""The seed's emergency checklist at a glance: each item ``ok``, ``warn`` or ``fail`` with a
one-line detail, in ``/status`` and ``lifeline status``.

======================  ====================================================================
item                    what it says
======================  ====================================================================
``rest_fallback``       the direct REST client: its last request's outcome and error, a ban
``ws_fallback``         the direct WebSocket client: standing by, live (symbols, last item)
                        or down (state, last error)
``core_symbols``        ``fallback.symbols`` read through the system now: each one's age,
                        the answer's source; stale → warn, an error → fail
``rate_limits``         the shared limiter per group: requests it may send now, 429-paused
                        groups (warn), a 418 ban (fail)
``process``             resident memory against ``fallback.memory_limit_mb`` (warn at 80%,
                        fail above) and CPU (% of one core since the last refresh)
``hosts``               a TCP connect to the configured Upbit REST and WebSocket host:port,
                        each bounded by ``timeout``
``disk``                free space where logs are written (the directory of a file handler
                        on the root or ``lifeline`` logger, else the current directory);
                        below ``operator.min_free_disk_mb`` → warn
``log_level``           the effective level of the ``lifeline``, ``actors`` and
                        ``quotation`` loggers; DEBUG (the Level 2/3 escalation) → warn
======================  ====================================================================

The items are pure functions of small inputs (``tcp_item``, ``disk_item``, ...).
:class:`Checklist` gathers their inputs from a running
:class:`~lifeline.system.MarketDataSystem` on a daemon thread of its own every ``interval``
real seconds (every network step bounded: actor asks and connects by ``timeout``, the
symbols' read by ``fallback.request_deadline``) and keeps the last result; the HTTP thread
only reads it (:meth:`Checklist.snapshot`, with the result's age): a ``/status`` request
never waits for a network check. The ``core_symbols`` read is a real host read: it counts in
``lifeline_requests_total`` and keeps the symbols' last known good data fresh.
"""

from __future__ import annotations

import logging
import shutil
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from actors.health_probe import sample_process
from actors.messages import RestHealth, WsHealth
from lifeline.escalation import ESCALATED_LOGGERS
from quotation.values import check
from quotation.websocket.status import ConnectionState

if TYPE_CHECKING:
    from lifeline.system import MarketDataSystem

__all__ = ["CHECK_INTERVAL", "CHECK_TIMEOUT", "ITEMS", "Checklist", "Item", "Mark",
           "disk_item", "host_port", "log_directory", "log_level_item",
           "process_item", "rate_limit_item", "rest_item", "symbols_item", "tcp_item",
           "ws_item"]

logger = logging.getLogger(__name__)

CHECK_INTERVAL = 10.0
"""Real seconds between refreshes of the checklist."""
CHECK_TIMEOUT = 1.0
"""Real seconds each actor ask and each TCP connect of a refresh may take."""
ITEMS = ("rest_fallback", "ws_fallback", "core_symbols", "rate_limits", "process", "hosts",
         "disk", "log_level")
"""The items, in the order they are shown."""
_MIB = float(1 << 20)
_MEMORY_WARN = 0.8


class Mark(Enum):
    """An item's verdict."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Item:
    """One line of the checklist."""

    name: str
    mark: Mark
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"status": self.mark.value, "detail": self.detail}


def _err(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:120]}" if text else type(exc).__name__


# -- the items (pure, or one bounded system call) ----------------------------------------


def tcp_item(targets: Sequence[tuple[str, str, int]], timeout: float = CHECK_TIMEOUT) -> Item:
    """``hosts``: a TCP connect to each ``(label, host, port)``, each within ``timeout``."""
    parts: list[str] = []
    failed = False
    for label, host, port in targets:
        began = time.monotonic()
        try:
            with socket.create_connection((host, port), timeout=timeout):
                pass
        except OSError as exc:
            failed = True
            parts.append(f"{label} {host}:{port} unreachable ({_err(exc)})")
        else:
            parts.append(f"{label} {host}:{port} {1000 * (time.monotonic() - began):.0f} ms")
    return Item("hosts", Mark.FAIL if failed else Mark.OK, "; ".join(parts) or "none configured")



def host_port(url: str) -> tuple[str, int]:
    """``(host, port)`` of an http(s) or ws(s) URL (the scheme's port when none is given)."""
    parts = urlsplit(url)
    default = 443 if parts.scheme in ("https", "wss") else 80
    return parts.hostname or "", parts.port or default


def log_directory(loggers: Sequence[logging.Logger] | None = None) -> Path:
    """Where logs are written: the directory of the first file handler on ``loggers`` (the
    root and ``lifeline`` loggers), else the current directory."""
    for each in loggers if loggers is not None else (logging.getLogger(),
                                                     logging.getLogger("lifeline")):
        for handler in each.handlers:
            if isinstance(handler, logging.FileHandler):
                return Path(handler.baseFilename).parent
    return Path.cwd()


def disk_item(path: Path, min_free_mb: int) -> Item:
    """``disk``: free space at ``path``; below ``min_free_mb`` MiB → warn."""
    try:
        usage = shutil.disk_usage(path)
    except OSError as exc:
        return Item("disk", Mark.FAIL, f"{path}: {_err(exc)}")
    free = usage.free / _MIB
    detail = f"{free:,.0f} MiB free of {usage.total / _MIB:,.0f} MiB at {path}"
    if free < min_free_mb:
        return Item("disk", Mark.WARN, f"{detail} (below {min_free_mb} MiB)")
    return Item("disk", Mark.OK, detail)


def log_level_item(names: Sequence[str] = ESCALATED_LOGGERS) -> Item:
    """``log_level``: the effective level of each logger; DEBUG → warn (escalated)."""
    levels = {name: logging.getLogger(name).getEffectiveLevel() for name in names}
    detail = ", ".join(f"{name} {logging.getLevelName(level)}" for name, level in levels.items())
    if any(level <= logging.DEBUG for level in levels.values()):
        return Item("log_level", Mark.WARN, f"{detail} (DEBUG: Level 2/3 escalation or "
                    "--log-level)")
    return Item("log_level", Mark.OK, detail)


def rest_item(health: RestHealth | None, problem: str | None = None) -> Item:
    """``rest_fallback`` from its ``HealthRequest`` answer (``None``: it gave none)."""
    if health is None:
        return Item("rest_fallback", Mark.FAIL, f"no answer ({problem or 'not asked'})")
    if health.banned:
        left = max(0.0, (health.banned_until or health.now) - health.now)
        return Item("rest_fallback", Mark.FAIL, f"banned (HTTP 418) for {left:.0f} s more")
    if health.failing:
        return Item("rest_fallback", Mark.FAIL, f"{health.consecutive_failures} failed in a "
                    f"row, last error: {health.last_error}")
    if health.last_success_at is None:
        return Item("rest_fallback", Mark.OK, "standing by, no request yet")
    return Item("rest_fallback", Mark.OK, f"last answer {health.now - health.last_success_at:.1f}"
                " s ago" + (f" (earlier error: {health.last_error})" if health.last_error else ""))


def ws_item(health: WsHealth | None, problem: str | None = None) -> Item:
    """``ws_fallback`` from its ``HealthRequest`` answer (``None``: it gave none)."""
    if health is None:
        return Item("ws_fallback", Mark.FAIL, f"no answer ({problem or 'not asked'})")
    if health.idle_by_design:
        return Item("ws_fallback", Mark.OK, "standing by (activated at Level 2/3)")
    conn = health.connection
    symbols = ", ".join(health.symbols) or "-"
    if conn.state is ConnectionState.LIVE:
        last = ("no item yet" if health.last_item_at is None
                else f"last item {max(0.0, health.now - health.last_item_at):.1f} s ago")
        return Item("ws_fallback", Mark.OK, f"live, {symbols}, {last}")
    return Item("ws_fallback", Mark.FAIL, f"{conn.state.value}, {symbols}, last error: "
                f"{conn.last_error or '-'}")


def symbols_item(symbols: Sequence[str], ages: Mapping[str, float | None], *,
                 source: str | None, stale: bool, problem: str | None = None) -> Item:
    """``core_symbols``: each symbol's ticker age after a read (``problem``: it raised)."""
    def age(code: str) -> str:
        seconds = ages.get(f"ticker/{code}")
        return "-" if seconds is None else f"{seconds:.1f} s"

    shown = ", ".join(f"{code} {age(code)}" for code in symbols)
    if problem is not None:
        return Item("core_symbols", Mark.FAIL, f"{shown}; read failed: {problem}")
    if stale:
        return Item("core_symbols", Mark.WARN, f"{shown} (stale, from {source})")
    return Item("core_symbols", Mark.OK, f"{shown} (from {source})")


def rate_limit_item(headroom: Mapping[str, int], paused: Sequence[str],
                    banned_for: float | None) -> Item:
    """``rate_limits``: per group what may be sent now; paused (429) → warn; banned → fail."""
    groups = ", ".join(f"{group} {n}{' paused' if group in paused else ''}"
                       for group, n in sorted(headroom.items())) or "no group used yet"
    if banned_for is not None:
        return Item("rate_limits", Mark.FAIL, f"banned (418) for {banned_for:.0f} s; {groups}")
    if paused:
        return Item("rate_limits", Mark.WARN, f"paused (429): {', '.join(paused)}; {groups}")
    return Item("rate_limits", Mark.OK, groups)


def process_item(rss_mb: float | None, cpu_percent: float | None, limit_mb: int) -> Item:
    """``process``: memory against ``limit_mb`` (warn at 80%, fail above), and CPU."""
    cpu = "-" if cpu_percent is None else f"{cpu_percent:.0f}%"
    if rss_mb is None:
        return Item("process", Mark.WARN, f"memory unknown, CPU {cpu}")
    detail = f"RSS {rss_mb:.0f} MiB of {limit_mb} MiB limit, CPU {cpu}"
    if rss_mb > limit_mb:
        return Item("process", Mark.FAIL, detail)
    if rss_mb > _MEMORY_WARN * limit_mb:
        return Item("process", Mark.WARN, detail)
    return Item("process", Mark.OK, detail)


# -- gathering them from a system ------------------------------------------------------------


class Checklist:
    """The checklist of ``system``, refreshed off the request path (module docstring)."""

    def __init__(self, system: MarketDataSystem, *, interval: float = CHECK_INTERVAL,
                 timeout: float = CHECK_TIMEOUT) -> None:
        check("interval", interval, above=0)
        check("timeout", timeout, above=0)
        self._system = system
        self._interval = interval
        self._timeout = timeout
        self._lock = threading.Lock()
        self._items: tuple[Item, ...] = ()
        self._at: float | None = None
        self._cpu: tuple[float, float] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="lifeline-checklist",
                                            daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception:
                logger.exception("checklist: a refresh failed")
            self._stop.wait(self._interval)

    def snapshot(self) -> dict[str, Any]:
        """The last result (no I/O): ``age`` seconds since it was taken, ``items``."""
        with self._lock:
            items, at = self._items, self._at
        return {"age": None if at is None else round(time.monotonic() - at, 1),
                "items": {item.name: item.to_dict() for item in items}}

    def refresh(self) -> tuple[Item, ...]:
        """Gather every item now (bounded; on the caller's thread) and keep the result."""
        from lifeline.tree import WS_FALLBACK  # noqa: PLC0415 (lifeline.system imports us)

        system, config = self._system, self._system.config
        rest, rest_problem = self._ask("rest_fallback/health")
        ws, ws_problem = self._ask(WS_FALLBACK)
        rest_health = rest if isinstance(rest, RestHealth) else None
        ws_health = ws if isinstance(ws, WsHealth) else None
        symbols = config.fallback.symbols
        try:
            answer = system.get_ticker(list(symbols))
            source, stale, problem = answer.source.value, answer.stale, None
        except Exception as exc:  # noqa: BLE001 (the read's failure is the item's verdict)
            source, stale, problem = None, False, _err(exc)
        status = system.status()
        if rest_health is not None:  # the actor's clock: its ``now`` and its ban's end
            banned_for = (None if rest_health.banned_until is None
                          else max(0.0, rest_health.banned_until - rest_health.now))
        else:  # the process's monotonic clock, as /status's ``monotonic_now``
            banned_for = (None if status.banned_until is None
                          else max(0.0, status.banned_until - time.monotonic()))
        paused = rest_health.paused_groups if rest_health is not None else ()
        rest_host = host_port(config.upbit.rest.base_url)
        ws_host = host_port(config.upbit.websocket.url)
        items = (
            rest_item(rest_health, rest_problem),
            ws_item(ws_health, ws_problem),
            symbols_item(symbols, status.data_ages, source=source, stale=stale,
                         problem=problem),
            rate_limit_item(status.headroom, paused, banned_for),
            self._process(config.fallback.memory_limit_mb),
            tcp_item([("REST", *rest_host), ("WebSocket", *ws_host)], self._timeout),
            disk_item(log_directory(), config.operator.min_free_disk_mb),
            log_level_item(),
        )
        with self._lock:
            self._items, self._at = items, time.monotonic()
        return items

    def _ask(self, child: str) -> tuple[object, str | None]:
        try:
            return self._system.check_child(child, timeout=self._timeout), None
        except Exception as exc:  # noqa: BLE001 (no answer is what the item reports)
            return None, _err(exc)

    def _process(self, limit_mb: int) -> Item:
        sample = sample_process()
        now = time.monotonic()
        cpu = None
        if self._cpu is not None and now > self._cpu[0]:
            cpu = 100.0 * (sample.cpu_seconds - self._cpu[1]) / (now - self._cpu[0])
        self._cpu = (now, sample.cpu_seconds)
        rss = None if sample.rss_bytes is None else sample.rss_bytes / _MIB
        return process_item(rss, cpu, limit_mb)

