"""The daily self-check: once a day, at ``operator.daily_check`` Korea Standard Time.

The seed's checklist asks for a daily check of the router, the REST fallback and the
WebSocket, with an alert on failure. :class:`SelfCheck` carries it out:

* **When.** ``at`` is ``HH:MM`` in Korea Standard Time, :data:`KST`: a fixed UTC+9 (Korea
  has kept no daylight saving since 1988, so a fixed offset is exact and needs no tz data).
  :func:`next_run` is the first wall time *strictly after* a moment at which the KST clock
  reads ``at``; the scheduler reads the injected clock's ``time()`` (wall) on each
  :meth:`SelfCheck.tick`. A run starts at or after its time (never before), the next one
  is computed from the time it was due, so a late tick never shifts later days and a day
  is never run twice. ``at=None`` (``daily_check: off``): no run is ever due.
* **What.** Each part is a callable returning a one-line detail or raising. The parts run
  at once, each on a daemon thread of its own, and the run waits for all of them up to
  ``deadline`` real seconds (the parts are real I/O); a part not back by then fails ("no
  answer within ... s") and, while its thread is still out, fails at once on later runs
  rather than start a second one. :func:`system_parts` builds the three of a
  :class:`~lifeline.system.MarketDataSystem`: ``router`` (a real ticker of
  ``fallback.probe_market`` through the smart router, REST, no cache), ``rest_fallback``
  (the same ticker through the REST fallback) and ``websocket`` (a short real connection to
  ``upbit.websocket.url``: subscribe the probe market's ticker, wait for the first frame).
* **Never in the way.** A run happens on a thread of its own, never on the caller's (the
  trading host's or an HTTP request's); while one runs, no other starts (a tick that finds
  one running skips the day's run and logs it). Its result is kept (:meth:`SelfCheck.status`:
  last run, next run, each part ok/error) and, when any part failed, ``alert(what,
  detail)`` is called once per run (:meth:`MarketDataSystem.self_check_failed
  <lifeline.system.MarketDataSystem.self_check_failed>`: the log and the webhooks).

Logging (logger ``lifeline.selfcheck``): INFO for a passing run, ERROR is the alert's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import websocket

from quotation.clock import Clock
from quotation.values import check
from quotation.websocket.subscription import DataType, Subscription, build_request, new_ticket

if TYPE_CHECKING:
    from lifeline.system import MarketDataSystem

__all__ = ["KST", "PART_DEADLINE", "POLL_SECONDS", "PartResult", "SelfCheck",
           "SelfCheckResult", "next_run", "system_parts"]

logger = logging.getLogger(__name__)

KST = timezone(timedelta(hours=9), "KST")
"""Korea Standard Time: UTC+9, no daylight saving."""
PART_DEADLINE = 10.0
"""Real seconds the run waits for each part (they run at once)."""
POLL_SECONDS = 1.0
"""Real seconds between the scheduler thread's ticks (it reads the injected clock)."""

Part = Callable[[], str]
"""One check: returns a one-line detail when it passed, raises when it failed."""


def next_run(after: float, at: str, tz: timezone = KST) -> float:
    """The first wall time (epoch seconds) strictly after ``after`` at which the clock of
    ``tz`` reads ``at`` (``HH:MM``)."""
    hour, minute = (int(part) for part in at.split(":"))
    local = datetime.fromtimestamp(after, tz)
    due = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if due.timestamp() <= after:
        due += timedelta(days=1)
    return due.timestamp()


def _iso(wall: float | None) -> str | None:
    if wall is None:
        return None
    return datetime.fromtimestamp(wall, KST).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class PartResult:
    """One part of a run: passed (``ok``) or not, with a one-line ``detail``."""

    name: str
    ok: bool
    detail: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail, "seconds": round(self.seconds, 3)}


