"""``lifeline run`` and ``lifeline status``: the long-running host process and its reader.

``run`` starts the :class:`~lifeline.system.MarketDataSystem` of a config, then ONE HTTP
server (stdlib ``ThreadingHTTPServer``, daemon threads) on ``operator.listen``:

* ``GET /metrics``: Prometheus text exposition (:mod:`lifeline.metrics`);
* ``GET /status``: ``system.status().to_dict()`` as JSON, plus ``monotonic_now`` (the
  process's monotonic clock, the time base of ``banned_until`` and ``next_recovery_at``),
  ``checklist`` (:mod:`lifeline.checklist`: the seed's emergency checklist, refreshed on a
  thread of its own, never on the request's) and ``self_check`` (:mod:`lifeline.selfcheck`:
  the daily self-check's last and next run).

It prints ``lifeline run: serving http://HOST:PORT`` on stdout once both are up (the bound
port when ``listen`` says port 0). SIGINT or SIGTERM: an orderly shutdown in reverse start
order, the HTTP server then the system, bounded by ``operator.shutdown_timeout``; exit 0
when it finished in time, 1 otherwise (the process is then ended at the bound).
"""

from __future__ import annotations

import http.server
import ipaddress
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from types import FrameType
from typing import Any

from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from lifeline.checklist import ITEMS, Checklist
from lifeline.config import LifelineConfig
from lifeline.errors import LifelineError
from lifeline.metrics import registry_for
from lifeline.selfcheck import SelfCheck, system_parts
from lifeline.settings import OperatorSettings, split_listen
from lifeline.system import MarketDataSystem
from quotation.clock import SystemClock
from quotation.redact import redact_url

__all__ = ["DEFAULT_STATUS_URL", "MAX_STATUS_BYTES", "STATUS_TIMEOUT", "OperatorServer",
           "format_status", "read_status", "run", "status"]

logger = logging.getLogger(__name__)

DEFAULT_STATUS_URL = f"http://{OperatorSettings().listen}/status"
STATUS_TIMEOUT = 5.0
"""Seconds ``lifeline status`` waits for the answer (connect and each read)."""
MAX_STATUS_BYTES = 1 << 20
"""The largest ``/status`` body ``lifeline status`` reads (1 MiB)."""