@dataclass(frozen=True, slots=True)
class SelfCheckResult:
    """One run: when it was due and when it started and ended (wall), and its parts."""

    due_at: float | None
    started_at: float
    finished_at: float
    parts: tuple[PartResult, ...]

    @property
    def ok(self) -> bool:
        return all(part.ok for part in self.parts)

    @property
    def failed(self) -> tuple[PartResult, ...]:
        return tuple(part for part in self.parts if not part.ok)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "due_at": _iso(self.due_at), "started_at": _iso(self.started_at),
                "finished_at": _iso(self.finished_at),
                "parts": {part.name: part.to_dict() for part in self.parts}}


class _PartThread:
    """A part's call on a daemon thread; ``busy`` until it returned."""

    def __init__(self, name: str, part: Part) -> None:
        self.name = name
        self._part = part
        self.done = threading.Event()
        self.detail = ""
        self.ok = False
        self.seconds = 0.0

    def start(self) -> None:
        threading.Thread(target=self._run, name=f"lifeline-selfcheck-{self.name}",
                         daemon=True).start()

    def _run(self) -> None:
        began = time.monotonic()
        try:
            self.detail = _one_line(self._part())
            self.ok = True
        except Exception as exc:  # noqa: BLE001 (a part's failure is the result, named)
            self.detail = _one_line(f"{type(exc).__name__}: {exc}")
        self.seconds = time.monotonic() - began
        self.done.set()


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else f"{line[: limit - 3]}..."


class SelfCheck:
    """See the module docstring."""

    def __init__(self, clock: Clock, parts: Mapping[str, Part], *, at: str | None,
                 alert: Callable[[str, str], None], deadline: float = PART_DEADLINE,
                 poll: float = POLL_SECONDS) -> None:
        if not parts:
            raise ValueError("a self-check needs at least one part")
        check("deadline", deadline, above=0)
        check("poll", poll, above=0)
        if at is not None:
            next_run(0.0, at)  # a bad HH:MM fails here, not at midnight
        self._clock = clock
        self._parts = dict(parts)
        self._at = at
        self._alert = alert
        self._deadline = deadline
        self._poll = poll
        self._lock = threading.Lock()
        self._next: float | None = None if at is None else next_run(clock.time(), at)
        self._running = False
        self._out: dict[str, _PartThread] = {}
        self._last: SelfCheckResult | None = None
        self._runs = 0
        self._finished = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- scheduling ------------------------------------------------------------------------

    @property
    def next_run_at(self) -> float | None:
        """Wall time of the next run, ``None`` when off."""
        with self._lock:
            return self._next

    @property
    def last(self) -> SelfCheckResult | None:
        with self._lock:
            return self._last

    @property
    def runs(self) -> int:
        """Runs finished since construction."""
        with self._lock:
            return self._runs

    def tick(self) -> bool:
        """Start the day's run on its own thread if it is due; whether one started."""
        now = self._clock.time()
        with self._lock:
            due = self._next
            if due is None or now < due or self._at is None:
                return False
            self._next = next_run(due, self._at)
            if now >= self._next:  # the process slept through whole days: from now on
                self._next = next_run(now, self._at)
            if self._running:
                logger.warning("self-check due at %s skipped: the previous run is still on",
                               _iso(due))
                return False
            self._running = True
        threading.Thread(target=self._run, args=(due,), name="lifeline-selfcheck",
                         daemon=True).start()
        return True

    def run_now(self) -> SelfCheckResult | None:
        """Run on the caller's thread now (``None``: a run is already on)."""
        with self._lock:
            if self._running:
                return None
            self._running = True
        return self._run(None)

    def wait_for_runs(self, count: int, timeout: float) -> bool:
        """Wait (real seconds) until ``count`` runs have finished in all."""
        with self._finished:
            return self._finished.wait_for(lambda: self._runs >= count, timeout)

    def start(self) -> None:
        """Tick every ``poll`` real seconds on a daemon thread until :meth:`stop`."""
        if self._at is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="lifeline-selfcheck-timer",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self._poll):
            try:
                self.tick()
            except Exception:
                logger.exception("self-check: the scheduler's tick failed")

    # -- a run -----------------------------------------------------------------------------

    def _run(self, due: float | None) -> SelfCheckResult:
        started = self._clock.time()
        try:
            parts = self._check_parts()
        finally:
            with self._lock:
                self._running = False
        result = SelfCheckResult(due, started, self._clock.time(), parts)
        with self._lock:
            self._last = result
            self._runs += 1
            self._finished.notify_all()
        if result.ok:
            logger.info("self-check passed: %s", "; ".join(
                f"{part.name} {part.detail}" for part in parts))
        else:
            failed = result.failed
            self._alert(", ".join(part.name for part in failed),
                        "; ".join(f"{part.name}: {part.detail}" for part in failed))
        return result

    def _check_parts(self) -> tuple[PartResult, ...]:
        started: list[_PartThread] = []
        results: dict[str, PartResult] = {}
        for name, part in self._parts.items():
            out = self._out.get(name)
            if out is not None and not out.done.is_set():
                results[name] = PartResult(name, False, "the previous check has not returned",
                                           0.0)
                continue
            call = _PartThread(name, part)
            self._out[name] = call
            call.start()
            started.append(call)
        until = time.monotonic() + self._deadline
        for call in started:
            call.done.wait(max(0.0, until - time.monotonic()))
            if call.done.is_set():
                results[call.name] = PartResult(call.name, call.ok, call.detail, call.seconds)
            else:
                results[call.name] = PartResult(
                    call.name, False, f"no answer within {self._deadline:g} s", self._deadline)
        return tuple(results[name] for name in self._parts)

    def status(self) -> dict[str, Any]:
        """JSON-able: the time of day, next run, whether one is on, the last result."""
        with self._lock:
            last = self._last
            return {"daily_at": None if self._at is None else f"{self._at} KST",
                    "next_run": _iso(self._next), "running": self._running,
                    "runs": self._runs, "last": None if last is None else last.to_dict()}


# -- the parts of a MarketDataSystem --------------------------------------------------------


def system_parts(system: MarketDataSystem, deadline: float = PART_DEADLINE
                 ) -> dict[str, Part]:
    """``router``, ``rest_fallback`` and ``websocket`` of ``system`` (module docstring)."""
    from lifeline.tree import REST_FALLBACK, SMART_ROUTER  # noqa: PLC0415 (lifeline.system)

    config = system.config
    market = config.fallback.probe_market

    def through(child: str) -> Part:
        def check() -> str:
            began = time.monotonic()
            reply = system.check_child(child, timeout=deadline)
            items = getattr(reply, "data", None)
            if not items:
                raise RuntimeError(f"no {market} ticker in the answer")
            return f"{market} ticker in {1000 * (time.monotonic() - began):.0f} ms"
        return check

    def websocket_part() -> str:
        return websocket_probe(config.upbit.websocket.url, market,
                               min(deadline, config.upbit.websocket.connect_timeout + 5.0))

    return {"router": through(SMART_ROUTER), "rest_fallback": through(REST_FALLBACK),
            "websocket": websocket_part}


def websocket_probe(url: str, market: str, timeout: float) -> str:
    """Connect to ``url``, subscribe ``market``'s ticker and wait for one data frame, all
    within ``timeout`` seconds; the one-line detail, else an ``OSError`` or
    ``websocket.WebSocketException`` (``RuntimeError`` for a frame that is not data)."""
    began = time.monotonic()
    request = build_request([Subscription(DataType.TICKER, (market,))], ticket=new_ticket())
    conn = websocket.create_connection(url, timeout=timeout)
    try:
        conn.send(request)
        while True:
            left = timeout - (time.monotonic() - began)
            if left <= 0:
                raise TimeoutError(f"no {market} ticker within {timeout:g} s")
            conn.settimeout(left)
            frame = conn.recv()
            text = frame.decode(errors="replace") if isinstance(frame, bytes) else frame
            if market in text:
                break
            if '"error"' in text:
                raise RuntimeError(f"the server answered {_one_line(text, 120)}")
    finally:
        conn.close(timeout=1)
    host = urlsplit(url).netloc
    return f"{market} ticker from {host} in {1000 * (time.monotonic() - began):.0f} ms"