class OperatorServer:
    """``/metrics`` and ``/status`` of ``system`` on ``(host, port)``, in a daemon thread."""

    def __init__(self, system: MarketDataSystem, host: str, port: int, *,
                 checklist: Checklist | None = None, self_check: SelfCheck | None = None
                 ) -> None:
        registry = registry_for(system)

        def status_body() -> bytes:
            payload = system.status().to_dict()
            payload["monotonic_now"] = time.monotonic()
            if checklist is not None:
                payload["checklist"] = checklist.snapshot()
            if self_check is not None:
                payload["self_check"] = self_check.status()
            return json.dumps(payload).encode()

        pages: dict[str, tuple[str, Callable[[], bytes]]] = {
            "/metrics": (CONTENT_TYPE_LATEST, lambda: generate_latest(registry)),
            "/status": ("application/json", status_body),
        }

        class Handler(http.server.BaseHTTPRequestHandler):
            server_version = "lifeline"

            def do_GET(self) -> None:
                page = pages.get(self.path.split("?", 1)[0])
                if page is None:
                    self.send_error(404, "only /metrics and /status")
                    return
                try:
                    body = page[1]()
                except Exception:
                    logger.exception("operator: %s failed", self.path)
                    self.send_error(500)
                    return
                self.send_response(200)
                self.send_header("Content-Type", page[0])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("http %s " + format, self.address_string(), *args)

        family = _V6Server if ":" in host else http.server.ThreadingHTTPServer
        self._server = family((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.2},
                                        name="lifeline-operator-http", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        shown = f"[{name}]" if ":" in name else name
        return f"http://{shown}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop serving (bounded) and close the socket."""
        done = threading.Thread(target=self._server.shutdown, daemon=True)
        done.start()
        done.join(timeout)
        self._server.server_close()


class _V6Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(config: LifelineConfig) -> int:
    """``lifeline run``: serve until SIGINT/SIGTERM, then stop in order (module docstring)."""
    settings = config.operator
    host, port = split_listen(settings.listen)
    if not is_loopback(host):
        logger.warning("operator.listen %s is not a loopback address: /metrics and /status "
                       "are served to the network without credentials", settings.listen)
    stop = threading.Event()
    signals: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        signals.append(signum)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _serve(config, host, port, stop, signals)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve(config: LifelineConfig, host: str, port: int, stop: threading.Event,
           signals: list[int]) -> int:
    system = MarketDataSystem.from_config(config)
    logger.info("starting the market data system (REST %s)",
                redact_url(config.upbit.rest.base_url))
    try:
        system.start()
    except LifelineError as exc:
        logger.error("the market data system did not start: %s", exc)  # noqa: TRY400
        return 1
    checklist = Checklist(system)
    daily = config.operator.daily_check  # "HH:MM" or None once the settings checked it
    self_check = SelfCheck(SystemClock(), system_parts(system),
                           at=daily if isinstance(daily, str) else None,
                           alert=system.self_check_failed)
    try:
        server = OperatorServer(system, host, port, checklist=checklist, self_check=self_check)
    except OSError as exc:
        logger.error("cannot listen on %s: %s", config.operator.listen, exc)  # noqa: TRY400
        system.stop(timeout=config.operator.shutdown_timeout)
        return 1
    checklist.start()
    self_check.start()
    logger.info("daily self-check: %s", "off" if self_check.next_run_at is None
                else f"at {daily} KST, next {self_check.status()['next_run']}")
    server.start()
    logger.info("level %d; serving %s/metrics and %s/status", system.level, server.url,
                server.url)
    print(f"lifeline run: serving {server.url}", flush=True)
    while not stop.wait(0.5):
        pass
    bound = config.operator.shutdown_timeout
    name = signal.Signals(signals[0]).name if signals else "stop"
    logger.info("%s: shutting down (bound %g s): the HTTP server, then the system", name, bound)
    began = time.monotonic()
    done = threading.Event()

    def shut_down() -> None:
        server.stop(bound)
        logger.info("HTTP server stopped")
        self_check.stop(0.5)
        checklist.stop(0.5)
        system.stop(timeout=max(0.0, bound - (time.monotonic() - began)))
        logger.info("market data system stopped")
        done.set()

    threading.Thread(target=shut_down, name="lifeline-shutdown", daemon=True).start()
    if not done.wait(bound):
        logger.error("shutdown did not finish within operator.shutdown_timeout (%g s): "
                     "exiting anyway", bound)
        logging.shutdown()
        os._exit(1)  # non-daemon actor threads would otherwise keep the process alive
    logger.info("stopped in %.2f s", time.monotonic() - began)
    return 0


# -- lifeline status ---------------------------------------------------------------------------


def read_status(url: str) -> dict[str, Any]:
    """The JSON of ``url`` (bounded: :data:`STATUS_TIMEOUT`, :data:`MAX_STATUS_BYTES`);
    ``OSError`` or ``ValueError`` saying why not."""
    with urllib.request.urlopen(url, timeout=STATUS_TIMEOUT) as answer:  # noqa: S310
        body = answer.read(MAX_STATUS_BYTES + 1)
    if len(body) > MAX_STATUS_BYTES:
        raise ValueError(f"answer larger than {MAX_STATUS_BYTES} bytes")
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("answer is not a JSON object")  # noqa: TRY004 (one error for the CLI)
    return data


def status(url: str | None) -> int:
    """``lifeline status``: print ``/status`` for a person; 0 if it answered, else 1."""
    target = _status_url(url)
    try:
        data = read_status(target)
        text = format_status(data)
    except (OSError, ValueError, KeyError, TypeError, urllib.error.URLError) as exc:
        print(f"lifeline status: {target}: {exc}", file=sys.stderr)
        return 1
    print(text)
    return 0


def _status_url(url: str | None) -> str:
    if url is None:
        return DEFAULT_STATUS_URL
    if "://" not in url:
        url = f"http://{url}"
    scheme, _, rest = url.partition("://")
    if "/" not in rest or (rest.endswith("/") and rest.count("/") == 1):
        return f"{scheme}://{rest.rstrip('/')}/status"
    return url


def format_status(data: dict[str, Any]) -> str:
    """``/status`` for a person: level and reason, mode, actors (nested), data ages, the
    rate limiter and its ban, the router breaker, the next recovery attempt."""
    now = data.get("monotonic_now")
    changes = data.get("changes") or []
    reason = changes[-1]["reason"] if changes else "no change since start"
    lines = [f"level {data['level']} ({data['level_name']}): {reason}",
             f"mode {data['mode']}, {'running' if data['running'] else 'NOT running'}",
             "actors:"]

    def actors(children: dict[str, Any], depth: int) -> None:
        for name, info in children.items():
            lines.append(f"  {'  ' * depth}{name:<{22 - 2 * depth}} {info['state']:<12} "
                         f"restarts {info['restarts']}")
            actors(info.get("children") or {}, depth + 1)

    actors(data.get("children") or {}, 0)
    ages = data.get("data_ages") or {}
    lines.append("data ages:" if ages else "data ages: none yet")
    for key, age in sorted(ages.items()):
        lines.append(f"  {key:<24} {'-' if age is None else f'{age:.1f} s'}")
    limiter = data.get("limiter") or {}
    if not _has_item(data.get("checklist"), "rate_limits"):  # else said once, by the item
        headroom = limiter.get("headroom") or {}
        lines.append("rate limit headroom: " + (", ".join(
            f"{group} {n}" for group, n in sorted(headroom.items())) or "-"))
    lines.append(f"ban: {_until(limiter.get('banned_until'), now, 'none')}")
    breaker = data.get("router_breaker")
    if breaker:
        opened = _until(breaker.get("open_until"), now, "-")
        lines.append(f"router breaker: {breaker.get('state')} (failures "
                     f"{breaker.get('failures')}, open {opened})")
    lines.append(f"next recovery attempt: {_until(data.get('next_recovery_at'), now, 'none')}")
    lines.append(f"recovery attempts: {data.get('recovery_attempts', 0)}")
    lines.extend(_checklist_lines(data.get("checklist")))
    lines.extend(_self_check_lines(data.get("self_check")))
    return "\n".join(lines)


_MARKS = {"ok": "[ok]  ", "warn": "[WARN]", "fail": "[FAIL]"}


def _has_item(checklist: object, name: str) -> bool:
    """The checklist in ``/status`` holds item ``name``."""
    items = checklist.get("items") if isinstance(checklist, dict) else None
    return isinstance(items, dict) and name in items


def _checklist_lines(checklist: object) -> list[str]:
    """The emergency checklist, one item a line, worst marked loudest."""
    if not isinstance(checklist, dict):
        return []
    age = checklist.get("age")
    items = checklist.get("items") or {}
    if not items:
        return ["checklist: not checked yet"]
    lines = [f"checklist (checked {age:.1f} s ago):" if isinstance(age, int | float)
             else "checklist:"]
    for name in [*ITEMS, *(n for n in items if n not in ITEMS)]:
        item = items.get(name)
        if isinstance(item, dict):
            mark = _MARKS.get(str(item.get("status")), f"[{item.get('status')}]")
            lines.append(f"  {mark} {name:<14} {item.get('detail', '')}")
    return lines


def _self_check_lines(check: object) -> list[str]:
    if not isinstance(check, dict):
        return []
    if check.get("daily_at") is None:
        return ["daily self-check: off"]
    last = check.get("last")
    lines = [f"daily self-check: at {check['daily_at']}, next {check.get('next_run')}"
             f"{', running now' if check.get('running') else ''}"]
    if not isinstance(last, dict):
        lines.append("  last run: none yet")
        return lines
    lines.append(f"  last run {last.get('started_at')}: {'ok' if last.get('ok') else 'FAILED'}")
    for name, part in (last.get("parts") or {}).items():
        lines.append(f"    {name:<14} {'ok  ' if part.get('ok') else 'FAIL'} "
                     f"{part.get('detail', '')}")
    return lines


def _until(at: object, now: object, none: str) -> str:
    if not isinstance(at, int | float):
        return none
    if isinstance(now, int | float):
        left = at - now
        return f"for {left:.1f} s more" if left > 0 else "ended"
    return f"until monotonic {at:.1f}"
